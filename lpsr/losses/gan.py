"""Relativistic-average GAN losses and ESRGAN's VGG-style discriminator.

RaGAN (Jolicoeur-Martineau 2018, as used by ESRGAN): the discriminator judges whether a
real image is more realistic than the *average* fake one and vice versa,

    D_Ra(a, b) = C(a) - mean(C(b)),
    L_D = BCE(D_Ra(real, fake), 1) / 2 + BCE(D_Ra(fake, real), 0) / 2,
    L_G = BCE(D_Ra(real, fake), 0) / 2 + BCE(D_Ra(fake, real), 1) / 2,

with ``C`` the raw discriminator output (logits; BCE-with-logits applies the sigmoid).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lpsr.method import MethodError


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def ragan_discriminator_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """``real`` = C(HR), ``fake`` = C(SR.detach())."""
    return 0.5 * (_bce(real - fake.mean(), 1.0) + _bce(fake - real.mean(), 0.0))


def ragan_generator_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """``real`` = C(HR) (no gradient needed), ``fake`` = C(SR) with gradient to the generator."""
    return 0.5 * (_bce(real - fake.mean(), 0.0) + _bce(fake - real.mean(), 1.0))


def _conv(cin: int, cout: int, kernel: int, stride: int, norm: bool) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride, 1, bias=not norm)]
    if norm:
        layers.append(nn.BatchNorm2d(cout, affine=True))
    layers.append(nn.LeakyReLU(0.2, inplace=True))
    return layers


class VGGStyleDiscriminator(nn.Module):
    """ESRGAN's discriminator: five stages of (conv3x3 stride 1, conv4x4 stride 2) with BN
    and LeakyReLU(0.2), channels 64-128-256-512-512, then FC -> 100 -> LeakyReLU -> FC -> 1.

    The published one is for 128x128 HR patches (4x4 maps before the FC layers).  Here it
    is sized for ``input_size`` x ``input_size`` patches (64: the paper's HR patch), which
    only changes the first FC layer's width: 512 x (input_size / 32)^2 inputs.
    """

    def __init__(self, input_size: int = 64, features: int = 64) -> None:
        super().__init__()
        if input_size < 32 or input_size % 32:
            raise MethodError(f"esrgan: disc_input_size must be a multiple of 32 (>= 32), got {input_size}; set it to train.patch_size")
        self.input_size = input_size
        f = features
        widths = [f, 2 * f, 4 * f, 8 * f, 8 * f]
        layers = _conv(3, f, 3, 1, norm=False) + _conv(f, f, 4, 2, norm=True)
        for cin, cout in zip(widths[:-1], widths[1:]):
            layers += _conv(cin, cout, 3, 1, norm=True) + _conv(cout, cout, 4, 2, norm=True)
        self.features = nn.Sequential(*layers)
        side = input_size // 32
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(widths[-1] * side * side, 100), nn.LeakyReLU(0.2, inplace=True), nn.Linear(100, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != (self.input_size, self.input_size):
            raise MethodError(
                f"esrgan: the discriminator is built for {self.input_size}x{self.input_size} HR patches, got "
                f"{x.shape[-1]}x{x.shape[-2]}; set disc_input_size in configs/methods/esrgan.yaml to train.patch_size"
            )
        return self.classifier(self.features(x))
