"""Plate-text metrics: normalisation, edit distance, character accuracy, exact match, the
XLPSR score (per character in place) and the per-track vote of several frames' readings.

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


#: the character a recogniser writes for a position it cannot read (XLPSR's blank)
BLANK = "_"


def normalise_in_place(text: str, forbidden: str = CHINESE_FORBIDDEN) -> str:
    """:func:`normalise_plate` that keeps each blank ``_`` where it is (``_`` is otherwise a
    separator and would be dropped, shifting every later position)."""
    return BLANK.join(normalise_plate(part, forbidden) for part in (text or "").split(BLANK))


def xlpsr_score(prediction: str, truth: str, forbidden: str = CHINESE_FORBIDDEN) -> float:
    """The ICIP 2026 XLPSR score of one reading, in [-1, 1]: positions compared in place.

    Both strings are normalised (:func:`normalise_plate`, blanks kept in place); for each
    position ``i`` of the truth: +2 when the reading's ``i``-th character is the truth's, 0
    when it is a blank ``_`` or missing (a reading shorter than the truth counts as blank at
    the end), -1 when it is another character.  Characters of the reading beyond the truth's
    length count -1 each (padding never helps).  The sum is divided by the maximum, 2 x
    len(truth).  An empty truth scores 1.0 against an empty reading and 0.0 otherwise.
    """
    p, t = normalise_in_place(prediction, forbidden), normalise_plate(truth, forbidden)
    if not t:
        return 1.0 if not p.replace(BLANK, "") else 0.0
    points = 0
    for i, want in enumerate(t):
        got = p[i] if i < len(p) else BLANK
        points += 0 if got == BLANK else (2 if got == want else -1)
    points -= sum(1 for c in p[len(t):] if c != BLANK)
    return points / (2 * len(t))


def track_vote(readings: list[tuple[str, float]], forbidden: str = CHINESE_FORBIDDEN) -> str:
    """One reading for a track of frames (UFPR-SR-Plates' majority vote by character position).

    ``readings``: ``(text, confidence)`` of each frame, in frame order.  Readings are
    normalised (:func:`normalise_plate`); empty ones (nothing read) do not vote.  The vote's
    length is the most frequent reading length; only readings of that length vote, and for
    each position the most frequent character wins.  Every tie (of lengths or of characters)
    goes to the candidate whose voters' confidences sum highest, then to the one read first.
    No reading at all gives ``""``.
    """
    texts = [(normalise_plate(t, forbidden), float(c)) for t, c in readings]
    texts = [(t, c) for t, c in texts if t]
    if not texts:
        return ""

    def winner(candidates: list[tuple[object, float]]):
        # candidate -> (votes, summed confidence, -first position); max() picks the winner
        tally: dict[object, list[float]] = {}
        for k, (cand, conf) in enumerate(candidates):
            entry = tally.setdefault(cand, [0, 0.0, -k])
            entry[0] += 1
            entry[1] += conf
        return max(tally, key=lambda cand: tuple(tally[cand]))

    length = winner([(len(t), c) for t, c in texts])
    voters = [(t, c) for t, c in texts if len(t) == length]
    return "".join(winner([(t[i], c) for t, c in voters]) for i in range(length))
