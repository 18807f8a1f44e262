"""The metric table: one spec per metric, used by evaluation (``plates.csv``), ``result.json``,
the leaderboard (markdown / CSV / JSON) and the HTML report alike.

A spec says what a metric is called, how one plate is scored, how plates are aggregated
(an :class:`Aggregation`: a callable, defined once here), whether higher is better, how it
is printed, which ``plates.csv`` column holds it and which paired test compares two methods
on it.  Nothing else in the project spells a metric's column name: everything goes through
:data:`IMAGE_METRICS`, :data:`OCR_METRICS`, :data:`COST_METRICS`, :data:`HEADLINE`,
:data:`HEADLINE_OCR`, :func:`text_column` and :func:`plate_table`.

Per-plate columns of ``plates.csv`` (one row per test plate, in test-split order)::

    id, text, psnr, psnr_y, ssim_y,
    ocr_<rec>_text, ocr_<rec>_conf, ocr_<rec>_exact, ocr_<rec>_char_acc, ocr_<rec>_cbw   (per recogniser)

LR-only data (no HR: :func:`scored_ocr_metrics` with ``has_hr=False``) has no image columns
and one more per recogniser, ``ocr_<rec>_xlpsr`` (:data:`READABILITY_ONLY_METRICS`); data with tracks adds
``track, frame`` after ``text``, and :func:`track_table` makes one row per track (the vote
of its frames, :data:`TRACK_METRICS`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from lpsr.metrics.image import psnr, psnr_y, ssim_y
from lpsr.metrics.text import char_accuracy, exact_match, track_vote, xlpsr_score

#: a plate read with at least this confidence counts as "confident"
CONFIDENT = 0.9

#: the ``plates.csv`` columns every table has: the plate's id and its true text
ID_COLUMN = "id"
TRUTH_COLUMN = "text"
_TEXT_COLUMN = "ocr_{ocr}_text"
#: LR-only folder data's optional columns: the track a frame belongs to, and the frame
TRACK_COLUMN = "track"
FRAME_COLUMN = "frame"
#: CCPD data with subset folders: the subset of each plate (``base``, ``db``, ``green``, ...)
SUBSET_COLUMN = "subset"
#: the columns of ``plates.csv`` that say which plate a row is (text, not measurements)
LABEL_COLUMNS = (ID_COLUMN, TRUTH_COLUMN, TRACK_COLUMN, FRAME_COLUMN, SUBSET_COLUMN)
#: a track's vote per recogniser (:func:`track_table`)
_TRACK_TEXT_COLUMN = "ocr_{ocr}_track_text"
#: a track's number of frames (:func:`track_table`)
TRACK_FRAMES_COLUMN = "frames"
#: metric kinds with one value per recogniser (their column holds ``{ocr}``)
PER_RECOGNISER = ("ocr", "track")


def text_column(ocr: str) -> str:
    """The ``plates.csv`` column holding what recogniser ``ocr`` read."""
    return _TEXT_COLUMN.format(ocr=ocr)


@dataclass(frozen=True)
class Aggregation:
    """How per-plate values become one number per method: ``statistic`` (numpy-style, takes
    ``axis``; also what the bootstrap resamples), ``spread`` (tables print ``± std``)."""

    name: str
    statistic: Callable[..., Any] | None
    spread: bool

    def __call__(self, values: np.ndarray) -> float:
        if self.statistic is None:
            raise TypeError(f"aggregation {self.name!r} has no per-plate statistic (a value recorded per method)")
        return float(self.statistic(values))


#: median over plates, shown as median ± std (image metrics, OCR rho)
MEDIAN = Aggregation("median", np.median, spread=True)
#: mean over plates of 0/1 or [0, 1] values: a rate, shown in %
MEAN = Aggregation("mean", np.mean, spread=False)
#: one value per method, read from ``result["cost"]`` (no per-plate values)
VALUE = Aggregation("value", None, spread=False)


def confident_but_wrong(text: str, conf: float, truth: str) -> float:
    """1.0 when the recogniser is confident (conf >= 0.9) and the plate is not read exactly."""
    return float(conf >= CONFIDENT and not exact_match(text, truth))


@dataclass(frozen=True)
class MetricSpec:
    """One metric.

    ``kind``: ``image`` (per plate from SR/HR: ``per_plate(sr, hr, crop_border)``), ``ocr``
    (per plate and recogniser: ``per_plate(text, conf, truth)``), ``track`` (per track and
    recogniser, a row of :func:`track_table`: ``per_plate(vote, truth)``) or ``cost`` (per
    method, read from ``result["cost"][key]``; no per-plate value).
    ``column``: the ``plates.csv`` column; ``{ocr}`` is replaced by the recogniser name.
    ``aggregate``: :data:`MEDIAN` (shown as median ± std), :data:`MEAN` (a rate, shown in
    %) or :data:`VALUE` (cost metrics).
    ``test``: paired test against the best method on the same plates (``wilcoxon`` for
    continuous values, ``mcnemar`` for 0/1 values, ``None``).
    ``ci``: whether the leaderboard shows a bootstrap 95% CI of the aggregate.
    ``rank``: whether best / second best are marked in this column.
    """

    key: str
    label: str
    kind: str
    column: str
    aggregate: Aggregation
    higher_is_better: bool
    digits: int
    percent: bool = False
    test: str | None = None
    ci: bool = False
    rank: bool = True
    description: str = ""
    #: the metric's name in prose and figure labels (``PSNR-Y``); defaults to ``label``
    short: str = ""
    per_plate: Callable[..., float] | None = None
    #: how a value is printed when ``digits`` / ``percent`` do not say it (counts, GFLOPs)
    formatter: Callable[[float], str] | None = None

    def __post_init__(self) -> None:
        if not self.short:
            object.__setattr__(self, "short", self.label)

    def col(self, ocr: str | None = None) -> str:
        """The per-plate column (or summary key stem) for recogniser ``ocr``."""
        return self.column.format(ocr=ocr) if self.kind in PER_RECOGNISER else self.column

    def name(self, ocr: str | None = None) -> str:
        """Unique key of this metric (for one recogniser): ``psnr_y``, ``ppocr.plate_acc``."""
        return f"{ocr}.{self.key}" if self.kind in PER_RECOGNISER else self.key

    def title(self, ocr: str | None = None) -> str:
        return f"{self.label} ({ocr})" if self.kind in PER_RECOGNISER else self.label

    def fmt(self, value: float | None) -> str:
        """A value as the tables print it (``-`` for missing / NaN)."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "-"
        if self.percent:
            return f"{100 * value:.{self.digits}f}%"
        if self.formatter is not None:
            return self.formatter(value)
        return f"{value:.{self.digits}f}"


def fmt_count(n: float | None) -> str:
    if not n:
        return "-"
    if n >= 1_000_000:
        return f"{n / 1e6:.2f}M"
    if n >= 1_000:
        return f"{n / 1e3:.1f}K"
    return str(int(n))


IMAGE_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("psnr", "PSNR dB", "image", "psnr", MEDIAN, True, 2, test="wilcoxon", ci=True, short="PSNR",
               description="PSNR over RGB values, peak 255", per_plate=psnr),
    MetricSpec("psnr_y", "PSNR-Y dB", "image", "psnr_y", MEDIAN, True, 2, test="wilcoxon", ci=True, short="PSNR-Y",
               description="PSNR on BT.601 studio-range Y (BasicSR test_y_channel=True)", per_plate=psnr_y),
    MetricSpec("ssim_y", "SSIM-Y", "image", "ssim_y", MEDIAN, True, 3, test="wilcoxon", ci=True,
               description="SSIM on studio-range Y, 11x11 Gaussian window (sigma 1.5), valid region", per_plate=ssim_y),
)

OCR_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("plate_acc", "plate acc", "ocr", "ocr_{ocr}_exact", MEAN, True, 1, percent=True, test="mcnemar", ci=True,
               description="exact plate reads (normalised strings equal): the LPSR headline",
               per_plate=lambda text, conf, truth: float(exact_match(text, truth))),
    MetricSpec("char_acc", "char acc", "ocr", "ocr_{ocr}_char_acc", MEAN, True, 1, percent=True, test="wilcoxon", ci=True,
               description="1 - edit distance / max length of the normalised strings",
               per_plate=lambda text, conf, truth: float(char_accuracy(text, truth))),
    MetricSpec("cbw", "conf-but-wrong", "ocr", "ocr_{ocr}_cbw", MEAN, False, 1, percent=True, test="mcnemar", ci=True,
               description=f"plates read with confidence >= {CONFIDENT} that are not read exactly (what OCR rho hides)",
               per_plate=confident_but_wrong),
    MetricSpec("rho", "OCR rho", "ocr", "ocr_{ocr}_conf", MEDIAN, True, 3, test=None, ci=False,
               description="recogniser confidence (the paper's OCR rho): mean max-probability of the kept CTC frames, 0 if nothing read",
               per_plate=lambda text, conf, truth: float(conf)),
)

#: scored only on LR-only data (readability only, no HR): a default run's columns stay as they were
READABILITY_ONLY_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("xlpsr", "XLPSR score", "ocr", "ocr_{ocr}_xlpsr", MEAN, True, 3, test="wilcoxon", ci=True,
               description="ICIP 2026 XLPSR: +2 per correct character in place, 0 per blank `_` or missing one, -1 per wrong "
                           "(or extra) one, over the maximum 2 x len(truth); mean over plates, in [-1, 1]",
               per_plate=lambda text, conf, truth: float(xlpsr_score(text, truth))),
)

#: per track (data with a ``track`` column): one row per track of :func:`track_table`
TRACK_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("track_acc", "track plate acc", "track", "ocr_{ocr}_track_exact", MEAN, True, 1, percent=True, test="mcnemar",
               ci=True, description="exact reads of each track's vote (UFPR-SR-Plates: the most frequent character per "
                                    "position over the track's frames; ties to the highest summed confidence), rate over tracks",
               per_plate=lambda vote, truth: float(exact_match(vote, truth))),
)

COST_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("params", "params", "cost", "params", VALUE, False, 0, rank=False,
               description="trainable parameters of the SR network", formatter=fmt_count),
    MetricSpec("flops", "GFLOPs/plate", "cost", "flops_per_plate", VALUE, False, 2, rank=False,
               description="floating-point operations for one plate at the test LR size (torch.utils.flop_counter: 2 per multiply-add; interpolation not counted)",
               formatter=lambda v: f"{v / 1e9:.2f}"),
    MetricSpec("ms", "ms/plate", "cost", "ms_per_plate", VALUE, False, 2, rank=False,
               description="milliseconds per plate, warm, on the run's device, batch as stated"),
)


#: the image metric the figures plot and the under-trained rule compares with the floor
HEADLINE: MetricSpec = next(m for m in IMAGE_METRICS if m.key == "psnr_y")
#: the network's size (the cost/quality figure's x axis)
PARAMS: MetricSpec = next(m for m in COST_METRICS if m.key == "params")
#: the cost metric measured at a stated batch size (tables print the batch beside it)
TIMED: MetricSpec = next(m for m in COST_METRICS if m.key == "ms")
#: the readability metric the cost/quality figure plots (per recogniser)
HEADLINE_OCR: MetricSpec = next(m for m in OCR_METRICS if m.key == "plate_acc")
#: the recogniser's confidence per plate (what a track's vote breaks ties with)
CONFIDENCE: MetricSpec = next(m for m in OCR_METRICS if m.key == "rho")


def scored_ocr_metrics(has_hr: bool = True) -> tuple[MetricSpec, ...]:
    """The per-plate OCR metrics of a table: :data:`OCR_METRICS`, plus
    :data:`READABILITY_ONLY_METRICS` on data without HR."""
    return OCR_METRICS if has_hr else OCR_METRICS + READABILITY_ONLY_METRICS


def has_image_metrics(table: pd.DataFrame) -> bool:
    """Whether a ``plates.csv`` table holds image metrics (False: LR-only data, readability only)."""
    return any(m.col() in table for m in IMAGE_METRICS)


def recognisers_in(table: pd.DataFrame) -> list[str]:
    """Recogniser names whose columns are in a ``plates.csv`` table, in column order."""
    head, tail = _TEXT_COLUMN.split("{ocr}")
    out: list[str] = []
    for col in table.columns:
        if col.startswith(head) and col.endswith(tail) and len(col) > len(head) + len(tail):
            out.append(col[len(head):-len(tail)])
    return out


def plate_table(
    ids: Sequence[str],
    truths: Sequence[str],
    srs: Sequence[np.ndarray] | None,
    hrs: Sequence[np.ndarray] | None,
    crop_border: int = 0,
    reads: dict[str, Sequence[tuple[str, float]]] | None = None,
    *,
    has_hr: bool = True,
    tracks: Sequence[str] | None = None,
    frames: Sequence[str] | None = None,
    subsets: Sequence[str] | None = None,
) -> pd.DataFrame:
    """THE per-plate scoring function: one row per plate, the columns of ``plates.csv``.

    ``srs``/``hrs`` None: no image metrics (the HR reference row).  ``reads``: for each
    recogniser, ``(text, confidence)`` per plate.  ``has_hr=False`` (LR-only data, ``hrs``
    None): readability only, with :data:`READABILITY_ONLY_METRICS`.  ``tracks`` /
    ``frames``: each plate's track and frame (LR-only data with tracks).  ``subsets``: each
    plate's CCPD subset (data with subset folders; '' for a plate outside one).
    """
    n = len(ids)
    rows: dict[str, list[Any]] = {ID_COLUMN: list(ids), TRUTH_COLUMN: list(truths)}
    for column, values in ((TRACK_COLUMN, tracks), (FRAME_COLUMN, frames), (SUBSET_COLUMN, subsets)):
        if values is not None:
            rows[column] = list(values)
    if srs is not None and hrs is not None:
        if len(srs) != n or len(hrs) != n:
            raise ValueError(f"{len(srs)} SR / {len(hrs)} HR images for {n} plates")
        for m in IMAGE_METRICS:
            rows[m.col()] = [m.per_plate(sr, hr, crop_border) for sr, hr in zip(srs, hrs)]
    for ocr, plate_reads in (reads or {}).items():
        if len(plate_reads) != n:
            raise ValueError(f"recogniser {ocr}: {len(plate_reads)} reads for {n} plates")
        rows[text_column(ocr)] = [t for t, _ in plate_reads]
        for m in scored_ocr_metrics(has_hr):
            rows[m.col(ocr)] = [m.per_plate(t, float(c), g) for (t, c), g in zip(plate_reads, truths)]
    return pd.DataFrame(rows)


def track_table(table: pd.DataFrame) -> pd.DataFrame | None:
    """One row per track of a ``plates.csv`` table with a ``track`` column (None without):
    ``track``, ``text``, ``frames`` and per recogniser its vote (:func:`track_vote` over the
    frames' readings and confidences, in table order) and :data:`TRACK_METRICS`.  Tracks in
    order of first appearance, so two methods' tables on the same plates pair row by row."""
    if TRACK_COLUMN not in table:
        return None
    groups = list(table.groupby(table[TRACK_COLUMN].astype(str), sort=False))
    rows: dict[str, list[Any]] = {TRACK_COLUMN: [k for k, _ in groups], TRUTH_COLUMN: [str(g[TRUTH_COLUMN].iloc[0]) for _, g in groups],
                                  TRACK_FRAMES_COLUMN: [len(g) for _, g in groups]}
    for ocr in recognisers_in(table):
        votes = [track_vote(list(zip(g[text_column(ocr)].astype(str), pd.to_numeric(g[CONFIDENCE.col(ocr)], errors="coerce").fillna(0.0))))
                 for _, g in groups]
        rows[_TRACK_TEXT_COLUMN.format(ocr=ocr)] = votes
        for m in TRACK_METRICS:
            rows[m.col(ocr)] = [m.per_plate(v, t) for v, t in zip(votes, rows[TRUTH_COLUMN])]
    return pd.DataFrame(rows)


def finite(values: pd.Series | Sequence[float]) -> np.ndarray:
    v = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)
    return v[np.isfinite(v)]


def aggregate(spec: MetricSpec, values: pd.Series | Sequence[float]) -> dict[str, float]:
    """``value`` (the aggregate: median or mean), ``std`` (sample std), ``n`` over finite values."""
    v = finite(values)
    if v.size == 0:
        return {"value": float("nan"), "std": float("nan"), "n": 0}
    value = spec.aggregate(v)
    return {"value": value, "std": float(np.std(v, ddof=1)) if v.size > 1 else 0.0, "n": int(v.size)}


def aggregate_with_ci(spec: MetricSpec, values: pd.Series | Sequence[float]) -> dict[str, Any]:
    """:func:`aggregate` plus, for a metric with ``ci``, ``ci95``: the bootstrap 95% CI of the
    same statistic (the leaderboard's cells and the model card both come from here)."""
    from lpsr.metrics.stats import SEED, bootstrap_ci

    entry: dict[str, Any] = aggregate(spec, values)
    if spec.ci:
        entry["ci95"] = list(bootstrap_ci(np.asarray(values, dtype=float), spec.aggregate.statistic, seed=SEED))
    return entry


def summary(table: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Aggregates of every per-plate metric in a ``plates.csv`` table, by metric name."""
    out: dict[str, dict[str, float]] = {}
    for m in IMAGE_METRICS:
        if m.col() in table:
            out[m.name()] = aggregate(m, table[m.col()])
    tracks = track_table(table)
    for ocr in recognisers_in(table):
        for m in scored_ocr_metrics(has_hr=False):
            if m.col(ocr) in table:
                out[m.name(ocr)] = aggregate(m, table[m.col(ocr)])
        for m in TRACK_METRICS if tracks is not None else ():
            out[m.name(ocr)] = aggregate(m, tracks[m.col(ocr)])
    return out
