"""`esrgan`: ESRGAN (Wang et al., ECCV-W 2018): RRDBNet (23 RRDBs, 64 features, growth 32) trained in two stages.

Adaptation to x8: a third "nearest x2 + conv" upsampling stage (spandrel's RRDBNet builds
log2(s) stages; basicsr's would silently stay x4): 16,734,915 parameters at x8 (16,661,059
at x2, 16,697,987 at x4).  Recipe (``lpsr.losses.esrgan``): L1 pre-training for the first
``pretrain_fraction`` of the iterations, then RaGAN (5e-3) + perceptual (1.0) + L1 (1e-2)
with a VGG-style discriminator sized for the 64x64 HR training patches
(``disc_input_size``).  The paper's perceptual net, ImageNet VGG19 conv5_4, is used only if
its weights are on disk (``perceptual_weights`` or torch hub's cache); otherwise the
offline default is the plate recogniser's convolutional backbone (``perceptual_net``; see
``lpsr.losses.perceptual``), and the run's recipe description says which one was used.
"""
from __future__ import annotations

from typing import Any

from torch import nn

from lpsr.losses.esrgan import ESRGANRecipe
from lpsr.method import Method, TrainRecipe
from lpsr.models.esrgan import build_rrdbnet
from methods._settings import setting


def _optional_str(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


class ESRGANMethod(Method):
    name = "esrgan"
    source = "Wang et al.: ESRGAN: Enhanced Super-Resolution Generative Adversarial Networks, ECCV Workshops 2018"
    scales = "pow2"
    order = 40

    def build(self) -> nn.Module:
        return build_rrdbnet(self.scale, features=setting(self, "features", 64), blocks=setting(self, "blocks", 23))

    def recipe(self, model: nn.Module) -> TrainRecipe:
        return ESRGANRecipe(
            pretrain_fraction=setting(self, "pretrain_fraction", 0.5),
            perceptual_weight=setting(self, "perceptual_weight", 1.0),
            gan_weight=setting(self, "gan_weight", 5e-3),
            pixel_weight=setting(self, "pixel_weight", 1e-2),
            perceptual_net=setting(self, "perceptual_net", "auto"),
            perceptual_weights=setting(self, "perceptual_weights", None, _optional_str),
            disc_input_size=setting(self, "disc_input_size", 64),
        )
