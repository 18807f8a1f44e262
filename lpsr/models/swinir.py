"""SwinIR (Liang et al., ICCV-W 2021), classical SR "medium" setting, from spandrel.

embed 180, six residual Swin transformer groups of six layers with six heads each, window
8, MLP ratio 2, one-conv residual connection, pixel-shuffle upsampler (x2 stages; x8 = three
of them).  12,047,911 parameters at x8.

``img_size`` only sets the resolution whose shifted-window attention masks are pre-computed
as buffers; any other input size gets its mask computed on the fly.  We keep the official
classical-SR training value, 48: with the 8x8 LR patches of x8 training (``img_size=8``),
the Swin blocks would switch window shifting off for good, at test time too.

Inputs are padded on the bottom/right to a multiple of the window size and the output is
cropped back (24x8 plates need no padding at window 8; odd sizes do).  The padding is
reflection like the official test code, or edge replication when the input is too small to
reflect (fewer rows or columns than the padding).
"""
from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn

from lpsr.method import MethodError, is_power_of_two


class SwinIRNet(nn.Module):
    def __init__(
        self,
        scale: int,
        embed_dim: int = 180,
        depths: tuple[int, ...] = (6, 6, 6, 6, 6, 6),
        num_heads: tuple[int, ...] = (6, 6, 6, 6, 6, 6),
        window_size: int = 8,
        mlp_ratio: float = 2.0,
        img_size: int = 48,
    ) -> None:
        super().__init__()
        if not (scale == 3 or (scale >= 2 and is_power_of_two(scale))):
            raise MethodError(f"SwinIR's pixel-shuffle upsampler supports --scale 3 or a power of two (2, 4, 8, ...); got {scale}")
        if len(depths) != len(num_heads):
            raise MethodError(f"swinir config: depths ({len(depths)} groups) and num_heads ({len(num_heads)}) must have the same length")
        self.scale = scale
        self.window_size = window_size
        with warnings.catch_warnings():  # spandrel calls torch.meshgrid without indexing=
            warnings.filterwarnings("ignore", message="torch.meshgrid")
            self.net = self._build(img_size, embed_dim, depths, num_heads, window_size, mlp_ratio, scale)

    @staticmethod
    def _build(img_size, embed_dim, depths, num_heads, window_size, mlp_ratio, scale) -> nn.Module:
        # imported here: spandrel takes seconds to import and `bench` discovers every method
        from spandrel.architectures.SwinIR import SwinIR as SpandrelSwinIR

        return SpandrelSwinIR(
            img_size=img_size,
            in_chans=3,
            embed_dim=embed_dim,
            depths=list(depths),
            num_heads=list(num_heads),
            window_size=window_size,
            mlp_ratio=mlp_ratio,
            upscale=scale,
            img_range=1.0,
            upsampler="pixelshuffle",
            resi_connection="1conv",
        )

    def pad(self, lr: torch.Tensor) -> torch.Tensor:
        h, w = lr.shape[-2:]
        ph, pw = (-h) % self.window_size, (-w) % self.window_size
        if ph == 0 and pw == 0:
            return lr
        mode = "reflect" if ph < h and pw < w else "replicate"
        return F.pad(lr, (0, pw, 0, ph), mode=mode)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        h, w = lr.shape[-2:]
        sr = self.net(self.pad(lr))
        return sr[..., : h * self.scale, : w * self.scale]
