"""A named, parametrised degradation: HR plate -> LR plate, deterministic per key."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lpsr.data.degrade import modcrop
from lpsr.degradations.keys import Key, canonical_json, generator_for
from lpsr.degradations.presets import Preset


#: the test LR of every run that does not ask for another (``bench run --degradation``)
DEFAULT_DEGRADATION = "bicubic"
#: the preset kind of today's LR
DEFAULT_KIND = "bicubic"


def recorded_degradation(record: dict[str, Any] | None) -> dict[str, Any] | None:
    """A result's ``degradation`` record when it is not the default, else ``None`` (also for
    results written before degradations were recorded): what reports group and print by."""
    if not isinstance(record, dict) or (record.get("params") or {}).get("kind", DEFAULT_KIND) == DEFAULT_KIND:
        return None
    return record


@dataclass(frozen=True)
class Degradation:
    """``name`` (a built-in preset's name or a YAML file's stem) and its typed ``preset``."""
    name: str
    preset: Preset
    source: str = field(default="", compare=False)  # the YAML it came from (for messages)

    @property
    def params(self) -> dict[str, Any]:
        """Every parameter, JSON-ready (lists, floats, ints, strings)."""
        return self.preset.model_dump(mode="json")

    @property
    def fingerprint(self) -> str:
        """12 hex digits of sha256 over (name, parameters): stable across processes/machines."""
        return hashlib.sha256(canonical_json([self.name, self.params]).encode()).hexdigest()[:12]

    @property
    def is_default(self) -> bool:
        """Today's LR (antialiased bicubic, nothing drawn): results, keys and file names then
        stay exactly what they were before degradations existed."""
        return self.preset.kind == DEFAULT_KIND

    @property
    def suffix(self) -> str:
        """What run-directory and leaderboard names get: ``""`` for the default, else ``-<name>``."""
        return "" if self.is_default else f"-{self.name}"

    def describe(self) -> dict[str, Any]:
        """What results must record: name, every parameter, the fingerprint."""
        return {"name": self.name, "params": self.params, "fingerprint": self.fingerprint}

    def apply(self, hr: np.ndarray, scale: int, *, key: Key, plate_id: str = "") -> np.ndarray:
        """uint8 HxWx3 RGB HR -> uint8 (H/s)x(W/s)x3 LR of the HR mod-cropped to ``scale``.

        ``key``: a test plate's id (str; the draws are seeded by it, this preset's name and
        parameters), a training ``(seed, rank, k)`` tuple (``k``: the sample's position in the
        stream), or a numpy ``Generator`` (e.g. a
        :func:`~lpsr.degradations.keys.training_generator`).  ``plate_id`` only names the
        plate in errors (defaults to a str key)."""
        plate_id = plate_id or (key if isinstance(key, str) else "")
        hr = modcrop(np.ascontiguousarray(hr), scale, plate_id)
        return self.preset.lr(hr, scale, generator_for(key, self.name, self.params), plate_id)

    def pair(self, hr: np.ndarray, scale: int, *, key: Key, plate_id: str = "") -> tuple[np.ndarray, np.ndarray]:
        """(LR, HR mod-cropped to ``scale``), as ``lpsr.data.degrade.make_pair`` returns them."""
        return self.apply(hr, scale, key=key, plate_id=plate_id), modcrop(hr, scale, plate_id)
