"""`swinir`: SwinIR (Liang et al., ICCV-W 2021), classical SR "medium" setting, via spandrel.

embed 180, depths [6]*6, heads [6]*6, window 8, MLP ratio 2, pixel-shuffle upsampler;
12,047,911 parameters at x8 (11,752,487 at x2, 11,900,199 at x4).  Adaptation to x8 /
plates: x8 = three pixel-shuffle x2 stages; the LR is padded on the bottom/right to a
multiple of the window (reflection, or edge replication for inputs smaller than the pad)
and the SR cropped back, inside the network so that training and inference agree (24x8
plates and 8x8 training patches need no padding at x8); ``img_size`` (pre-computed
attention masks) stays at the official 48 so that window shifting stays on.  L1 loss, as
in the paper (the default pixel loss).
"""
from __future__ import annotations

from torch import nn

from lpsr.method import Method
from lpsr.models.swinir import SwinIRNet
from methods._settings import int_tuple, setting


class SwinIRMethod(Method):
    name = "swinir"
    source = "Liang et al.: SwinIR: Image Restoration Using Swin Transformer, ICCV Workshops 2021"
    scales = "pow2"
    order = 60

    def build(self) -> nn.Module:
        return SwinIRNet(
            self.scale,
            embed_dim=setting(self, "embed_dim", 180),
            depths=setting(self, "depths", (6,) * 6, int_tuple),
            num_heads=setting(self, "num_heads", (6,) * 6, int_tuple),
            window_size=setting(self, "window_size", 8),
            mlp_ratio=setting(self, "mlp_ratio", 2.0),
            img_size=setting(self, "img_size", 48),
        )
