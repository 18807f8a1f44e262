"""`tiny`: a small (28K parameters at x8) learned method for tests and smoke runs (not in `all`)."""
from __future__ import annotations

from typing import Literal

from torch import nn

from lpsr.method import Int, Method, MethodSettings, TrainRecipe
from lpsr.models.tiny import TinySR


class TinySettings(MethodSettings):
    channels: Int = 16
    pixel_loss: Literal["l1", "mse"] = "l1"


class Tiny(Method):
    """Bicubic + learned residual (conv3x3 -> ReLU -> conv3x3 -> PixelShuffle).  Exists so
    the whole training path runs in seconds; not a published method."""

    name = "tiny"
    source = "lpsr-bench test method (bicubic + 2-conv residual)"
    scales = "any"
    order = 900
    in_all = False
    groups = ("smoke",)
    Settings = TinySettings

    def build(self) -> nn.Module:
        return TinySR(self.scale, channels=self.settings.channels)

    def recipe(self, model: nn.Module) -> TrainRecipe:
        return TrainRecipe(pixel=self.settings.pixel_loss)
