"""Readability of SR plates: each chosen recogniser reads every plate; per plate we keep
the text, the confidence (the paper's OCR rho), exact plate match and character accuracy
against the true plate string.  Recognisers are loaded once per process."""
from __future__ import annotations

import time
from functools import lru_cache
from typing import Callable

import numpy as np
import pandas as pd

from lpsr.metrics.text import char_accuracy, exact_match


@lru_cache(maxsize=None)
def _recogniser(name: str):
    from lpsr.ocr.registry import get_recognizer

    return get_recognizer(name)


def ocr_columns(
    names: list[str], images: list[np.ndarray], truths: list[str], done: Callable[[int], None] | None = None
) -> tuple[pd.DataFrame, dict]:
    """Columns ``ocr_<name>_{text,conf,exact,char_acc}`` for each recogniser, and speed info.
    ``done(k)`` is called after the k-th recogniser finished (for progress displays)."""
    table = pd.DataFrame(index=range(len(images)))
    info: dict[str, dict] = {}
    for k, name in enumerate(names, start=1):
        rec = _recogniser(name)
        t0 = time.perf_counter()
        reads = rec.read(images)
        seconds = time.perf_counter() - t0
        texts = [t for t, _ in reads]
        table[f"ocr_{name}_text"] = texts
        table[f"ocr_{name}_conf"] = [float(c) for _, c in reads]
        table[f"ocr_{name}_exact"] = [float(exact_match(t, g)) for t, g in zip(texts, truths)]
        table[f"ocr_{name}_char_acc"] = [float(char_accuracy(t, g)) for t, g in zip(texts, truths)]
        info[name] = {"plates": len(images), "seconds": round(seconds, 3), "plates_per_s": round(len(images) / seconds, 1) if seconds > 0 else None}
        if done is not None:
            done(k)
    return table, info
