"""`srcnn`: SRCNN (Dong et al., TPAMI 2015), 9-5-5 with 64/32 channels, on the bicubic-upsampled plate.

Adaptation to plates and x8: RGB in and out (the paper: Y only, 57K parameters; here
69,251 at every scale, since the network never depends on the scale), "same" zero padding
so the output keeps the plate size, and the bicubic upsampling by x s done inside the
network (torch bicubic, a = -0.75) so that training and inference call the same module.
Pixel loss MSE, as in the paper (the default of ``pixel_loss``).
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field
from torch import nn

from lpsr.method import Int, Method, MethodSettings, TrainRecipe
from lpsr.models.srcnn import SRCNN


class SRCNNSettings(MethodSettings):
    channels: list[Int] = Field(default=[64, 32], min_length=2, max_length=2)
    kernels: list[Int] = Field(default=[9, 5, 5], min_length=3, max_length=3)
    pixel_loss: Literal["l1", "mse"] = "mse"


class SRCNNMethod(Method):
    name = "srcnn"
    source = "Dong, Loy, He, Tang: Image Super-Resolution Using Deep Convolutional Networks, TPAMI 2015"
    scales = "any"
    order = 10
    Settings = SRCNNSettings

    def build(self) -> nn.Module:
        s = self.settings
        return SRCNN(self.scale, channels=tuple(s.channels), kernels=tuple(s.kernels))

    def recipe(self, model: nn.Module) -> TrainRecipe:
        return TrainRecipe(pixel=self.settings.pixel_loss)
