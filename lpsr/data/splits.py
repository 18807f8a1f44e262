"""Deterministic train/val/test assignment that keeps every plate string in one split.

The same plate is often photographed several times (CCPD has many shots of one car), so
splitting by image would leak test plates into training.  Each distinct string is hashed
(sha256 of seed + text) to a number in [0, 1) that picks its split: the assignment of a
string never depends on which other plates are present, so adding plates does not
reshuffle the others.
"""
from __future__ import annotations

import hashlib
from typing import Callable, Iterable, Sequence, TypeVar

from lpsr.data.record import DataError

T = TypeVar("T")

SPLIT_NAMES = ("train", "val", "test")


def check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    if len(fractions) != 3 or any(f < 0 for f in fractions) or sum(fractions) <= 0:
        raise DataError(f"split fractions must be three non-negative numbers (train, val, test), got {tuple(fractions)!r}")
    total = float(sum(fractions))
    return tuple(float(f) / total for f in fractions)  # type: ignore[return-value]


def assign_split(text: str, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0) -> str:
    """Which split ('train', 'val' or 'test') the plate string ``text`` belongs to."""
    fractions = check_fractions(fractions)
    digest = hashlib.sha256(f"{seed}\x00{text}".encode("utf-8")).digest()
    u = int.from_bytes(digest[:8], "big") / 2.0**64
    edge = 0.0
    for name, frac in zip(SPLIT_NAMES, fractions):
        edge += frac
        if u < edge:
            return name
    return next(n for n, f in zip(reversed(SPLIT_NAMES), reversed(fractions)) if f > 0)


def split_by_plate(
    records: Iterable[T],
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    key: Callable[[T], str] = lambda r: r.text,  # type: ignore[attr-defined]
) -> tuple[list[T], list[T], list[T]]:
    """(train, val, test) lists, input order kept; ``key`` gives an item's plate string."""
    fractions = check_fractions(fractions)
    out: dict[str, list[T]] = {name: [] for name in SPLIT_NAMES}
    for item in records:
        out[assign_split(key(item), fractions, seed)].append(item)
    return out["train"], out["val"], out["test"]


def check_limit(limit: dict | None) -> dict:
    """Validate a per-split cap {split: N or None}; returns only the splits that are capped."""
    if not limit:
        return {}
    if not isinstance(limit, dict):
        raise DataError(f"limit must be a dict like {{'train': 100, 'test': 50}}, got {limit!r}")
    bad = [k for k in limit if k not in SPLIT_NAMES]
    if bad:
        raise DataError(f"limit has unknown split(s) {bad}; use keys train, val, test")
    for k, v in limit.items():
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
            raise DataError(f"limit[{k!r}] must be a non-negative integer or None, got {v!r}")
    return {k: v for k, v in limit.items() if v is not None}


def check_training_splits(splits, trainers: Sequence[str], spec: str) -> None:
    """Methods that train need plates in train (to learn) and val (to pick the best
    checkpoint): say so before anything trains, not after (``splits``: a PlateSplits)."""
    if not trainers:
        return
    counts = {name: len(splits.split(name)) for name in SPLIT_NAMES}
    for name in ("train", "val"):
        if not counts[name]:
            sizes = "/".join(str(counts[n]) for n in SPLIT_NAMES)
            raise DataError(
                f"--data {spec}: the {name} split is empty ({sizes} plates in train/val/test), but {', '.join(trainers)} "
                f"must {'learn from train' if name == 'train' else 'pick its best checkpoint on val'}; give it plates "
                f"(profile data.synthetic.{name}, the split column of labels.csv, more images, or a larger --limit)"
            )
