"""MSRN (Li et al., ECCV 2018): multi-scale residual blocks with hierarchical feature fusion.

Each multi-scale residual block (MSRB) runs a 3x3 and a 5x5 path in parallel, crosses them
(both second-stage convs see the concatenation of both first-stage outputs), fuses the four
maps with a 1x1 conv and adds the block input.  The outputs of all 8 blocks plus the head
features are concatenated, fused by 1x1 then 3x3 convs, upsampled by log2(s) stages of
conv3x3(64 -> 256) + PixelShuffle(2) (EDSR's upsampler, as in the authors' code) and mapped
to RGB.  The DIV2K mean is subtracted at the input and added back at the output (a fixed
buffer, not a parameter).  6,225,731 parameters at x8.
"""
from __future__ import annotations

import torch
from torch import nn

DIV2K_MEAN = (0.4488, 0.4371, 0.4040)


class MultiScaleResidualBlock(nn.Module):
    def __init__(self, channels: int = 64) -> None:
        super().__init__()
        c = channels
        self.conv3_1 = nn.Conv2d(c, c, 3, padding=1)
        self.conv5_1 = nn.Conv2d(c, c, 5, padding=2)
        self.conv3_2 = nn.Conv2d(2 * c, 2 * c, 3, padding=1)
        self.conv5_2 = nn.Conv2d(2 * c, 2 * c, 5, padding=2)
        self.fuse = nn.Conv2d(4 * c, c, 1)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s1 = torch.cat([self.act(self.conv3_1(x)), self.act(self.conv5_1(x))], 1)
        s2 = torch.cat([self.act(self.conv3_2(s1)), self.act(self.conv5_2(s1))], 1)
        return self.fuse(s2) + x


class MSRN(nn.Module):
    def __init__(self, scale: int, channels: int = 64, blocks: int = 8) -> None:
        super().__init__()
        c = channels
        self.register_buffer("mean", torch.tensor(DIV2K_MEAN).view(1, 3, 1, 1), persistent=False)
        self.head = nn.Conv2d(3, c, 3, padding=1)
        self.blocks = nn.ModuleList(MultiScaleResidualBlock(c) for _ in range(blocks))
        up: list[nn.Module] = []
        for _ in range(scale.bit_length() - 1):  # x2 stages: scale is 2, 4, 8, ... (methods/msrn.py)
            up += [nn.Conv2d(c, 4 * c, 3, padding=1), nn.PixelShuffle(2)]
        self.tail = nn.Sequential(
            nn.Conv2d(c * (blocks + 1), c, 1),
            nn.Conv2d(c, c, 3, padding=1),
            *up,
            nn.Conv2d(c, 3, 3, padding=1),
        )

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        head = self.head(lr - self.mean)
        x, outs = head, []
        for block in self.blocks:
            x = block(x)
            outs.append(x)
        return self.tail(torch.cat(outs + [head], 1)) + self.mean
