"""`msrn`: MSRN (Li et al., ECCV 2018): 8 multi-scale residual blocks, hierarchical fusion, x2 pixel-shuffle stages.

Adaptation to x8: three conv3x3(64 -> 256) + PixelShuffle(2) stages (the authors' code
uses the EDSR upsampler, which stacks log2(s) such stages); nothing depends on the plate
size.  6,225,731 parameters at x8 (5,930,307 at x2, 6,078,019 at x4).  L1 loss, as in the
paper.
"""
from __future__ import annotations

from typing import Literal

from torch import nn

from lpsr.method import Int, Method, MethodSettings, TrainRecipe
from lpsr.models.msrn import MSRN


class MSRNSettings(MethodSettings):
    channels: Int = 64
    blocks: Int = 8
    pixel_loss: Literal["l1", "mse"] = "l1"


class MSRNMethod(Method):
    name = "msrn"
    source = "Li, Fang, Mei, Zhang: Multi-scale Residual Network for Image Super-Resolution, ECCV 2018"
    scales = "pow2"
    order = 20
    Settings = MSRNSettings

    def build(self) -> nn.Module:
        return MSRN(self.scale, channels=self.settings.channels, blocks=self.settings.blocks)

    def recipe(self, model: nn.Module) -> TrainRecipe:
        return TrainRecipe(pixel=self.settings.pixel_loss)
