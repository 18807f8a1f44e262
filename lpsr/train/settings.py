"""Training settings: the ``train:`` block of a profile, one typed model, checked once.

:class:`TrainSettings` is a pydantic model (``extra="forbid"``, frozen, strict): a
misspelt key, ``iterations: 4.7`` or ``iterations: true`` is an error, never a silent
cast.  Its field defaults are the one source of the defaults.  :meth:`TrainSettings.from_dict`
turns the first validation error into a one-line :class:`lpsr.errors.ConfigError`
``"{where}.{key}: ..."``.

One leniency: a float setting also accepts a string that is a plain number, because
PyYAML reads ``lr: 1e-4`` (no dot) as the string ``"1e-4"``.

Keys (see README "Training settings"):

* budget: ``iterations``, ``batch_size``, ``patch_size`` (HR side), ``val_every``,
  ``val_plates``, ``log_every``;
* optimiser: ``optimizer`` (adam), ``lr``, ``lr_d`` (discriminator lr; ``null`` = ``lr``),
  ``betas``, ``grad_clip`` (max global norm over every optimised generator-side parameter;
  0 = off);
* schedule: ``schedule`` (cosine | constant | step), ``lr_steps`` / ``lr_gamma`` (step:
  multiply the lr by ``lr_gamma`` at each listed iteration), ``warmup_iterations``
  (linear warm-up from 0 before the schedule; 0 = off);
* recipes: ``ema_decay`` (EMA of the weights, validated and saved beside the raw ones;
  0 = off), ``early_stop_patience`` (stop after this many validations without a new
  best; 0 = off);
* LR: ``degradation`` (how training and validation LR are made from the HR plates: a preset
  of ``configs/degradations/`` or a preset YAML; default ``DEFAULT_DEGRADATION``, today's
  bicubic, which :meth:`TrainSettings.to_dict` leaves out so that keys and checkpoints of
  bicubic runs stay what they were; docs/degradations.md);
* speed: ``precision`` (fp32 | bf16 | fp16 autocast | auto: bf16 where fast and checked,
  :func:`lpsr.train.precision.resolve_auto`), ``channels_last``, ``compile``
  (torch.compile), ``threads`` (torch intra-op threads, at most ``THREADS_MAX``; 0 = torch's default),
  ``loader_workers`` (DataLoader worker processes cutting patch batches; ``null`` = 0 on
  the CPU, 4 on CUDA; the batches are the same for any number).
"""
from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_serializer, model_validator

from lpsr.degradations import DEFAULT_DEGRADATION, Degradation, default_degradation, get_degradation
from lpsr.errors import ConfigError
from lpsr.settings_model import Float, one_line

#: the most torch intra-op threads ``train.threads`` may ask for
THREADS_MAX = 256


class TrainSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    iterations: int = 300
    batch_size: int = 16
    patch_size: int = 64
    optimizer: Literal["adam"] = "adam"
    lr: Float = 5e-4
    lr_d: Float | None = None
    betas: tuple[Float, Float] = (0.9, 0.999)
    schedule: Literal["cosine", "constant", "step"] = "cosine"
    lr_steps: tuple[int, ...] = ()
    lr_gamma: Float = 0.5
    warmup_iterations: int = 0
    val_every: int = 100
    val_plates: int = 24
    log_every: int = 20
    threads: int = 2
    loader_workers: int | None = None
    grad_clip: Float = 0.0
    precision: Literal["fp32", "bf16", "fp16", "auto"] = "fp32"
    channels_last: bool = False
    compile: bool = False
    ema_decay: Float = 0.0
    early_stop_patience: int = 0
    degradation: str = DEFAULT_DEGRADATION

    # -- coercions that strict mode would refuse but YAML makes unavoidable ----------
    # (floats: ``Float`` takes YAML's ``1e-4`` string)
    @field_validator("betas", "lr_steps", mode="before")
    @classmethod
    def _list_to_tuple(cls, value: Any, info: Any) -> Any:
        if isinstance(value, list):
            value = tuple(value)
        if info.field_name == "betas" and isinstance(value, tuple) and len(value) != 2:
            raise _Bad("betas", f"expected a list of two numbers [beta1, beta2], got {list(value)}")
        return value

    # -- value checks ----------------------------------------------------------------
    @field_validator("threads")
    @classmethod
    def _threads_cap(cls, value: int) -> int:
        # libgomp aborts ("Out of memory allocating ...") long before 100000 threads
        if value > THREADS_MAX:
            raise _Bad("threads", f"must be at most {THREADS_MAX} (this machine has {os.cpu_count()} CPU cores; 0 = torch's default), got {value}")
        return value

    @field_validator("degradation")
    @classmethod
    def _known_degradation(cls, value: str) -> str:
        try:
            _degradation(value)
        except ConfigError as exc:
            raise _Bad("degradation", str(exc)) from None
        return value

    @model_validator(mode="after")
    def _check(self) -> "TrainSettings":
        for name in ("iterations", "batch_size", "patch_size", "val_every", "val_plates", "log_every"):
            if getattr(self, name) < 1:
                raise _Bad(name, f"must be >= 1, got {getattr(self, name)}")
        if self.loader_workers is not None and self.loader_workers < 0:
            raise _Bad("loader_workers", f"must be >= 0 (or null: 0 on the CPU, 4 on CUDA), got {self.loader_workers}")
        for name in ("threads", "warmup_iterations", "early_stop_patience"):
            if getattr(self, name) < 0:
                raise _Bad(name, f"must be >= 0, got {getattr(self, name)}")
        if not self.lr > 0:
            raise _Bad("lr", f"must be > 0, got {self.lr}")
        if self.lr_d is not None and not self.lr_d > 0:
            raise _Bad("lr_d", f"must be > 0 (or null for the generator's lr), got {self.lr_d}")
        if not all(0.0 <= b < 1.0 for b in self.betas):
            raise _Bad("betas", f"both must be in [0, 1), got {list(self.betas)}")
        if not self.grad_clip >= 0:
            raise _Bad("grad_clip", f"must be >= 0 (0 disables clipping), got {self.grad_clip}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise _Bad("ema_decay", f"must be in [0, 1) (0 disables the EMA), got {self.ema_decay}")
        if not self.lr_gamma > 0:
            raise _Bad("lr_gamma", f"must be > 0, got {self.lr_gamma}")
        if self.warmup_iterations >= self.iterations:
            raise _Bad("warmup_iterations", f"must be below iterations ({self.iterations}), got {self.warmup_iterations}")
        if self.schedule == "step":
            if not self.lr_steps:
                raise _Bad("lr_steps", "schedule 'step' needs lr_steps: a list of iterations at which the lr is multiplied by lr_gamma")
            if list(self.lr_steps) != sorted(set(self.lr_steps)) or self.lr_steps[0] < 1:
                raise _Bad("lr_steps", f"must be increasing positive iterations, got {list(self.lr_steps)}")
        elif self.lr_steps:
            raise _Bad("lr_steps", f"only used with schedule 'step' (schedule is {self.schedule!r}); remove it or set schedule: step")
        return self

    # -- the interface the rest of the harness uses ------------------------------------
    @classmethod
    def from_dict(cls, data: Any, where: str = "train") -> "TrainSettings":
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: expected a mapping of training settings, got {type(data).__name__} {data!r}")
        try:
            return cls(**{str(k): v for k, v in data.items()})
        except _Bad as bad:
            raise ConfigError(f"{where}.{bad.key}: {bad.reason}") from None
        except ValidationError as exc:
            raise ConfigError(_one_line(exc, where)) from None

    @model_serializer(mode="wrap")
    def _without_default_degradation(self, handler: Any) -> dict[str, Any]:
        # every dump leaves out the default training LR, so bicubic runs' config.yaml, training
        # keys and resume checkpoints (and a dumped profile) stay what they were before it existed
        data = handler(self)
        if data.get("degradation") == DEFAULT_DEGRADATION:
            del data["degradation"]
        return data

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML-able values (lists, not tuples), every key present but
        ``degradation`` when it is the default."""
        return self.model_dump(mode="json")

    def lr_degradation(self) -> Degradation:
        """How training and validation LR are made (``degradation`` resolved to its preset)."""
        return _degradation(self.degradation)

    def workers_for(self, device_type: str) -> int:
        """DataLoader worker processes on this device (``loader_workers``; null = 0 on the CPU, 4 on CUDA)."""
        if self.loader_workers is not None:
            return self.loader_workers
        return 4 if device_type == "cuda" else 0

    def lr_for_discriminator(self) -> float:
        return self.lr if self.lr_d is None else self.lr_d


def _degradation(spec: str) -> Degradation:
    return default_degradation() if spec == DEFAULT_DEGRADATION else get_degradation(spec)


class _Bad(ValueError):
    """A value check that names its key (raised inside validation, reported by from_dict)."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key, self.reason = key, reason


def _one_line(exc: ValidationError, where: str) -> str:
    bad = (exc.errors(include_url=False)[0].get("ctx") or {}).get("error")
    if isinstance(bad, _Bad):  # a value check above: it names its own key
        return f"{where}.{bad.key}: {bad.reason}"
    return one_line(exc, where, TrainSettings, sep=".")
