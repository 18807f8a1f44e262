"""Results per CCPD subset (base, db, blur, fn, rotate, tilt, weather, challenge, green), the
way the CCPD paper reports its table: for the headline image metric and each recogniser's
exact reads, one table whose columns are ``all`` and each subset of the test plates (the
``subset`` column of ``plates.csv``, written for data with ``ccpd_<subset>/`` folders).
Each cell is the leaderboard's cell (:func:`~bench.report.table.metric_cell`: median or rate
with its bootstrap 95% CI) over that subset's plates, ranked within its column.  No table
when the test plates have no subsets (the sample, synthetic data)."""
from __future__ import annotations

from typing import Any

from bench.report.results import REFERENCE, MethodResults, readability_only
from bench.report.table import Column, Row, Shown, Table, TableColumn, metric_cell, shown
from lpsr.data.ccpd import subset_sort_key
from lpsr.metrics.spec import HEADLINE, HEADLINE_OCR, SUBSET_COLUMN
from lpsr.metrics.stats import rank_marks

#: the column of every test plate, whatever its subset
ALL = "all"


def subsets_of(results: list[MethodResults]) -> dict[str, int]:
    """subset -> its number of test plates, in CCPD's reporting order ({} without subsets)."""
    for mr in results:
        if SUBSET_COLUMN in mr.plates:
            counts = mr.plates[SUBSET_COLUMN].astype(str).value_counts()
            return {name: int(counts[name]) for name in sorted((n for n in counts.index if n), key=subset_sort_key)}
    return {}


def _key(group: str, c: Column) -> str:
    return f"{group}:{c.name}"


def subset_metrics(results: list[MethodResults], ocr: list[str]) -> list[Column]:
    """The metrics reported per subset: the headline image metric (with HR) and each recogniser's exact reads."""
    return ([] if readability_only(results) else [Column(HEADLINE)]) + [Column(HEADLINE_OCR, name) for name in ocr]


def subset_rows(results: list[MethodResults], reference: MethodResults | None, ocr: list[str]) -> tuple[list[Row], dict[str, int], list[Column]]:
    """Rows (the methods, then the HR ceiling for the recognisers) with a cell per metric x
    group (``all`` and each subset), the subsets and the metrics; no rows without subsets."""
    subsets = subsets_of(results)
    if not subsets:
        return [], {}, []
    metrics = subset_metrics(results, ocr)
    groups = [ALL, *subsets]
    rows = [Row(mr.name, False, {}, mr.result) for mr in results]
    ref = Row(REFERENCE, True, {}, reference.result) if reference is not None else None
    for c in metrics:
        for g in groups:
            values: dict[str, float] = {}
            for row, mr in [(r, m) for r, m in zip(rows, results)] + ([(ref, reference)] if ref is not None and c.ocr else []):
                table = mr.plates
                if c.col not in table:
                    continue
                mine = table if g == ALL or SUBSET_COLUMN not in table else table[table[SUBSET_COLUMN].astype(str) == g]
                if mine.empty:
                    continue
                row.cells[_key(g, c)], value = metric_cell(c.spec, mine[c.col], seen=c.ocr is not None and c.ocr in mr.seen)
                if not row.reference:
                    values[row.method] = value
            for method, mark in rank_marks(values, c.spec.higher_is_better).items():
                next(r for r in rows if r.method == method).cells[_key(g, c)].mark = mark
    if ref is not None and ref.cells:
        rows.append(ref)
    return rows, subsets, metrics


def subset_tables(rows: list[Row], subsets: dict[str, int], metrics: list[Column]) -> list[Table]:
    """One displayed table per metric: method, ``all``, then each subset (with its plate count)."""
    n_all = sum(subsets.values())
    out = []
    for c in metrics:
        columns = [TableColumn("method", lambda r: Shown(r.label, r.method))]
        for g, n in [(ALL, n_all), *subsets.items()]:
            columns.append(TableColumn(f"{g} ({n:,})", lambda r, key=_key(g, c), spec=c.spec: shown(spec, r.cells.get(key))))
        what = c.spec.title() if c.ocr is None else f"{c.spec.label}, recogniser `{c.ocr}`"
        shown_rows = [r for r in rows if any(_key(g, c) in r.cells for g in (ALL, *subsets))]
        out.append(Table(f"subsets-{c.name}", f"Per CCPD subset: {what}", columns, shown_rows))
    return out


def subset_flat(rows: list[Row], metrics: list[Column]) -> dict[tuple[str, bool], dict[str, Any]]:
    """(method, reference) -> its per-subset values for the CSV and JSON rows:
    ``<subset>:<metric>``, ``.ci_low``, ``.ci_high`` and ``.rank``."""
    out: dict[tuple[str, bool], dict[str, Any]] = {}
    for r in rows:
        flat: dict[str, Any] = {}
        for key, cell in r.cells.items():
            flat[key] = cell.value
            if any(key.endswith(":" + c.name) and c.spec.ci for c in metrics):
                flat[f"{key}.ci_low"], flat[f"{key}.ci_high"] = cell.ci
            flat[f"{key}.rank"] = cell.mark
        out[(r.method, r.reference)] = flat
    return out
