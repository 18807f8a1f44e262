"""SRCNN (Dong et al., TPAMI 2015): three convolutions on the bicubic-upsampled image.

9-5-5 kernels with 64 and 32 channels (the paper's base setting).  Two adaptations:

* RGB in and out (the paper works on Y only: 57K parameters there, 69,251 here);
* "same" zero padding, so the output keeps the input size (the paper trains with valid
  convolutions and a smaller target); the bicubic upsampling is part of ``forward`` so that
  the shared training loop can call ``model(lr)`` like for every other network.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SRCNN(nn.Module):
    def __init__(self, scale: int, channels: tuple[int, int] = (64, 32), kernels: tuple[int, int, int] = (9, 5, 5)) -> None:
        super().__init__()
        self.scale = scale
        c1, c2 = channels
        k1, k2, k3 = kernels
        self.body = nn.Sequential(
            nn.Conv2d(3, c1, k1, padding=k1 // 2),
            nn.ReLU(inplace=True),
            nn.Conv2d(c1, c2, k2, padding=k2 // 2),
            nn.ReLU(inplace=True),
            nn.Conv2d(c2, 3, k3, padding=k3 // 2),
        )

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(lr, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return self.body(up)
