"""One leaderboard over several seeds (a ``bench sweep`` run directory: ``<run>/seed-<s>/<method>/``).

Each seed's folder is scored exactly as ``bench report`` scores one run (the metric table,
:func:`bench.report.leaderboard.compute_rows`); then every method's per-seed aggregate (the
median over plates for image metrics, the rate for accuracies) is summarised over seeds as
mean ± sample std (ddof 1; n seeds stated).  Writes ``<stem>.md``, ``<stem>.csv`` (per-seed
rows, ``seed`` = the seed, and the summary rows, ``seed`` = ``mean``), ``<stem>.json`` and a
self-contained ``<stem>.html``.  Seeds scored on different test sets are refused; failed runs
(``status: failed``) are listed per seed with their reason.
"""
from __future__ import annotations

import html
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.report.html import SCRIPT, STYLE
from bench.report.leaderboard import HEADER_NOTE, failure_rows
from bench.report.markdown import md_table, one_line
from bench.report.provenance import batch_note as cost_batch_note
from bench.report.provenance import provenance, provenance_lines
from bench.report.results import ReportError, describe_set, failure_text, load_failures, load_reference, load_results, test_set
from bench.report.table import columns_for, compute_rows, cost_values
from lpsr.io import atomic_path, write_json, write_text
from lpsr.metrics.spec import PARAMS, TIMED, recognisers_in

SEED_DIR = re.compile(r"^seed-(\d+)$")


def seed_dirs(run_dir: Path) -> list[tuple[int, Path]]:
    """``(seed, folder)`` of every ``seed-<s>/`` folder under ``run_dir``, by seed."""
    out = []
    for path in Path(run_dir).iterdir() if Path(run_dir).is_dir() else []:
        m = SEED_DIR.match(path.name)
        if m and path.is_dir():
            out.append((int(m.group(1)), path))
    return sorted(out)


def is_sweep(run_dir: Path) -> bool:
    return bool(seed_dirs(run_dir)) and not any(Path(run_dir).glob("*/result.json"))


def _mean_std(values: list[float]) -> tuple[float, float]:
    vals = np.array([v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))], dtype=float)
    if len(vals) == 0:
        return float("nan"), float("nan")
    return float(vals.mean()), (float(vals.std(ddof=1)) if len(vals) > 1 else float("nan"))


def build_seeds(run_dir: Path, out_stem: Path, names: list[str] | None = None, fingerprint: str | None = None,
                title: str | None = None) -> Path:
    run_dir, out_stem = Path(run_dir), Path(out_stem)
    per_seed: dict[int, dict[str, Any]] = {}
    failures: list[tuple[int, dict[str, Any]]] = []
    ocr: list[str] = []
    first_set: tuple | None = None
    first_seed: int | None = None
    for seed, folder in seed_dirs(run_dir):
        results = load_results(folder, names, fingerprint)
        failed = load_failures(folder, names, results or None)
        failures += [(seed, f) for f in failed]
        if not results:
            continue
        key = test_set(results[0].result)
        if first_set is None:
            first_set, first_seed = key, seed
        elif key != first_set:
            raise ReportError(f"{run_dir}: seed {seed} was scored on {describe_set(key)}, seed {first_seed} on {describe_set(first_set)}; "
                              "seeds on different test sets are not averaged (rerun the sweep with pinned data, e.g. --data synthetic:0)")
        for mr in results:
            for n in recognisers_in(mr.plates):
                if n not in ocr:
                    ocr.append(n)
        per_seed[seed] = {"results": results, "reference": load_reference(folder, results)}
    if not per_seed:
        if failures:
            raise ReportError(f"{run_dir}: no run finished; failed: "
                              + "; ".join(f"{f['method']} seed {s} ({failure_text(f)})" for s, f in failures))
        raise ReportError(f"{run_dir}: no finished results in its seed-<s>/ folders (run `bench sweep` first)")
    cols = columns_for(ocr)
    methods: list[str] = []
    seed_rows: list[dict[str, Any]] = []  # flat, one per (seed, method)
    cells: dict[str, dict[int, dict[str, float]]] = {}
    for seed, entry in per_seed.items():
        rows, _cols, _best = compute_rows(entry["results"], entry["reference"], ocr)
        for r in rows:
            if r.reference:
                continue
            if r.method not in methods:
                methods.append(r.method)
            tr = r.result.get("train") or {}
            flat: dict[str, Any] = {"seed": seed, "method": r.method, "status": r.result.get("status"),
                                    **cost_values(r.result), "best_iteration": tr.get("best_iteration"), "iterations": tr.get("iterations"),
                                    "train_seconds": tr.get("train_seconds"), "config_hash": r.result.get("config_hash")}
            vals: dict[str, float] = {}
            for c in cols:
                cell = r.cells.get(c.name)
                if cell is not None:
                    flat[c.name], flat[f"{c.name}.std"] = cell.value, cell.std
                    vals[c.name] = cell.value
            vals[PARAMS.key], vals[TIMED.key] = flat.get(PARAMS.key), flat.get(TIMED.key)
            vals["best_iteration"], vals["train_seconds"] = flat.get("best_iteration"), flat.get("train_seconds")
            cells.setdefault(r.method, {})[seed] = vals
            seed_rows.append(flat)
    seeds = sorted(per_seed)
    summary: list[dict[str, Any]] = []
    for m in methods:
        got = cells[m]
        row: dict[str, Any] = {"seed": "mean", "method": m, "n_seeds": len(got), "seeds": ",".join(str(s) for s in sorted(got))}
        for key in [c.name for c in cols] + [PARAMS.key, TIMED.key, "best_iteration", "train_seconds"]:
            mean, std = _mean_std([got[s].get(key) for s in got])
            row[key], row[f"{key}.std_over_seeds"] = mean, std
        row["failed_seeds"] = ",".join(str(s) for s, f in failures if f["method"] == m)
        summary.append(row)

    first = per_seed[seeds[0]]
    prov = provenance(first["results"], first["reference"], ocr, run_dir)
    prov["seed"] = [str(s) for s in seeds]
    batch_note = cost_batch_note(first["results"])
    title = title or out_stem.name

    def fmt(spec, mean: float, std: float) -> str:
        if mean != mean:
            return "-"
        return spec.fmt(mean) + ("" if std != std else f" ± {spec.fmt(std)}")

    image_cols = [c for c in cols if c.ocr is None]
    md = [f"# {title}", "", HEADER_NOTE, "", f"- seeds: {', '.join(map(str, seeds))} (one run folder each: `seed-<s>/`); "
          "values: mean ± sample std over seeds of each seed's aggregate (median over plates; rates for accuracies)",
          *[line for line in provenance_lines(prov, batch_note) if not line.startswith("- config hashes")], ""]
    md += [f"## Mean ± std over seeds (n = {len(seeds)})", ""]
    head = ["method", "seeds", PARAMS.label, f"{TIMED.label} ({batch_note})"] + [c.spec.title() for c in image_cols] + ["iters to best"]
    body = []
    for row in summary:
        body.append([row["method"], f"{row['n_seeds']}" + (f" ({row['failed_seeds']} failed)" if row["failed_seeds"] else ""),
                     PARAMS.fmt(row[PARAMS.key]), TIMED.fmt(row[TIMED.key])]
                    + [fmt(c.spec, row[c.name], row[f"{c.name}.std_over_seeds"]) for c in image_cols]
                    + [_iters(row["best_iteration"], row["best_iteration.std_over_seeds"])])
    for m in sorted({f["method"] for _, f in failures} - set(methods)):
        body.append([m, f"0 ({','.join(str(s) for s, f in failures if f['method'] == m)} failed)"] + ["-"] * (len(head) - 2))
    md += md_table(head, body) + [""]
    for name in ocr:
        ocols = [c for c in cols if c.ocr == name]
        md += [f"## Readability: recogniser `{name}` (mean ± std over seeds)", ""]
        md += md_table(["method"] + [c.spec.label for c in ocols],
                        [[row["method"]] + [fmt(c.spec, row.get(c.name, float("nan")), row.get(f"{c.name}.std_over_seeds", float("nan"))) for c in ocols]
                         for row in summary]) + [""]
    md += ["## Per seed", ""]
    body = [[str(r["seed"]), r["method"]] + [fmt(c.spec, r.get(c.name, float("nan")), r.get(f"{c.name}.std", float("nan"))) for c in image_cols]
            for r in sorted(seed_rows, key=lambda r: (methods.index(r["method"]), r["seed"]))]
    md += md_table(["seed", "method"] + [c.spec.title() for c in image_cols], body) + [""]
    md += ["(per seed: median ± std over the test plates, as in a single run's leaderboard)", ""]
    if failures:
        md += ["## Failed runs", "", "Rerun `bench sweep` with the same options to try them again (they resume from their last checkpoint).", ""]
        md += md_table(["seed", "method", "status", "error", "reason"],
                        [[str(s), f["method"], "**failed**", str((f.get("error") or {}).get("type")),
                          one_line((f.get("error") or {}).get("reason"))] for s, f in failures]) + [""]
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    md_path = out_stem.with_suffix(".md")
    write_text(md_path, "\n".join(md))

    fail_flat = [{"seed": s, **row} for s, row in zip([s for s, _ in failures], failure_rows([f for _, f in failures]))]
    with atomic_path(out_stem.with_suffix(".csv")) as tmp:
        pd.DataFrame(seed_rows + fail_flat + summary).to_csv(tmp, index=False)
    write_json(out_stem.with_suffix(".json"), {
        "meta": {"provenance": prov, "seeds": seeds, "aggregate": "mean and sample std (ddof 1) over seeds of each seed's aggregate",
                 "failed": [{"seed": s, "method": f["method"], "error": f.get("error")} for s, f in failures]},
        "rows": _jsonable(summary), "per_seed": _jsonable(seed_rows + fail_flat),
    })
    _write_html(out_stem.with_suffix(".html"), title, [md[4]] + provenance_lines(prov, batch_note)[:-1], head, summary, image_cols,
                seed_rows, failures, fmt)
    return md_path


def _iters(mean: float, std: float) -> str:
    if mean != mean:
        return "-"
    return f"{mean:.0f}" + ("" if std != std else f" ± {std:.0f}")


def _jsonable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    import json

    return json.loads(pd.DataFrame(rows).to_json(orient="records")) if rows else []


def _write_html(path: Path, title: str, prov_lines: list[str], head: list[str], summary, image_cols, seed_rows, failures, fmt) -> None:
    def table(table_id: str, header: list[str], rows: list[list[tuple[str, Any]]]) -> str:
        ths = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        trs = "".join("<tr>" + "".join(f'<td data-sort="{html.escape(str(sort))}">{html.escape(text)}</td>' for text, sort in r) + "</tr>" for r in rows)
        return f'<table class="sortable" id="{table_id}"><thead><tr>{ths}</tr></thead><tbody>{trs}</tbody></table>'

    def num(v: Any) -> Any:
        return "" if v is None or (isinstance(v, float) and math.isnan(v)) else v

    parts = [f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>',
             f"<style>{STYLE}</style><script>{SCRIPT}</script></head><body><h1>{html.escape(title)}</h1>",
             '<ul class="prov">' + "".join(f"<li>{html.escape(l[2:] if l.startswith('- ') else l).replace('`', '')}</li>" for l in prov_lines) + "</ul>"]
    rows = [[(r["method"], r["method"]), (str(r["n_seeds"]), r["n_seeds"])]
            + [(fmt(c.spec, r[c.name], r[f"{c.name}.std_over_seeds"]), num(r[c.name])) for c in image_cols] for r in summary]
    parts += ["<h2>Mean ± std over seeds</h2>", table("seeds-mean", ["method", "seeds"] + [c.spec.title() for c in image_cols], rows)]
    rows = [[(str(r["seed"]), r["seed"]), (r["method"], r["method"])]
            + [(fmt(c.spec, r.get(c.name, float("nan")), r.get(f"{c.name}.std", float("nan"))), num(r.get(c.name))) for c in image_cols]
            for r in seed_rows]
    parts += ["<h2>Per seed</h2>", table("per-seed", ["seed", "method"] + [c.spec.title() for c in image_cols], rows)]
    if failures:
        rows = [[(str(s), s), (f["method"], f["method"]), ("failed: " + failure_text(f), "")] for s, f in failures]
        parts += ["<h2>Failed runs</h2>", table("failed", ["seed", "method", "reason"], rows)]
    parts.append("</body></html>\n")
    write_text(path, "\n".join(parts))
