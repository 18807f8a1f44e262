"""Bicubic interpolation: the no-learning floor of the paper's Table 1."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from lpsr.method import Method


class Bicubic(Method):
    """Upsamples the LR plate with bicubic interpolation (torch, a = -0.75, no antialias
    needed when enlarging).  No parameters, no training; works at any integer scale."""

    name = "bicubic"
    source = "bicubic interpolation (Keys 1981); paper Table 1 baseline"
    scales = "any"
    trainable = False
    order = 0

    def build(self) -> None:
        return None

    @torch.no_grad()
    def super_resolve(self, model: None, lr: torch.Tensor) -> torch.Tensor:
        return F.interpolate(lr, scale_factor=self.scale, mode="bicubic", align_corners=False).clamp(0.0, 1.0)
