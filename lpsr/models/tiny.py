"""A deliberately small SR network used by the test suite to exercise train -> evaluate
-> report in seconds.  Bicubic upsampling plus a learned residual from an ESPCN-like head."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class TinySR(nn.Module):
    def __init__(self, scale: int, channels: int = 16) -> None:
        super().__init__()
        self.scale = scale
        self.body = nn.Sequential(
            nn.Conv2d(3, channels, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, 3 * scale * scale, 3, padding=1),
            nn.PixelShuffle(scale),
        )

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        base = F.interpolate(lr, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return base + self.body(lr)
