"""The Method interface: the one seam between the harness and a super-resolution method.

A method answers five questions and nothing else:

* its ``name`` and ``source`` (paper / where the architecture comes from), the scales it
  supports (``scales``, checked once, here) and the LR sizes its network takes
  (``size_rule()``, met by one generic wrapper, :class:`lpsr.sizing.SizeFitted`), and its
  ``Settings``: a :class:`MethodSettings` pydantic model (``extra="forbid"``, frozen,
  strict types) whose field defaults are the method's one source of defaults; the YAML in
  ``configs/methods`` holds only what differs (and its ``train:`` recipe block);
* ``build()``: the network for ``self.scale`` (``None`` for parameter-free methods);
* ``recipe(model)``: how one training step computes its loss (a :class:`TrainRecipe`);
* ``super_resolve(model, lr)``: SR for a batch of LR images in [0, 1];
* ``param_count()``: trainable + buffer-free parameter count of the built network.

Optional hooks: ``validate_training(train_settings)`` (raise a one-line error if the
profile's training settings cannot work for this method; the runner calls it for every
method before anything trains) and the class attribute ``train_on_whole_plates`` (the
training loop feeds whole plates instead of square HR patches).

The training loop (``lpsr.train.loop``) owns optimisers, schedules, validation,
checkpoints and devices; a method never does.  The runner never branches on a method's
name.  Built-in methods live in ``methods/<name>.py`` with defaults in
``configs/methods/<name>.yaml``; third-party methods register through the entry-point group
``lpsr.methods``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict, StrictBool, StrictInt, ValidationError
from torch import nn

# MethodError / MethodSettingsError are defined with the other errors; re-exported here,
# where methods and plug-ins have always imported them from
from lpsr.errors import MethodError, MethodSettingsError  # noqa: F401
from lpsr.settings_model import Float, one_line  # noqa: F401  (Float: re-exported for methods)
from lpsr.sizing import SizeFitted, SizeRule


# ------------------------------------------------------------------ typed settings
#: ``Float`` (lpsr.settings_model) also takes YAML's ``1e-4``; ``Int`` and ``Bool`` are strict
#: (no 4.7, no "yes")
Int = StrictInt
Bool = StrictBool


class MethodSettings(BaseModel):
    """Base of every method's settings model: unknown keys and wrong types are errors.

    Subclass it with the method's keys and their defaults (the one source of defaults).
    Use ``Int``, ``Float``, ``Bool``, ``Literal[...]``, ``list[Int]`` and nested
    ``MethodSettings`` models.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    @classmethod
    def parse(cls, values: Any, where: str) -> "MethodSettings":
        """``values`` validated; a mistake is a one-line :class:`MethodSettingsError` naming
        ``where`` and the key path."""
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise settings_error(exc, where, cls) from None


def settings_error(exc: ValidationError, where: str, model: type[BaseModel]) -> MethodSettingsError:
    """The first validation error as one line: ``{where}: {key.path}: {what}``."""
    return MethodSettingsError(one_line(exc, where, model))


@dataclass
class Batch:
    """One training batch: LR and HR tensors in [0, 1], NCHW, plus plate texts."""

    lr: torch.Tensor
    hr: torch.Tensor
    texts: list[str] = field(default_factory=list)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "Batch":
        return Batch(self.lr.to(device, non_blocking=non_blocking), self.hr.to(device, non_blocking=non_blocking), self.texts)

    def pin_memory(self) -> "Batch":
        """Page-locked copies (DataLoader ``pin_memory=True``), for non-blocking GPU copies."""
        return Batch(self.lr.pin_memory(), self.hr.pin_memory(), self.texts)


class TrainRecipe(nn.Module):
    """How a method turns (SR, HR) into a loss.  Holds auxiliary networks as submodules.

    The default is a plain pixel loss.  Methods with their own loss (PECL, ESRGAN, TBSRN)
    subclass it.  Parameters of the recipe that require grad are optimised together with
    the SR network (e.g. PECL's learnable loss weights, a trainable Siamese net), except the
    ones under ``discriminator()``, which get their own optimiser.
    """

    def __init__(self, pixel: str = "l1", loss_scale: float = 1.0) -> None:
        super().__init__()
        if pixel not in ("l1", "mse"):
            raise MethodError(f"pixel loss must be 'l1' or 'mse', got {pixel!r}")
        self.pixel = pixel
        #: the loss is multiplied by this before backward (TBSRN's official code: x100,
        #: which matters together with gradient-norm clipping); logged values are unscaled
        self.loss_scale = float(loss_scale)

    def pixel_loss(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        if self.pixel == "l1":
            return nn.functional.l1_loss(sr, hr)
        return nn.functional.mse_loss(sr, hr)

    def loss(self, sr: torch.Tensor, batch: Batch, iteration: int, total: int) -> tuple[torch.Tensor, dict[str, torch.Tensor | float]]:
        """Generator loss and the scalars worth logging.

        Log values are DETACHED TENSORS (or plain floats): the loop reads them at log
        intervals only, so a step never waits for the GPU (``float(t)`` here would)."""
        value = self.pixel_loss(sr, batch.hr)
        return value * self.loss_scale, {"loss": value.detach()}

    def discriminator(self) -> nn.Module | None:
        """A network trained adversarially with its own optimiser, or ``None``."""
        return None

    def discriminator_loss(self, sr: torch.Tensor, batch: Batch, iteration: int, total: int) -> tuple[torch.Tensor, dict[str, torch.Tensor | float]] | None:
        """Discriminator loss on detached SR, or ``None`` when no D step is due (logs as in :meth:`loss`)."""
        return None

    def generator_parameters(self) -> list[nn.Parameter]:
        disc = self.discriminator()
        skip = {id(p) for p in disc.parameters()} if disc is not None else set()
        return [p for p in self.parameters() if p.requires_grad and id(p) not in skip]

    def after_step(self) -> None:
        """Hook run after every optimiser step (e.g. to project constrained weights)."""

    def describe(self) -> dict[str, Any]:
        """Facts about the recipe that belong in every result (e.g. which init was used)."""
        return {"pixel_loss": self.pixel, **({"loss_scale": self.loss_scale} if self.loss_scale != 1.0 else {})}


def is_power_of_two(n: int) -> bool:
    return n >= 1 and (n & (n - 1)) == 0


#: the scale rules a method can declare (``Method.scales``): which ``--scale`` values its
#: network supports, and how the error says so
SCALE_RULES: dict[str, tuple[str, Any]] = {
    "any": ("a positive integer --scale", lambda s: s >= 1),
    # x2 upsampling stages
    "pow2": ("a power-of-two --scale (2, 4, 8, ...)", lambda s: s >= 2 and is_power_of_two(s)),
    # x2 stages or one x3 stage (SwinIR's, ESRGAN-style pixel-shuffle upsamplers)
    "pow2+3": ("--scale 3 or a power of two (2, 4, 8, ...)", lambda s: s == 3 or (s >= 2 and is_power_of_two(s))),
}


class Method:
    """Base class for every super-resolution method (see module docstring)."""

    name: ClassVar[str] = ""
    source: ClassVar[str] = ""
    #: the scales its network supports, a key of :data:`SCALE_RULES`: ``"any"`` (every
    #: integer >= 1), ``"pow2"`` (2, 4, 8, ...), ``"pow2+3"`` (also 3).  The one check of it
    #: is in ``__init__``; the architectures in ``lpsr.models`` do not repeat it.
    scales: ClassVar[str] = "any"
    #: whether ``bench run`` trains it (False: parameter-free, e.g. bicubic)
    trainable: ClassVar[bool] = True
    #: group names this method belongs to besides ``all`` (its YAML may override)
    groups: ClassVar[tuple[str, ...]] = ()
    #: whether ``--methods all`` includes it (its YAML may override with ``in_all``)
    in_all: ClassVar[bool] = True
    #: position in listings and leaderboards (the paper's Table 1 order), then by name
    order: ClassVar[int] = 100
    #: the settings model (``None``: untyped, ``self.config`` is the YAML as written; only
    #: for third-party methods that predate typed settings)
    Settings: ClassVar[type[MethodSettings] | None] = None
    #: train on whole plates (LR 24x8 at x8) instead of square HR patches: for networks whose
    #: statistics depend on the input size (BatchNorm, attention over all positions,
    #: absolute positional codes), so that training and evaluation see the same size
    train_on_whole_plates: ClassVar[bool] = False
    #: the no-parameter floor reports compare learned methods with (the Bicubic row and figures)
    floor: ClassVar[bool] = False
    #: where bf16 autocast training was measured to keep this method's quality at equal
    #: iterations (a report); ``train.precision: auto`` trains in bf16 only with one
    bf16_quality: ClassVar[str | None] = None

    def __init__(self, scale: int, config: dict[str, Any] | None = None, *, where: str = "") -> None:
        if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
            raise MethodError(f"--scale must be a positive integer, got {scale!r}")
        needs, supported = SCALE_RULES[self.scales]
        if not supported(scale):
            raise MethodError(f"method '{self.name}' needs {needs}, got {scale}")
        self.scale = scale
        self.settings: MethodSettings | None = self.parse_settings(config or {}, where or f"settings of method '{self.name}'")
        #: the resolved settings as plain data (every default filled in): what the run records
        self.config: dict[str, Any] = (
            self.settings.model_dump(mode="json") if self.settings is not None else dict(config or {})
        )

    @classmethod
    def parse_settings(cls, config: dict[str, Any], where: str) -> MethodSettings | None:
        """Validate ``config`` against :attr:`Settings`; errors name ``where`` and the key path."""
        if cls.Settings is None:
            return None
        if not isinstance(config, dict):
            raise MethodSettingsError(f"{where}: settings must be a mapping, got {type(config).__name__}")
        return cls.Settings.parse(config, where)

    # -- the interface -------------------------------------------------------------
    def build(self) -> nn.Module | None:
        raise NotImplementedError

    def recipe(self, model: nn.Module) -> TrainRecipe:
        return TrainRecipe(pixel=self.config.get("pixel_loss", "l1"))

    def size_rule(self) -> SizeRule:
        """The LR sizes the network takes (default: any); declared once, from the settings
        (e.g. SwinIR's window).  :meth:`fit` makes the built network take any size."""
        return SizeRule()

    def fit(self, net: nn.Module) -> nn.Module:
        """``net`` wrapped so that it takes an LR of any size (pad to :meth:`size_rule`, crop
        back); ``build()`` returns this for a network with a size rule."""
        rule = self.size_rule()
        return net if rule.any_size else SizeFitted(net, rule, self.scale)

    @torch.no_grad()
    def super_resolve(self, model: nn.Module | None, lr: torch.Tensor) -> torch.Tensor:
        if model is None:
            raise NotImplementedError(f"method '{self.name}' has no network: override super_resolve")
        return model(lr).clamp(0.0, 1.0)

    def param_count(self) -> int:
        model = self.build()
        return count_parameters(model)

    def validate_training(self, train_settings: Any) -> None:
        """Raise a one-line :class:`MethodError` if ``train_settings`` (the resolved
        ``TrainSettings`` of this method) cannot work; called before anything trains."""

    def ocr_seen_in_training(self) -> list[str]:
        """Recognisers (``lpsr.ocr`` names: ``plate``, ``ppocr``, ...) whose weights the
        training loss uses; a leaderboard must not call that recogniser an independent reader."""
        return []

    def describe(self) -> dict[str, Any]:
        """Facts that go in every result next to the resolved settings (subclasses extend
        it; ``ocr_seen_in_training`` is always there)."""
        return {"ocr_seen_in_training": self.ocr_seen_in_training()}


def count_parameters(model: nn.Module | None) -> int:
    """Number of trainable parameters (what SR papers report as 'params')."""
    if model is None:
        return 0
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
