"""ESRGAN's two-stage training recipe (Wang et al. 2018, Sec. 4.1).

Stage 1, the first ``pretrain_fraction`` of the iterations: a PSNR-oriented generator
trained with L1 alone (no discriminator step).  Stage 2: the generator minimises

    perceptual_weight * L_percep + gan_weight * L_G^Ra + pixel_weight * L1
    (defaults 1.0, 5e-3, 1e-2: the paper's),

and the VGG-style discriminator, with its own Adam (the training loop's), minimises L_D^Ra on
the detached SR after every generator step.  The paper's perceptual net is VGG19 (conv5_4,
before ReLU) with ImageNet weights; see ``lpsr.losses.perceptual`` for the offline
alternatives and ``describe()`` for the one used.
"""
from __future__ import annotations

import math
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from lpsr.losses.gan import VGGStyleDiscriminator, ragan_discriminator_loss, ragan_generator_loss
from lpsr.losses.perceptual import NETWORKS, PerceptualLoss
from lpsr.method import Batch, Float, Int, MethodSettings, TrainRecipe


class ESRGANLossSettings(MethodSettings):
    """The recipe's settings and their defaults (the paper's; the one source of them)."""

    #: first fraction of the iterations: L1 pre-training (no discriminator step)
    pretrain_fraction: Float = Field(0.5, ge=0.0, le=1.0)
    perceptual_weight: Float = Field(1.0, ge=0.0)
    gan_weight: Float = Field(5e-3, ge=0.0)
    pixel_weight: Float = Field(1e-2, ge=0.0)
    #: auto | vgg19-imagenet | plate-ocr | random-vgg19 (``lpsr.losses.perceptual``)
    perceptual_net: Literal[NETWORKS] = "auto"  # type: ignore[valid-type]
    #: torchvision's vgg19-dcbbabee.pth (default: torch hub's cache)
    perceptual_weights: str | None = None
    #: HR side the discriminator is built for: must equal ``train.patch_size``
    disc_input_size: Int = Field(64, ge=32, multiple_of=32)


class ESRGANRecipe(TrainRecipe):
    """``ESRGANRecipe(**settings)``: keyword settings of :class:`ESRGANLossSettings`
    (defaults there), plus ``perceptual`` to pass a ready feature loss (tests)."""

    def __init__(self, settings: ESRGANLossSettings | None = None, perceptual: PerceptualLoss | None = None, **values: Any) -> None:
        super().__init__(pixel="l1")
        if settings is None:
            settings = ESRGANLossSettings.parse(values, "esrgan")
        self.settings = settings
        self.pretrain_fraction = float(settings.pretrain_fraction)
        self.weights = {"perceptual": settings.perceptual_weight, "gan": settings.gan_weight, "pixel": settings.pixel_weight}
        self.disc = VGGStyleDiscriminator(settings.disc_input_size)
        self.perceptual = perceptual if perceptual is not None else PerceptualLoss(settings.perceptual_net, settings.perceptual_weights)

    def in_gan_stage(self, iteration: int, total: int) -> bool:
        return iteration > self.pretrain_fraction * total

    def discriminator_start(self, total: int) -> int:
        """Iterations before the discriminator first trains: the L1 pre-training
        (read by ``lpsr.train.loop``, which starts D's schedule there)."""
        return math.floor(self.pretrain_fraction * total)

    def discriminator(self) -> nn.Module:
        return self.disc

    def loss(self, sr: torch.Tensor, batch: Batch, iteration: int, total: int) -> tuple[torch.Tensor, dict[str, torch.Tensor | float]]:
        l1 = F.l1_loss(sr, batch.hr)
        if not self.in_gan_stage(iteration, total):
            return l1, {"loss": l1.detach(), "l_pixel": l1.detach(), "gan_stage": 0.0}
        percep = self.perceptual(sr, batch.hr)
        # the generator step must not leave gradients in D: freeze it while building the graph
        self.disc.requires_grad_(False)
        try:
            with torch.no_grad():
                real = self.disc(batch.hr)
            fake = self.disc(sr)
        finally:
            self.disc.requires_grad_(True)
        adv = ragan_generator_loss(real, fake)
        w = self.weights
        total_loss = w["perceptual"] * percep + w["gan"] * adv + w["pixel"] * l1
        return total_loss, {
            "loss": total_loss.detach(),
            "l_pixel": l1.detach(),
            "l_percep": percep.detach(),
            "l_g_gan": adv.detach(),
            "gan_stage": 1.0,
        }

    def discriminator_loss(self, sr: torch.Tensor, batch: Batch, iteration: int, total: int) -> tuple[torch.Tensor, dict[str, torch.Tensor | float]] | None:
        if not self.in_gan_stage(iteration, total):
            return None
        real = self.disc(batch.hr)
        fake = self.disc(sr.detach())
        loss = ragan_discriminator_loss(real, fake)
        return loss, {
            "l_d": loss.detach(),
            "d_real": torch.sigmoid(real.detach()).mean(),
            "d_fake": torch.sigmoid(fake.detach()).mean(),
        }

    def describe(self) -> dict[str, Any]:
        return {
            "recipe": "esrgan two-stage (L1 pre-training, then RaGAN + perceptual + L1)",
            "pretrain_fraction": self.pretrain_fraction,
            "loss_weights": dict(self.weights),
            "discriminator": f"VGG-style, {self.disc.input_size}x{self.disc.input_size} input",
            **self.perceptual.describe(),
            "ocr_seen_in_training": ["plate"] if self.perceptual.network == "plate-ocr" else [],
        }
