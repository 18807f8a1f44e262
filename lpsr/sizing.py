"""Input-size requirements of a network, and the one wrapper that meets them.

A method declares what LR sizes its network accepts as a :class:`SizeRule` (``Method.size_rule``,
from its settings: SwinIR's window); :class:`SizeFitted` pads any LR on the bottom/right to
the nearest size the rule accepts, runs the network and crops the SR back to ``scale`` x the
input, so the method takes an LR of any size (``Method.super_resolve`` relies on it, and so
does training on patches).  The padding is reflection, as in SwinIR's official test code, or
edge replication when the input has too few rows or columns to reflect.  Torch only: the
architectures in ``lpsr.models`` are wrapped without knowing about methods.

Written here rather than taken from spandrel, whose descriptors do the same for loaded model
files (``ImageModelDescriptor.size_requirements``) but not for a network the harness builds
and trains itself.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class SizeRule:
    """LR height and width must be a multiple of ``multiple`` and at least ``minimum``."""

    multiple: int = 1
    minimum: int = 1

    def __post_init__(self) -> None:
        if self.multiple < 1 or self.minimum < 1:
            raise ValueError(f"SizeRule: multiple and minimum must be >= 1, got {self.multiple}, {self.minimum}")

    @property
    def any_size(self) -> bool:
        return self.multiple == 1 and self.minimum == 1

    def fitted(self, side: int) -> int:
        """The smallest side >= ``side`` the rule accepts."""
        side = max(side, self.minimum)
        return side + (-side) % self.multiple

    def pad(self, lr: torch.Tensor) -> torch.Tensor:
        """``lr`` (N, C, H, W) padded on the bottom/right to a size the rule accepts."""
        h, w = lr.shape[-2:]
        ph, pw = self.fitted(h) - h, self.fitted(w) - w
        if ph == 0 and pw == 0:
            return lr
        mode = "reflect" if ph < h and pw < w else "replicate"
        return F.pad(lr, (0, pw, 0, ph), mode=mode)


class SizeFitted(nn.Module):
    """``net`` behind :meth:`SizeRule.pad` and a crop back to ``scale`` x the input size.

    The network is the ``net`` submodule, so its state-dict keys read ``net.*``."""

    def __init__(self, net: nn.Module, rule: SizeRule, scale: int) -> None:
        super().__init__()
        self.net, self.rule, self.scale = net, rule, scale

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        h, w = lr.shape[-2:]
        return self.net(self.rule.pad(lr))[..., : h * self.scale, : w * self.scale]
