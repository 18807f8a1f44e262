"""Training settings: the ``train:`` block of a profile, checked once, with clear errors."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from lpsr.config import ConfigError


@dataclass(frozen=True)
class TrainSettings:
    iterations: int = 300
    batch_size: int = 16
    patch_size: int = 64
    optimizer: str = "adam"
    lr: float = 5e-4
    schedule: str = "cosine"  # cosine | constant
    val_every: int = 100
    val_plates: int = 24
    log_every: int = 20
    threads: int = 2  # 0 keeps torch's default
    grad_clip: float = 0.0  # 0 disables clipping

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "train") -> "TrainSettings":
        known = {f.name: f.type for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(f"{where}: unknown training setting(s) {', '.join(unknown)}; known: {', '.join(known)}")
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in data:
                continue
            raw = data[f.name]
            cast = type(getattr(cls, f.name))
            try:
                values[f.name] = cast(raw)
            except (TypeError, ValueError):
                raise ConfigError(f"{where}.{f.name}: expected {cast.__name__}, got {raw!r}") from None
        settings = cls(**values)
        settings.check(where)
        return settings

    def check(self, where: str = "train") -> None:
        positive = ("iterations", "batch_size", "patch_size", "val_every", "val_plates", "log_every")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"{where}.{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ConfigError(f"{where}.lr must be > 0, got {self.lr}")
        if self.optimizer != "adam":
            raise ConfigError(f"{where}.optimizer: only 'adam' (the paper's) is supported, got {self.optimizer!r}")
        if self.schedule not in ("cosine", "constant"):
            raise ConfigError(f"{where}.schedule must be 'cosine' or 'constant', got {self.schedule!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
