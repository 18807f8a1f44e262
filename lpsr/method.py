"""The Method interface: the one seam between the harness and a super-resolution method.

A method answers five questions and nothing else:

* its ``name`` and ``source`` (paper / where the architecture comes from);
* ``build()``: the network for ``self.scale`` (``None`` for parameter-free methods);
* ``recipe(model)``: how one training step computes its loss (a :class:`TrainRecipe`);
* ``super_resolve(model, lr)``: SR for a batch of LR images in [0, 1];
* ``param_count()``: trainable + buffer-free parameter count of the built network.

The training loop (``lpsr.train.loop``) owns optimisers, schedules, validation,
checkpoints and devices; a method never does.  The runner never branches on a method's
name.  Built-in methods live in ``methods/<name>.py`` with defaults in
``configs/methods/<name>.yaml``; third-party methods register through the entry-point group
``lpsr.methods``.
"""
from __future__ import annotations

from lpsr.errors import UserError

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn


class MethodError(UserError):
    """A method cannot be built or run with the given settings (one-line message)."""


@dataclass
class Batch:
    """One training batch: LR and HR tensors in [0, 1], NCHW, plus plate texts."""

    lr: torch.Tensor
    hr: torch.Tensor
    texts: list[str] = field(default_factory=list)

    def to(self, device: torch.device | str) -> "Batch":
        return Batch(self.lr.to(device), self.hr.to(device), self.texts)


class TrainRecipe(nn.Module):
    """How a method turns (SR, HR) into a loss.  Holds auxiliary networks as submodules.

    The default is a plain pixel loss.  Methods with their own loss (PECL, ESRGAN, TBSRN)
    subclass it.  Parameters of the recipe that require grad are optimised together with
    the SR network (e.g. PECL's learnable loss weights, a trainable Siamese net), except the
    ones under ``discriminator()``, which get their own optimiser.
    """

    def __init__(self, pixel: str = "l1") -> None:
        super().__init__()
        if pixel not in ("l1", "mse"):
            raise MethodError(f"pixel loss must be 'l1' or 'mse', got {pixel!r}")
        self.pixel = pixel

    def pixel_loss(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        if self.pixel == "l1":
            return nn.functional.l1_loss(sr, hr)
        return nn.functional.mse_loss(sr, hr)

    def loss(self, sr: torch.Tensor, batch: Batch, iteration: int, total: int) -> tuple[torch.Tensor, dict[str, float]]:
        """Generator loss and the scalars worth logging."""
        value = self.pixel_loss(sr, batch.hr)
        return value, {"loss": float(value.detach())}

    def discriminator(self) -> nn.Module | None:
        """A network trained adversarially with its own optimiser, or ``None``."""
        return None

    def discriminator_loss(self, sr: torch.Tensor, batch: Batch, iteration: int, total: int) -> tuple[torch.Tensor, dict[str, float]] | None:
        """Discriminator loss on detached SR, or ``None`` when no D step is due."""
        return None

    def generator_parameters(self) -> list[nn.Parameter]:
        disc = self.discriminator()
        skip = {id(p) for p in disc.parameters()} if disc is not None else set()
        return [p for p in self.parameters() if p.requires_grad and id(p) not in skip]

    def after_step(self) -> None:
        """Hook run after every optimiser step (e.g. to project constrained weights)."""

    def describe(self) -> dict[str, Any]:
        """Facts about the recipe that belong in every result (e.g. which init was used)."""
        return {"pixel_loss": self.pixel}


def is_power_of_two(n: int) -> bool:
    return n >= 1 and (n & (n - 1)) == 0


class Method:
    """Base class for every super-resolution method (see module docstring)."""

    name: ClassVar[str] = ""
    source: ClassVar[str] = ""
    #: ``"pow2"``: the network needs a power-of-two scale; ``"any"``: every integer >= 1.
    scales: ClassVar[str] = "any"
    #: whether ``bench run`` trains it (False: parameter-free, e.g. bicubic)
    trainable: ClassVar[bool] = True
    #: group names this method belongs to besides ``all`` (its YAML may override)
    groups: ClassVar[tuple[str, ...]] = ()
    #: whether ``--methods all`` includes it (its YAML may override with ``in_all``)
    in_all: ClassVar[bool] = True
    #: position in listings and leaderboards (the paper's Table 1 order), then by name
    order: ClassVar[int] = 100

    def __init__(self, scale: int, config: dict[str, Any] | None = None) -> None:
        if not isinstance(scale, int) or scale < 1:
            raise MethodError(f"--scale must be a positive integer, got {scale!r}")
        if self.scales == "pow2" and not is_power_of_two(scale):
            raise MethodError(
                f"method '{self.name}' needs a power-of-two --scale (2, 4, 8, ...), got {scale}"
            )
        self.scale = scale
        self.config: dict[str, Any] = dict(config or {})

    # -- the interface -------------------------------------------------------------
    def build(self) -> nn.Module | None:
        raise NotImplementedError

    def recipe(self, model: nn.Module) -> TrainRecipe:
        return TrainRecipe(pixel=self.config.get("pixel_loss", "l1"))

    @torch.no_grad()
    def super_resolve(self, model: nn.Module | None, lr: torch.Tensor) -> torch.Tensor:
        if model is None:
            raise NotImplementedError(f"method '{self.name}' has no network: override super_resolve")
        return model(lr).clamp(0.0, 1.0)

    def param_count(self) -> int:
        model = self.build()
        return count_parameters(model)

    def describe(self) -> dict[str, Any]:
        """Facts that go in the run config next to the resolved settings."""
        return {}


def count_parameters(model: nn.Module | None) -> int:
    """Number of trainable parameters (what SR papers report as 'params')."""
    if model is None:
        return 0
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def log2_int(scale: int) -> int:
    return int(round(math.log2(scale)))

