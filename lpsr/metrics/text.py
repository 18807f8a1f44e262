"""Plate-text metrics: normalisation, edit distance, character accuracy, exact match.

Readings are compared after ``normalise_plate``:

- Unicode NFKC (full-width ``Ａ１`` -> ``A1``), upper case;
- separators dropped: the plate's middle dot (``·``, ``•``, ``・``), ``.``, ``-``, spaces;
- look-alikes: a letter the plate alphabet forbids is read as the digit it resembles.
  Chinese mainland plates never use the letters I and O (to avoid confusion with 1 and 0),
  so by default ``O -> 0`` and ``I -> 1`` on both sides; pass ``forbidden=""`` for plates
  whose alphabet has both (nothing is then mapped).
"""
from __future__ import annotations

import unicodedata

SEPARATORS = frozenset("·•・‧∙⋅.．-－—_ \t")
LOOKALIKE_DIGIT = {"O": "0", "I": "1"}
CHINESE_FORBIDDEN = "IO"


def normalise_plate(text: str, forbidden: str = CHINESE_FORBIDDEN) -> str:
    """Canonical form of a plate reading (see the module docstring)."""
    text = unicodedata.normalize("NFKC", text or "").upper()
    mapping = {c: LOOKALIKE_DIGIT[c] for c in forbidden.upper() if c in LOOKALIKE_DIGIT}
    return "".join(mapping.get(c, c) for c in text if c not in SEPARATORS)


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (unit-cost insert, delete, substitute).

    Written here because the project has no string-distance dependency and this is a
    dozen lines (rapidfuzz / python-Levenshtein would do the same for plates of 7-8 chars).
    """
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def char_accuracy(prediction: str, truth: str, forbidden: str = CHINESE_FORBIDDEN) -> float:
    """1 - edit distance / max(length) of the normalised strings (1.0 when both are empty)."""
    p, t = normalise_plate(prediction, forbidden), normalise_plate(truth, forbidden)
    longest = max(len(p), len(t))
    return 1.0 if longest == 0 else 1.0 - edit_distance(p, t) / longest


def exact_match(prediction: str, truth: str, forbidden: str = CHINESE_FORBIDDEN) -> bool:
    """True when the normalised reading equals the normalised ground truth."""
    return normalise_plate(prediction, forbidden) == normalise_plate(truth, forbidden)


def mark_errors(prediction: str, truth: str, forbidden: str = CHINESE_FORBIDDEN) -> list[tuple[str, bool]]:
    """The normalised reading as ``(character, correct)`` pairs, aligned to the normalised
    truth by edit distance: substituted and extra characters are ``False``; a truth
    character the reading lacks appears as ``("_", False)`` where it is missing."""
    p, t = normalise_plate(prediction, forbidden), normalise_plate(truth, forbidden)
    n, m = len(p), len(t)
    d = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        d[i][0] = i
    for j in range(m + 1):
        d[0][j] = j
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (p[i - 1] != t[j - 1]))
    out: list[tuple[str, bool]] = []
    i, j = n, m
    while i > 0 or j > 0:
        if i > 0 and j > 0 and d[i][j] == d[i - 1][j - 1] + (p[i - 1] != t[j - 1]):
            out.append((p[i - 1], p[i - 1] == t[j - 1]))
            i, j = i - 1, j - 1
        elif i > 0 and d[i][j] == d[i - 1][j] + 1:
            out.append((p[i - 1], False))  # an extra character in the reading
            i -= 1
        else:
            out.append(("_", False))  # a truth character the reading lacks
            j -= 1
    return out[::-1]
