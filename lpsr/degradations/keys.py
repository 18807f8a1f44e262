"""Where a degradation's random draws come from: one numpy generator per sample, seeded by
a stable hash, never by Python's ``hash()`` (salted per process) or a global RNG.

- test LR: :func:`plate_generator` seeds from (plate id, preset name, preset parameters), so
  every method sees the same LR and a rerun in any process makes the same bytes;
- training LR: :func:`training_generator` seeds from (seed, rank, k), ``k`` the sample's
  position in the patch stream (``lpsr.data.patches``), so the stream stays a pure function
  of (seed, rank, batch) and resume stays exact.  A tag keeps its draws apart from the patch
  sampler's own ``default_rng([seed, rank, batch])``.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Union

import numpy as np

#: what ``Degradation.apply(..., key=)`` takes: a test plate's id, a training
#: ``(seed, rank, k)`` tuple, or a generator the caller already holds
Key = Union[str, tuple, np.random.Generator]

_TRAIN_TAG = 0x4C505352  # "LPSR": keeps training draws apart from the patch stream's


def canonical_json(obj: Any) -> str:
    """The one serialisation hashed for seeds and fingerprints (sorted keys, no spaces)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _words(text: str) -> list[int]:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return [int.from_bytes(digest[i:i + 4], "little") for i in range(0, 32, 4)]


def plate_generator(plate_id: str, name: str, params: dict) -> np.random.Generator:
    """The generator of test plate ``plate_id`` under preset ``name`` with ``params``."""
    return np.random.default_rng(np.random.SeedSequence(_words(canonical_json([plate_id, name, params]))))


def training_generator(seed: int, rank: int, k: int) -> np.random.Generator:
    """The generator of training sample ``k`` of rank ``rank``'s stream: the patch sampler
    gives sample ``i`` of batch ``b`` its own, ``k = b * batch_size + i``, so a sample's LR
    never depends on what another sample drew."""
    for v in (seed, rank, k):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"training key (seed, rank, k) must be non-negative integers, got {(seed, rank, k)!r}")
    return np.random.default_rng(np.random.SeedSequence([_TRAIN_TAG, int(seed), int(rank), int(k)]))


def generator_for(key: Key, name: str, params: dict) -> np.random.Generator:
    """The generator a key stands for (see :data:`Key`)."""
    if isinstance(key, np.random.Generator):
        return key
    if isinstance(key, str):
        return plate_generator(key, name, params)
    if isinstance(key, tuple) and len(key) == 3:
        return training_generator(*key)
    raise TypeError(f"degradation key must be a plate id (str), a (seed, rank, k) tuple or a numpy Generator, got {key!r}")
