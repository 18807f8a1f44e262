"""SwinIR (Liang et al., ICCV-W 2021), classical SR "medium" setting, from spandrel.

embed 180, six residual Swin transformer groups of six layers with six heads each, window
8, MLP ratio 2, one-conv residual connection, pixel-shuffle upsampler (x2 stages, or one x3
stage: the official ``Upsample`` supports 2^n and 3, and the paper reports x2, x3, x4 and
x8; x8 = three x2 stages).  12,047,911 parameters at x8.

``img_size`` only sets the resolution whose shifted-window attention masks are pre-computed
as buffers; any other input size gets its mask computed on the fly.  We keep the official
classical-SR training value, 48: with the 8x8 LR patches of x8 training (``img_size=8``),
the Swin blocks would switch window shifting off for good, at test time too.

The input must be a multiple of the window size: the method declares that
(``methods/swinir.py``, ``size_rule``) and wraps this network in the generic
:class:`lpsr.sizing.SizeFitted`, which pads and crops back; spandrel's own reflection
padding to the window (``check_image_size``) then has nothing left to do.
"""
from __future__ import annotations

import warnings

from torch import nn


def build_swinir(
    scale: int,
    embed_dim: int = 180,
    depths: tuple[int, ...] = (6, 6, 6, 6, 6, 6),
    num_heads: tuple[int, ...] = (6, 6, 6, 6, 6, 6),
    window_size: int = 8,
    mlp_ratio: float = 2.0,
    img_size: int = 48,
) -> nn.Module:
    """spandrel's SwinIR; ``scale`` 2, 4, 8, ... or 3 (declared by ``methods/swinir.py``)."""
    if len(depths) != len(num_heads):
        raise ValueError(f"swinir: depths ({len(depths)} groups) and num_heads ({len(num_heads)}) must have the same length")
    # imported here: spandrel takes seconds to import, and `bench list` imports every method
    from spandrel.architectures.SwinIR import SwinIR as SpandrelSwinIR

    with warnings.catch_warnings():  # spandrel calls torch.meshgrid without indexing=
        warnings.filterwarnings("ignore", message="torch.meshgrid")
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
