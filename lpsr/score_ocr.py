"""Readability of SR plates: each chosen recogniser reads every plate; per plate we keep
the text, the confidence (the paper's OCR rho), exact plate match and character accuracy
against the true plate string.  Recognisers are loaded once per process."""
from __future__ import annotations

import time
from functools import lru_cache
from typing import Callable

import numpy as np



@lru_cache(maxsize=None)
def _recogniser(name: str):
    from lpsr.ocr.registry import get_recognizer

    return get_recognizer(name)


def read_plates(
    names: list[str], images: list[np.ndarray], done: Callable[[int], None] | None = None
) -> tuple[dict[str, list[tuple[str, float]]], dict]:
    """Each recogniser's ``(text, confidence)`` per image, and speed info per recogniser.
    ``done(k)`` is called after the k-th recogniser finished (for progress displays)."""
    reads: dict[str, list[tuple[str, float]]] = {}
    info: dict[str, dict] = {}
    for k, name in enumerate(names, start=1):
        rec = _recogniser(name)
        t0 = time.perf_counter()
        reads[name] = [(str(t), float(c)) for t, c in rec.read(images)]
        seconds = time.perf_counter() - t0
        info[name] = {"plates": len(images), "seconds": round(seconds, 3), "plates_per_s": round(len(images) / seconds, 1) if seconds > 0 else None}
        if done is not None:
            done(k)
    return reads, info
