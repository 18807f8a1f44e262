"""`swinir`: SwinIR (Liang et al., ICCV-W 2021), classical SR "medium" setting, via spandrel.

embed 180, depths [6]*6, heads [6]*6, window 8, MLP ratio 2, pixel-shuffle upsampler;
12,047,911 parameters at x8 (11,752,487 at x2, 11,900,199 at x4).  Adaptation to x8 /
plates: x8 = three pixel-shuffle x2 stages (x3 = one x3 stage, as the official code);
the LR must be a multiple of the window (``size_rule``), so the built network is wrapped in
the generic :class:`lpsr.sizing.SizeFitted`, which pads it on the bottom/right (reflection,
or edge replication for inputs smaller than the pad) and crops the SR back, in training and
inference alike (24x8 plates and 8x8 training patches need no padding at x8); ``img_size`` (pre-computed
attention masks) stays at the official 48 so that window shifting stays on.  L1 loss, as
in the paper.
"""
from __future__ import annotations

from typing import Literal

from torch import nn

from pydantic import Field, model_validator

from lpsr.method import Float, Int, Method, MethodSettings, TrainRecipe
from lpsr.models.swinir import build_swinir
from lpsr.sizing import SizeRule


class SwinIRSettings(MethodSettings):
    embed_dim: Int = 180
    depths: list[Int] = [6, 6, 6, 6, 6, 6]
    num_heads: list[Int] = [6, 6, 6, 6, 6, 6]
    window_size: Int = Field(8, ge=1)
    mlp_ratio: Float = 2.0
    img_size: Int = 48
    pixel_loss: Literal["l1", "mse"] = "l1"

    @model_validator(mode="after")
    def _groups(self) -> "SwinIRSettings":
        if len(self.depths) != len(self.num_heads):
            raise ValueError(f"depths ({len(self.depths)} groups) and num_heads ({len(self.num_heads)}) must have the same length")
        return self


class SwinIRMethod(Method):
    name = "swinir"
    source = "Liang et al.: SwinIR: Image Restoration Using Swin Transformer, ICCV Workshops 2021"
    scales = "pow2+3"  # the official Upsample: 2^n or 3 (the paper reports x2, x3, x4, x8)
    order = 60
    Settings = SwinIRSettings

    def size_rule(self) -> SizeRule:
        return SizeRule(multiple=self.settings.window_size)

    def build(self) -> nn.Module:
        s = self.settings
        return self.fit(build_swinir(
            self.scale,
            embed_dim=s.embed_dim,
            depths=tuple(s.depths),
            num_heads=tuple(s.num_heads),
            window_size=s.window_size,
            mlp_ratio=s.mlp_ratio,
            img_size=s.img_size,
        ))

    def recipe(self, model: nn.Module) -> TrainRecipe:
        return TrainRecipe(pixel=self.settings.pixel_loss)
