"""Bicubic interpolation: the no-learning floor of the paper's Table 1.

By default it upsamples with the degradation's own kernel: the LR plates are made by PIL's
antialiased bicubic (Keys' cubic, a = -0.5, the MATLAB ``imresize`` convention;
``lpsr.data.degrade``), and ``kernel: pil`` enlarges them with the same filter
(:func:`lpsr.models.bicubic.upsample`, PIL's algorithm, rounding included).  The variant
``bicubic-torch`` (``kernel: torch``) uses torch's ``F.interpolate`` (a = -0.75, border
replicated), the kernel this method used before; on 600 real plates the choice moves
PP-OCRv4's median confidence on the floor from 0.46 (a = -0.5) to 0.57 (a = -0.75) and
PSNR by 0.06 dB, so ``describe()`` states the kernel and every leaderboard prints it.
"""
from __future__ import annotations

from typing import Any, Literal

import torch

from lpsr.method import Method, MethodSettings
from lpsr.models.bicubic import KERNELS, upsample


class BicubicSettings(MethodSettings):
    #: ``pil``: PIL bicubic, a = -0.5 (the degradation's kernel); ``torch``: a = -0.75
    kernel: Literal["pil", "torch"] = "pil"


class Bicubic(Method):
    """Upsamples the LR plate with bicubic interpolation.  No parameters, no training;
    works at any integer scale."""

    name = "bicubic"
    source = "bicubic interpolation (Keys 1981); paper Table 1 baseline"
    scales = "any"
    trainable = False
    order = 0
    floor = True
    Settings = BicubicSettings

    def build(self) -> None:
        return None

    @torch.no_grad()
    def super_resolve(self, model: None, lr: torch.Tensor) -> torch.Tensor:
        return upsample(lr, self.scale, self.settings.kernel, quantize=True).clamp(0.0, 1.0)

    def describe(self) -> dict[str, Any]:
        kernel = self.settings.kernel
        return {**super().describe(), "kernel": kernel, "kernel_description": KERNELS[kernel]}
