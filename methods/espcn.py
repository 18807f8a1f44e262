"""`espcn`: ESPCN (Shi et al., CVPR 2016): 5-3-3 convs with tanh on the LR plate, PixelShuffle(s).

Adaptation to x8 / plates: RGB in and out (the paper's experiments use Y), so the last conv
has 3 * s^2 outputs: 78,816 parameters at x8 (26,796 at x2, 37,200 at x4).  Works on any
LR size (fully convolutional, "same" padding).  Pixel loss MSE, as in the paper (the
default of ``pixel_loss``).
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field
from torch import nn

from lpsr.method import Int, Method, MethodSettings, TrainRecipe
from lpsr.models.espcn import ESPCN


class ESPCNSettings(MethodSettings):
    channels: list[Int] = Field(default=[64, 32], min_length=2, max_length=2)
    pixel_loss: Literal["l1", "mse"] = "mse"


class ESPCNMethod(Method):
    name = "espcn"
    source = "Shi et al.: Real-Time Single Image and Video Super-Resolution Using an Efficient Sub-Pixel CNN, CVPR 2016"
    scales = "any"
    order = 30
    Settings = ESPCNSettings

    def build(self) -> nn.Module:
        return ESPCN(self.scale, channels=tuple(self.settings.channels))

    def recipe(self, model: nn.Module) -> TrainRecipe:
        return TrainRecipe(pixel=self.settings.pixel_loss)
