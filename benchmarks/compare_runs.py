"""Compare the per-plate results of two run directories (the same command at two commits).

For every method present in either run it reads ``<method>/plates.csv`` (one row per test
plate: PSNR, PSNR-Y, SSIM-Y and each recogniser's text, exact read, character accuracy and
confidence) and ``<method>/sr_test.npz`` (the saved SR pixels), joins the plates by ``id``
and reports, per method: identical, or which plates and columns differ and by how much
(largest absolute difference of each numeric column, how many text cells differ, how many
SR pixels differ).  A method found in only one run is named as such.

    python benchmarks/compare_runs.py BEFORE/runs/synthetic-x8-quick AFTER/runs/synthetic-x8-quick \
        --out benchmarks/redesign_parity.md --title "..."

Exit status 0 when every shared method is identical, 1 otherwise (the report is written
either way), 2 for a bad argument.
"""
from __future__ import annotations

import argparse
import shlex
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd


@dataclass
class MethodDiff:
    method: str
    plates: int = 0
    only_in: str | None = None           # "first" / "second" when one run lacks the method
    missing_plates: int = 0              # ids in one table and not the other
    numeric: dict[str, float] = field(default_factory=dict)   # column -> max |a - b| (> 0 only)
    text: dict[str, int] = field(default_factory=dict)        # column -> cells that differ
    columns_only_in: dict[str, list[str]] = field(default_factory=dict)
    pixels_differ: int | None = None     # None: no SR images in one of the runs
    pixel_max: float = 0.0

    @property
    def identical(self) -> bool:
        return (self.only_in is None and not self.missing_plates and not self.numeric
                and not self.text and not self.columns_only_in and not self.pixels_differ)


def _methods(run: Path) -> set[str]:
    return {p.parent.name for p in run.glob("*/plates.csv")}


def _sr_images(path: Path) -> dict[str, np.ndarray] | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise SystemExit(f"error: {path}: cannot read the SR images ({exc}); rerun that run's method")


def compare_method(a: Path, b: Path, method: str) -> MethodDiff:
    d = MethodDiff(method)
    pa, pb = a / method / "plates.csv", b / method / "plates.csv"
    if not pa.is_file() or not pb.is_file():
        d.only_in = "first" if pa.is_file() else "second"
        return d
    ta = pd.read_csv(pa, dtype={"id": str}, keep_default_na=False).set_index("id")
    tb = pd.read_csv(pb, dtype={"id": str}, keep_default_na=False).set_index("id")
    shared = ta.index.intersection(tb.index)
    d.plates = len(shared)
    d.missing_plates = len(ta.index.symmetric_difference(tb.index))
    extra_a, extra_b = sorted(set(ta.columns) - set(tb.columns)), sorted(set(tb.columns) - set(ta.columns))
    if extra_a:
        d.columns_only_in["first"] = extra_a
    if extra_b:
        d.columns_only_in["second"] = extra_b
    for col in [c for c in ta.columns if c in tb.columns]:
        x, y = ta.loc[shared, col], tb.loc[shared, col]
        xn, yn = pd.to_numeric(x, errors="coerce"), pd.to_numeric(y, errors="coerce")
        if xn.notna().all() and yn.notna().all():
            gap = float((xn - yn).abs().max()) if len(shared) else 0.0
            if gap > 0:
                d.numeric[col] = gap
        else:
            n = int((x.astype(str) != y.astype(str)).sum())
            if n:
                d.text[col] = n
    ia, ib = _sr_images(a / method / "sr_test.npz"), _sr_images(b / method / "sr_test.npz")
    if ia is not None and ib is not None:
        d.pixels_differ = 0
        for key in sorted(set(ia) | set(ib)):
            u, v = ia.get(key), ib.get(key)
            if u is None or v is None or u.shape != v.shape:
                d.pixels_differ += int(max(np.size(u) if u is not None else 0, np.size(v) if v is not None else 0))
                continue
            if u.dtype.kind not in "biuf" or v.dtype.kind not in "biuf":  # e.g. the plate ids
                d.pixels_differ += int((u != v).sum())
                continue
            diff = np.abs(u.astype(np.float64) - v.astype(np.float64))
            d.pixels_differ += int((diff > 0).sum())
            d.pixel_max = max(d.pixel_max, float(diff.max(initial=0)))
    return d


def compare_runs(a: Path, b: Path) -> list[MethodDiff]:
    for run in (a, b):
        if not run.is_dir():
            raise SystemExit(f"error: {run}: no such run directory; pass the folder that holds <method>/plates.csv")
    names = sorted(_methods(a) | _methods(b))
    if not names:
        raise SystemExit(f"error: neither {a} nor {b} holds a <method>/plates.csv; is it a run directory?")
    return [compare_method(a, b, m) for m in names]


def _verdict(d: MethodDiff) -> str:
    if d.only_in:
        return f"only in the {d.only_in} run"
    if d.identical:
        pix = "" if d.pixels_differ is None else ", SR pixels identical"
        return f"identical ({d.plates} plates, every column{pix})"
    parts = []
    if d.missing_plates:
        parts.append(f"{d.missing_plates} plate ids in one run only")
    for side, cols in d.columns_only_in.items():
        parts.append(f"columns only in the {side} run: {', '.join(cols)}")
    parts += [f"{c} max |diff| {g:.3g}" for c, g in d.numeric.items()]
    parts += [f"{c}: {n} of {d.plates} differ" for c, n in d.text.items()]
    if d.pixels_differ:
        parts.append(f"{d.pixels_differ} SR values differ (max {d.pixel_max:g})")
    return "; ".join(parts)


def render(diffs: list[MethodDiff], a: Path, b: Path, title: str, argv: list[str]) -> str:
    same = sum(d.identical for d in diffs)
    lines = [f"# {title}", "",
             f"Command: `python benchmarks/compare_runs.py {shlex.join(argv)}`", "",
             f"- first run: `{a}`", f"- second run: `{b}`",
             f"- {same} of {len(diffs)} methods identical per plate", "",
             "| method | per-plate result |", "|---|---|"]
    lines += [f"| {d.method} | {_verdict(d)} |" for d in diffs]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("first", type=Path)
    ap.add_argument("second", type=Path)
    ap.add_argument("--out", type=Path, help="write the markdown report here (default: print it)")
    ap.add_argument("--title", default="Per-plate comparison of two runs")
    args = ap.parse_args(argv)
    diffs = compare_runs(args.first, args.second)
    text = render(diffs, args.first, args.second, args.title, argv)
    if args.out:
        tmp = args.out.with_name(args.out.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(args.out)
    print(text, end="")
    return 0 if all(d.identical for d in diffs) else 1


if __name__ == "__main__":
    sys.exit(main())
