"""Bicubic resizing in torch with the degradation's kernel: PIL's ``Image.BICUBIC``.

The LR plates are made by PIL's antialiased bicubic (``lpsr.data.degrade``): Keys' cubic
with a = -0.5 (the MATLAB ``imresize`` convention that SR papers and BasicSR use), the
filter support widened by the factor when shrinking, and at the image border the taps
that fall outside are dropped and the remaining weights renormalised.  torch's
``F.interpolate(mode="bicubic")`` uses a = -0.75 and replicates the border instead.

:func:`pil_bicubic_resize` builds PIL's per-axis weight matrices (the same algorithm as
Pillow's ``Resample.c``: ``center = (i + 0.5) * in / out``, taps
``x in [center - support + 0.5, center + support + 0.5)``) and applies them as two matrix
products (horizontal first, clipped in between, as PIL does), so it is differentiable and
works on any float NCHW batch.  It matches PIL's uint8 output to within one grey level, and
with ``quantize=True`` (PIL rounds to uint8 after each axis) in all but a few pixels per
10,000 (PIL's fixed-point weights); checked by
``tests/test_method_bicubic.py``.
"""
from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F

#: kernels the ``bicubic`` method (and the PECL network's optional skip) can use
KERNELS = {
    "pil": "PIL bicubic, a = -0.5 (the degradation's kernel; MATLAB imresize convention)",
    "torch": "torch bicubic, a = -0.75, border replicated (F.interpolate)",
}


def cubic(x: float, a: float = -0.5) -> float:
    x = abs(x)
    if x < 1.0:
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    if x < 2.0:
        return (((x - 5.0) * x + 8.0) * x - 4.0) * a
    return 0.0


@lru_cache(maxsize=64)
def resize_matrix(in_size: int, out_size: int, a: float = -0.5) -> torch.Tensor:
    """(out_size, in_size) float64 weights of PIL's bicubic resampling along one axis."""
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = 2.0 * filterscale
    weights = torch.zeros(out_size, in_size, dtype=torch.float64)
    for i in range(out_size):
        center = (i + 0.5) * scale
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), in_size)
        taps = [cubic((x - center + 0.5) / filterscale, a) for x in range(lo, hi)]
        total = sum(taps)
        for x, w in zip(range(lo, hi), taps):
            weights[i, x] = w / total if total != 0.0 else w
    return weights


def pil_bicubic_resize(images: torch.Tensor, size: tuple[int, int], a: float = -0.5, quantize: bool = False) -> torch.Tensor:
    """Resize an NCHW batch of [0, 1] floats to ``size`` = (H, W) as PIL's BICUBIC does.

    Like PIL: the horizontal pass first, its result clipped to [0, 1] (PIL stores it as
    uint8), then the vertical pass.  ``quantize=True`` also rounds the intermediate to
    1/255 as PIL does, which reproduces PIL's uint8 output exactly for uint8 input (not
    differentiable there); the result is not clipped.
    """
    h, w = images.shape[-2:]
    wy = resize_matrix(h, int(size[0]), a).to(images)
    wx = resize_matrix(w, int(size[1]), a).to(images)
    rows = torch.matmul(images, wx.t()).clamp(0.0, 1.0)
    if quantize:
        rows = rows.mul(255.0).round().div(255.0)
    return torch.matmul(wy, rows)


def upsample(images: torch.Tensor, scale: int, kernel: str = "pil", quantize: bool = False) -> torch.Tensor:
    """Enlarge an NCHW [0, 1] batch by an integer ``scale`` with ``kernel`` (see :data:`KERNELS`)."""
    if kernel == "pil":
        h, w = images.shape[-2:]
        return pil_bicubic_resize(images, (h * scale, w * scale), quantize=quantize)
    if kernel == "torch":
        return F.interpolate(images, scale_factor=scale, mode="bicubic", align_corners=False)
    raise ValueError(f"bicubic kernel must be one of {', '.join(KERNELS)}, got {kernel!r}")

