"""ESPCN (Shi et al., CVPR 2016): features at LR, one sub-pixel convolution at the end.

conv5x5(64) -> tanh -> conv3x3(32) -> tanh -> conv3x3(3 * s^2) -> PixelShuffle(s), on the
LR image.  RGB in and out (the paper's SR experiments are on Y); for x8 the last layer
simply has 3 * 64 output channels: 78,816 parameters.
"""
from __future__ import annotations

import torch
from torch import nn


class ESPCN(nn.Module):
    def __init__(self, scale: int, channels: tuple[int, int] = (64, 32)) -> None:
        super().__init__()
        c1, c2 = channels
        self.body = nn.Sequential(
            nn.Conv2d(3, c1, 5, padding=2),
            nn.Tanh(),
            nn.Conv2d(c1, c2, 3, padding=1),
            nn.Tanh(),
            nn.Conv2d(c2, 3 * scale * scale, 3, padding=1),
            nn.PixelShuffle(scale),
        )

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return self.body(lr)
