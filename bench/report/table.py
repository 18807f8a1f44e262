"""The leaderboard's table model: metric columns, per-method rows of cells (aggregate, std,
CI, paired test, rank mark), and the displayed tables (title, columns, rows) that the
markdown, the HTML and the figures all render.  Every metric column comes from the metric
table (:mod:`lpsr.metrics.spec`), the floor from the Method interface
(:mod:`bench.report.interface`); nothing here knows a method or a column by name."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import pandas as pd

from bench.report.interface import is_floor as is_floor_method
from bench.report.results import REFERENCE, MethodResults, readability_only
from lpsr.metrics.spec import COST_METRICS, HEADLINE, IMAGE_METRICS, TIMED, TRACK_METRICS, MetricSpec, aggregate_with_ci, scored_ocr_metrics
from lpsr.metrics.stats import ALPHA, paired_p, rank_marks

NOT_SIG = "†"
SEEN = "§"
UNDER = "‡"


def is_nan(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


# -- metric columns and cells ----------------------------------------------------------------
@dataclass
class Column:
    """One metric (for one recogniser, for OCR metrics)."""

    spec: MetricSpec
    ocr: str | None = None

    @property
    def name(self) -> str:
        return self.spec.name(self.ocr)

    @property
    def col(self) -> str:
        return self.spec.col(self.ocr)


@dataclass
class Cell:
    value: float = float("nan")
    std: float = float("nan")
    ci: tuple[float, float] = (float("nan"), float("nan"))
    p: float | None = None  # paired test vs the column's best method
    mark: str = ""          # best | second
    seen: bool = False      # the recogniser was used in this method's training

    @property
    def not_sig(self) -> bool:
        return self.p is not None and self.p >= ALPHA and self.mark != "best"


@dataclass
class Row:
    method: str
    reference: bool = False
    cells: dict[str, Cell] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)
    under_trained: bool = False  # learned, and below the floor (best floor row) in the headline metric

    @property
    def label(self) -> str:
        """The method's name as the tables show it (with the under-trained mark)."""
        return f"{self.method} {UNDER}" if self.under_trained else self.method


def is_learned(result: dict[str, Any]) -> bool:
    return bool((result.get("train") or {}).get("iterations"))


def is_floor(result: dict[str, Any]) -> bool:
    """A result of a floor method (its class declares ``floor``: Bicubic and its kernel variants)."""
    return is_floor_method(str(result.get("method")))


def columns_for(ocr: list[str], has_hr: bool = True, tracks: bool = False) -> list[Column]:
    """The metric columns: image metrics (none without HR: LR-only data), then per recogniser
    its OCR metrics (:func:`~lpsr.metrics.spec.scored_ocr_metrics`) and, with tracks, the
    per-track ones."""
    cols = [Column(m) for m in IMAGE_METRICS] if has_hr else []
    for name in ocr:
        cols += [Column(m, name) for m in scored_ocr_metrics(has_hr)]
        cols += [Column(m, name) for m in TRACK_METRICS] if tracks else []
    return cols


def values_of(mr: MethodResults, c: Column):
    """A method's values of one column: per plate (plates.csv), or per track for track metrics
    (:attr:`MethodResults.tracks`); an empty table when the method has neither."""
    table = mr.tracks if c.spec.kind == "track" else mr.plates
    return table if table is not None else pd.DataFrame()


def headline_column(cols: list[Column]) -> Column | None:
    return next((c for c in cols if c.ocr is None and c.spec is HEADLINE), None)


def mark_under_trained(rows: list[Row], cols: list[Column]) -> float:
    """Mark learned rows below the floor in the headline metric; return the floor (nan if none)."""
    for r in rows:
        r.under_trained = False
    col = headline_column(cols)
    if col is None:
        return float("nan")
    floors = [r.cells[col.name].value for r in rows if not r.reference and is_floor_method(r.method) and col.name in r.cells]
    floors = [v for v in floors if not is_nan(v)]
    if not floors:
        return float("nan")
    floor = max(floors)
    for r in rows:
        cell = r.cells.get(col.name)
        r.under_trained = bool(not r.reference and is_learned(r.result) and cell is not None and not is_nan(cell.value) and cell.value < floor)
    return floor


def under_trained_note() -> str:
    return (f"{UNDER} under-trained at this budget: a learned method whose median {HEADLINE.short} is below "
            "the best no-parameter upsampler's (the Bicubic floor); its row ranks the budget, not the method.")


def metric_cell(spec: MetricSpec, values: Any, seen: bool = False) -> tuple[Cell, float]:
    """One metric over a method's plates (:func:`~lpsr.metrics.spec.aggregate_with_ci`) as a cell, and its value."""
    agg = aggregate_with_ci(spec, values)
    cell = Cell(agg["value"], agg["std"], seen=seen)
    if "ci95" in agg:
        cell.ci = tuple(agg["ci95"])
    return cell, agg["value"]


def compute_rows(results: list[MethodResults], reference: MethodResults | None, ocr: list[str]) -> tuple[list[Row], list[Column], dict[str, str]]:
    """Aggregates, CIs, ranks and paired tests for every method x metric; returns the rows,
    the columns and, per column, the best method the tests compare against."""
    cols = columns_for(ocr, not readability_only(results), any(mr.tracks is not None for mr in results))
    rows = [Row(mr.name, False, {}, mr.result) for mr in results]
    best_of: dict[str, str] = {}
    for c in cols:
        values: dict[str, float] = {}
        for row, mr in zip(rows, results):
            if c.col not in values_of(mr, c):
                continue
            row.cells[c.name], values[row.method] = metric_cell(c.spec, values_of(mr, c)[c.col], seen=c.ocr is not None and c.ocr in mr.seen)
        if c.spec.rank:
            marks = rank_marks(values, c.spec.higher_is_better)
            for row in rows:
                if row.method in marks:
                    row.cells[c.name].mark = marks[row.method]
        if c.spec.test and values:
            finite = {k: v for k, v in values.items() if not is_nan(v)}
            if finite:
                # ties: the first in leaderboard order (max/min keep the first extreme they meet)
                best = (max if c.spec.higher_is_better else min)(finite, key=finite.get)
                best_of[c.name] = best
                best_vals = values_of(next(mr for mr in results if mr.name == best), c)[c.col].to_numpy(dtype=float)
                for row, mr in zip(rows, results):
                    if row.method != best and c.name in row.cells:
                        row.cells[c.name].p = paired_p(c.spec.test, values_of(mr, c)[c.col].to_numpy(dtype=float), best_vals)
    if reference is not None:
        ref = Row(REFERENCE, True, {}, reference.result)
        for c in cols:
            if c.ocr is not None and c.col in values_of(reference, c):
                ref.cells[c.name] = metric_cell(c.spec, values_of(reference, c)[c.col])[0]
        if ref.cells:
            rows.append(ref)
    mark_under_trained(rows, cols)
    return rows, cols, best_of


# -- cost and training columns ---------------------------------------------------------------
def cost_values(result: dict[str, Any]) -> dict[str, Any]:
    """A result's cost by cost-metric key (``result["cost"]``; a run from before that block
    kept its parameter count at the top level), plus the batch and device it was timed with."""
    cost = result.get("cost") or {}
    out: dict[str, Any] = {m.key: cost.get(m.column, result.get(m.column)) for m in COST_METRICS}
    return {**out, "batch": cost.get("batch"), "cost_device": cost.get("device")}


def cost_text(spec: MetricSpec, value: Any) -> str:
    return "-" if is_nan(value) else spec.fmt(float(value))


def train_text(result: dict[str, Any]) -> tuple[str, str]:
    """``iters to best / total`` and ``train s`` as the tables print them."""
    tr = result.get("train") or {}
    it, total, secs = tr.get("best_iteration"), tr.get("iterations"), tr.get("train_seconds")
    iters = f"{it:,} / {total:,}" if it is not None and total else "-"
    if tr.get("stopped_early") and iters != "-":
        iters += " (early stop)"
    return iters, (f"{secs:.0f}" if secs is not None and secs == secs else "-")


# -- displayed tables ------------------------------------------------------------------------
@dataclass(frozen=True)
class Shown:
    """One displayed cell: its text, the value it sorts by and, for a metric, the CI bounds
    (as printed), rank mark, paired-test p and the not-significant / seen marks."""

    text: str
    sort: Any = None
    ci: tuple[str, str] | None = None
    mark: str = ""
    p: float | None = None
    not_sig: bool = False
    seen: bool = False


def shown(spec: MetricSpec, cell: Cell | None) -> Shown:
    """A metric cell as every table shows it: ``value ± std`` (median aggregates), CI, marks."""
    if cell is None or is_nan(cell.value):
        return Shown("-")
    text = spec.fmt(cell.value)
    if spec.aggregate.spread:
        text += f" ± {spec.fmt(cell.std)}"
    ci = (spec.fmt(cell.ci[0]), spec.fmt(cell.ci[1])) if spec.ci and not is_nan(cell.ci[0]) else None
    return Shown(text, cell.value, ci, cell.mark, cell.p, cell.not_sig, cell.seen)


@dataclass(frozen=True)
class TableColumn:
    title: str
    cell: Callable[[Row], Shown]


@dataclass
class Table:
    """A displayed table: ``key`` (the HTML id), ``title`` (markdown; backticks are code),
    its columns, its rows and, for the quality table, the failed methods (one row each)."""

    key: str
    title: str
    columns: list[TableColumn]
    rows: list[Row]
    failures: list[dict[str, Any]] = field(default_factory=list)

    @property
    def head(self) -> list[str]:
        return [c.title for c in self.columns]


def _method_column() -> TableColumn:
    return TableColumn("method", lambda r: Shown(r.label, r.method))


def _metric_column(c: Column, title: str) -> TableColumn:
    return TableColumn(title, lambda r: shown(c.spec, r.cells.get(c.name)))


def _cost_column(spec: MetricSpec, title: str) -> TableColumn:
    def cell(r: Row) -> Shown:
        value = cost_values(r.result)[spec.key]
        return Shown(cost_text(spec, value), value)
    return TableColumn(title, cell)


def quality_table(rows: list[Row], cols: list[Column], batch_note: str, failures: list[dict[str, Any]] | None = None) -> Table:
    """Image quality and cost: one row per method (not the HR ceiling), failed methods last."""
    columns = [_method_column()]
    columns += [_cost_column(m, f"{m.label} ({batch_note})" if m is TIMED else m.label) for m in COST_METRICS]
    columns += [_metric_column(c, c.spec.title()) for c in cols if c.ocr is None]
    columns += [TableColumn("iters to best / total", lambda r: Shown(train_text(r.result)[0], (r.result.get("train") or {}).get("best_iteration"))),
                TableColumn("train s", lambda r: Shown(train_text(r.result)[1], (r.result.get("train") or {}).get("train_seconds")))]
    title = "Image quality and cost" if any(c.ocr is None for c in cols) else "Cost (readability only: the data has no HR)"
    return Table("quality", title, columns, [r for r in rows if not r.reference], list(failures or []))


def ocr_tables(rows: list[Row], cols: list[Column], ocr: list[str]) -> list[Table]:
    """Readability: one table per recogniser, its rows the methods (and the HR ceiling) it read."""
    out = []
    for name in ocr:
        ocols = [c for c in cols if c.ocr == name]
        columns = [_method_column()] + [_metric_column(c, c.spec.label) for c in ocols]
        out.append(Table(f"ocr-{name}", f"Readability: recogniser `{name}`", columns,
                         [r for r in rows if any(c.name in r.cells for c in ocols)]))
    return out
