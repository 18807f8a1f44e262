"""`swinir`: SwinIR (Liang et al., ICCV-W 2021), classical SR "medium" setting, via spandrel.

embed 180, depths [6]*6, heads [6]*6, window 8, MLP ratio 2, pixel-shuffle upsampler;
12,047,911 parameters at x8 (11,752,487 at x2, 11,900,199 at x4).  Adaptation to x8 /
plates: x8 = three pixel-shuffle x2 stages; the LR is padded on the bottom/right to a
multiple of the window (reflection, or edge replication for inputs smaller than the pad)
and the SR cropped back, inside the network so that training and inference agree (24x8
plates and 8x8 training patches need no padding at x8); ``img_size`` (pre-computed
attention masks) stays at the official 48 so that window shifting stays on.  L1 loss, as
in the paper.
"""
from __future__ import annotations

from typing import Literal

from torch import nn

from lpsr.method import Float, Int, Method, MethodSettings, TrainRecipe
from lpsr.models.swinir import SwinIRNet


class SwinIRSettings(MethodSettings):
    embed_dim: Int = 180
    depths: list[Int] = [6, 6, 6, 6, 6, 6]
    num_heads: list[Int] = [6, 6, 6, 6, 6, 6]
    window_size: Int = 8
    mlp_ratio: Float = 2.0
    img_size: Int = 48
    pixel_loss: Literal["l1", "mse"] = "l1"


class SwinIRMethod(Method):
    name = "swinir"
    source = "Liang et al.: SwinIR: Image Restoration Using Swin Transformer, ICCV Workshops 2021"
    scales = "pow2"
    order = 60
    Settings = SwinIRSettings

    def build(self) -> nn.Module:
        s = self.settings
        return SwinIRNet(
            self.scale,
            embed_dim=s.embed_dim,
            depths=tuple(s.depths),
            num_heads=tuple(s.num_heads),
            window_size=s.window_size,
            mlp_ratio=s.mlp_ratio,
            img_size=s.img_size,
        )

    def recipe(self, model: nn.Module) -> TrainRecipe:
        return TrainRecipe(pixel=self.settings.pixel_loss)
