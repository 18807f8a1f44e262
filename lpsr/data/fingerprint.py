"""The data fingerprint: a short sha256 over every plate's split, id, text and image bytes.

It keys results (a result is reused only for the same plates).  Hashing every byte of a
large set takes a while, so the plate cache (:mod:`lpsr.data.plate_cache`) computes it once,
when it builds a store, and hands it to the loaded :class:`PlateSplits` with
:func:`remember_fingerprint`; :func:`stored_fingerprint` returns it only while the splits
still hold the very records (and images) it was computed for, so a caller that replaces a
plate gets the fingerprint recomputed.
"""
from __future__ import annotations

import hashlib

from lpsr.data.record import PlateSplits
from lpsr.data.splits import SPLIT_NAMES

_ATTR = "_lpsr_fingerprint"


def compute_fingerprint(splits: PlateSplits) -> str:
    digest = hashlib.sha256()
    for name in SPLIT_NAMES:
        for record in splits.split(name):
            if record.hr is None:  # LR-only data (its own header: never equal to an HR plate's)
                header = f"{name}\x00{record.id}\x00{record.text}\x00lr{record.lr.shape}\x00{record.meta.get('track')}\x00{record.meta.get('frame')}\x00"
            else:
                header = f"{name}\x00{record.id}\x00{record.text}\x00{record.hr.shape}\x00"
            digest.update(header.encode("utf-8"))
            digest.update((record.hr if record.hr is not None else record.lr).tobytes())
    return digest.hexdigest()[:16]


def _held(splits: PlateSplits) -> tuple:
    """The objects the splits hold: lists, records, their ids, texts and images."""
    lists = (splits.train, splits.val, splits.test)
    return lists + tuple(x for lst in lists for r in lst for x in (r, r.id, r.text, r.hr, r.lr))


def remember_fingerprint(splits: PlateSplits, fingerprint: str) -> None:
    setattr(splits, _ATTR, (fingerprint, _held(splits)))


def stored_fingerprint(splits: PlateSplits) -> str | None:
    stored = getattr(splits, _ATTR, None)
    if stored is None:
        return None
    fingerprint, held = stored
    now = _held(splits)
    if len(now) != len(held) or any(a is not b for a, b in zip(now, held)):
        return None
    return fingerprint
