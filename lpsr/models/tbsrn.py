"""TBSRN, the Scene Text Telescope's SR network (Chen et al., CVPR 2021), for any LR size.

conv9x9(3 -> 64) + PReLU; five "recurrent residual" blocks, each conv3x3-BN-Mish-conv3x3-BN
followed by a self-attention feature enhancer (the 64 feature channels concatenated with a
64-channel 2-D sinusoidal positional encoding, one 4-head multi-head attention layer over
all H x W positions, a position-wise feed-forward layer, LayerNorms, a linear 128 -> 64),
added back to the block input; conv3x3 + BN; a long skip from the first features; one
conv3x3(64 -> 256) + PixelShuffle(2) + Mish stage per factor of 2; conv9x9(64 -> 3); tanh.
A TPS spatial transformer (``lpsr.models.tps_stn``) rectifies the LR input at training time
only, as in the original.

Adaptations (the official code hard-codes a 16x64 LR input, x2 and ``.cuda()``):

* the positional encoding is computed for the feature map's own height x width at run time
  (cached per size and device) instead of a fixed 16x64 table;
* the STN's localisation net sees the input resized to 16x64 and its TPS grid is built for
  the input size (see ``tps_stn``), so the same weights serve 8x8 training patches and
  24x8 plates;
* x8 = three pixel-shuffle stages (the original loops over log2(scale) stages too).

Left out on purpose: the official ``RecurrentResidualBlock`` builds two bidirectional-GRU
blocks (``gru1``, ``gru2``) that its ``forward`` never calls, and ``TBSRN`` builds an
unused conv3x3 + BN and each attention layer an unused ``Linear(4, 1)``; together 229,875
parameters that are never trained.  The official count at x8 with STN is 3,505,759; this
network has 3,275,884 (all of them used).  LayerNorm is torch's (the original divides by
the unbiased std + eps, a negligible difference).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from lpsr.models.tps_stn import TPSSTN


def positional_encoding_2d(channels: int, height: int, width: int) -> torch.Tensor:
    """(channels, H, W) sin/cos table: the first half encodes x, the second half y."""
    if channels % 4:
        raise ValueError(f"tbsrn: positional encoding needs a channel count divisible by 4, got {channels}")
    half = channels // 2
    freq = torch.exp(torch.arange(0.0, half, 2) * -(math.log(10000.0) / half))
    pe = torch.zeros(channels, height, width)
    x = torch.arange(0.0, width)[:, None] * freq  # (W, half/2)
    y = torch.arange(0.0, height)[:, None] * freq  # (H, half/2)
    pe[0:half:2] = torch.sin(x).t()[:, None, :].expand(-1, height, -1)
    pe[1:half:2] = torch.cos(x).t()[:, None, :].expand(-1, height, -1)
    pe[half::2] = torch.sin(y).t()[:, :, None].expand(-1, -1, width)
    pe[half + 1 :: 2] = torch.cos(y).t()[:, :, None].expand(-1, -1, width)
    return pe


class FeatureEnhancer(nn.Module):
    """Self-attention over all positions of a (N, C, H, W) map, with a 2-D positional code."""

    def __init__(self, channels: int = 64, heads: int = 4, dropout: float = 0.1) -> None:
        super().__init__()
        d = 2 * channels
        self.channels = channels
        self.attention = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
        self.norm1 = nn.LayerNorm(d, eps=1e-6)
        self.feed_forward = nn.Sequential(nn.Linear(d, d), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(d, d))
        self.norm2 = nn.LayerNorm(d, eps=1e-6)
        self.project = nn.Linear(d, channels)
        self._codes: dict[tuple, torch.Tensor] = {}

    def code(self, height: int, width: int, like: torch.Tensor) -> torch.Tensor:
        key = (height, width, str(like.device), like.dtype)
        if key not in self._codes:
            self._codes[key] = positional_encoding_2d(self.channels, height, width).to(like)
        return self._codes[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        pe = self.code(h, w, x).expand(n, -1, -1, -1)
        tokens = torch.cat([x, pe], 1).flatten(2).transpose(1, 2)  # (N, HW, 2C)
        tokens = self.norm1(tokens + self.attention(tokens, tokens, tokens, need_weights=False)[0])
        tokens = self.norm2(tokens + self.feed_forward(tokens))
        return self.project(tokens).transpose(1, 2).reshape(n, c, h, w)


class RecurrentResidualBlock(nn.Module):
    def __init__(self, channels: int = 64) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.BatchNorm2d(channels),
            nn.Mish(),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.BatchNorm2d(channels),
        )
        self.enhancer = FeatureEnhancer(channels)
        for p in self.parameters():  # the original's Xavier init of every matrix/kernel
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.enhancer(self.body(x))


class TBSRN(nn.Module):
    def __init__(self, scale: int, channels: int = 64, blocks: int = 5, stn: bool = True) -> None:
        super().__init__()
        self.stn = TPSSTN(3) if stn else None
        self.head = nn.Sequential(nn.Conv2d(3, channels, 9, padding=4), nn.PReLU())
        self.blocks = nn.Sequential(*(RecurrentResidualBlock(channels) for _ in range(blocks)))
        self.body_tail = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels))
        up: list[nn.Module] = []
        for _ in range(scale.bit_length() - 1):  # x2 stages: scale is 2, 4, 8, ... (methods/tbsrn.py)
            up += [nn.Conv2d(channels, 4 * channels, 3, padding=1), nn.PixelShuffle(2), nn.Mish()]
        self.tail = nn.Sequential(*up, nn.Conv2d(channels, 3, 9, padding=4))

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        if self.stn is not None and self.training:
            lr = self.stn(lr)
        head = self.head(lr)
        body = self.body_tail(self.blocks(head))
        return torch.tanh(self.tail(head + body))
