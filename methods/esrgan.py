"""`esrgan`: ESRGAN (Wang et al., ECCV-W 2018): RRDBNet (23 RRDBs, 64 features, growth 32) trained in two stages.

Adaptation to x8: a third "nearest x2 + conv" upsampling stage (spandrel's RRDBNet builds
log2(s) stages; basicsr's would silently stay x4): 16,734,915 parameters at x8 (16,661,059
at x2, 16,697,987 at x4).  Recipe (``lpsr.losses.esrgan``): L1 pre-training for the first
``pretrain_fraction`` of the iterations, then RaGAN (5e-3) + perceptual (1.0) + L1 (1e-2)
with a VGG-style discriminator sized for the HR training patches (``disc_input_size``,
checked against ``train.patch_size`` by :meth:`ESRGANMethod.validate_training` before
anything trains); the discriminator starts training (and its lr schedule starts) at the
end of pre-training (``ESRGANRecipe.discriminator_start``).  The paper's perceptual net,
ImageNet VGG19 conv5_4, is used only if its weights are on disk (``perceptual_weights`` or
torch hub's cache); otherwise the offline default is the plate recogniser's convolutional
backbone (``perceptual_net``; see ``lpsr.losses.perceptual``), and ``describe()`` says which
one (and lists the plate recogniser in ``ocr_seen_in_training`` when it is used).

Settings and their defaults: :class:`ESRGANSettings` (the one source of them; the YAML
holds only the training recipe).
"""
from __future__ import annotations

from typing import Any

from torch import nn

from lpsr.losses.esrgan import ESRGANLossSettings, ESRGANRecipe
from lpsr.losses.perceptual import resolve_network
from lpsr.method import Int, Method, MethodError, TrainRecipe
from lpsr.models.esrgan import build_rrdbnet


class ESRGANSettings(ESRGANLossSettings):
    features: Int = 64
    blocks: Int = 23


class ESRGANMethod(Method):
    name = "esrgan"
    source = "Wang et al.: ESRGAN: Enhanced Super-Resolution Generative Adversarial Networks, ECCV Workshops 2018"
    scales = "pow2"
    order = 40
    Settings = ESRGANSettings

    def build(self) -> nn.Module:
        return build_rrdbnet(self.scale, features=self.settings.features, blocks=self.settings.blocks)

    def recipe(self, model: nn.Module) -> TrainRecipe:
        loss_keys = ESRGANLossSettings.model_fields
        return ESRGANRecipe(ESRGANLossSettings(**{k: getattr(self.settings, k) for k in loss_keys}))

    def validate_training(self, train_settings: Any) -> None:
        size, patch = self.settings.disc_input_size, int(train_settings.patch_size)
        if self.settings.pretrain_fraction < 1.0 and size != patch:
            raise MethodError(
                f"configs/methods/{self.name}.yaml: disc_input_size {size} does not match train.patch_size {patch}: "
                f"the discriminator sees the HR training patches; set disc_input_size: {patch} (a multiple of 32) "
                f"or train.patch_size: {size}"
            )

    def ocr_seen_in_training(self) -> list[str]:
        net = resolve_network(self.settings.perceptual_net, self.settings.perceptual_weights)
        return ["plate"] if net == "plate-ocr" else []

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "perceptual_net": resolve_network(self.settings.perceptual_net, self.settings.perceptual_weights)}
