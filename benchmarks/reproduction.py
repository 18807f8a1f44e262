"""``docs/reproduction.md``: the study's numbers beside the paper's Table 1, method by method,
each method's gain over Bicubic, the rankings side by side, each claim of the paper checked
on the same test plates, and validation PSNR against training time for every method.

Everything below the title is computed from the study's run directory (per-plate results,
training logs) and, for the PECL ablation claims (distance, embedding size), from the
ablation leaderboard's JSON; the hand-written discussion comes from
``benchmarks/reproduction_notes.md`` (included verbatim when present).

    python benchmarks/reproduction.py --run-dir runs/ccpd-sample-x8-cpu \\
        --ablation leaderboards/ccpd-sample-x8-pecl-ablation.json --out docs/reproduction.md

Paired tests are the leaderboard's (lpsr.metrics.stats): Wilcoxon signed-rank on per-plate
PSNR-Y, exact McNemar on exact plate reads; a claim "holds" when the difference has the
claimed sign and p < 0.05, "not shown" when p >= 0.05, "reversed" when significant the other
way.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import figures  # noqa: E402
from bench.report.results import MethodResults, load_reference, load_results  # noqa: E402
from bench.report.table import is_floor, is_learned  # noqa: E402
from lpsr.metrics.spec import IMAGE_METRICS, OCR_METRICS, MetricSpec, aggregate, fmt_count  # noqa: E402
from lpsr.metrics.stats import ALPHA, paired_p  # noqa: E402


@dataclass(frozen=True)
class PaperRow:
    """One row of the paper's Table 1 (x8, CCPD, median ± std) and Fig. 6's convergence."""

    label: str
    params: str
    psnr: tuple[float, float]
    psnr_y: tuple[float, float]
    rho: tuple[float, float]
    converged_at: str  # iterations to convergence read off Fig. 6 ("" where not given)


# Sendjasni & Larabi, Neurocomputing 2025, Table 1 and Fig. 6 (../shared/docs/paper.md).
PAPER: dict[str, PaperRow] = {
    "bicubic": PaperRow("Bicubic", "-", (18.53, 2.78), (18.70, 2.82), (0.697, 0.19), ""),
    "srcnn": PaperRow("SRCNN", "57K", (19.57, 2.72), (19.84, 2.78), (0.665, 0.21), ""),
    "msrn": PaperRow("MSRN", "6M", (19.78, 2.74), (19.84, 2.82), (0.656, 0.20), "~281k"),
    "espcn": PaperRow("ESPCN", "800K", (23.52, 2.47), (24.11, 0.61), (0.848, 0.14), "~900k"),
    "esrgan": PaperRow("ESRGAN", "16M", (18.76, 2.26), (19.01, 2.33), (0.812, 0.17), "~155k"),
    "tbsrn": PaperRow("TBSRN", "12M", (23.76, 2.48), (24.42, 2.63), (0.855, 0.15), "~900k"),
    "swinir": PaperRow("SwinIR", "11M", (23.56, 2.50), (24.18, 2.65), (0.850, 0.14), "~900k"),
    "pecl": PaperRow("Proposed (PECL)", "2M", (25.13, 2.46), (25.92, 2.62), (0.852, 0.13), ""),
}
BASELINES = ["srcnn", "msrn", "espcn", "esrgan", "tbsrn", "swinir"]
PECL_FAMILY = ["pecl", "pecl-pull", "pecl-pull-skip"]
PRIMARY_OCR = "ppocr"  # never used in any method's training: the independent reader
TARGETS = {"pecl_gain_db": 3.0, "plate_acc": 0.75}  # issue 12's bar


def spec(key: str) -> MetricSpec:
    return next(m for m in (*IMAGE_METRICS, *OCR_METRICS) if m.key == key)


def values(mr: MethodResults, key: str, ocr: str | None = None) -> np.ndarray:
    return mr.plates[spec(key).col(ocr)].to_numpy(dtype=float)


def agg(mr: MethodResults | None, key: str, ocr: str | None = None) -> float:
    if mr is None or spec(key).col(ocr) not in mr.plates:
        return float("nan")
    return float(aggregate(spec(key), mr.plates[spec(key).col(ocr)])["value"])


def compare(a: MethodResults, b: MethodResults, key: str, ocr: str | None = None) -> tuple[float, float]:
    """Difference of the aggregates (a - b) and the paired test's p on the same plates."""
    s = spec(key)
    if s.col(ocr) not in a.plates or s.col(ocr) not in b.plates:
        return float("nan"), float("nan")
    return agg(a, key, ocr) - agg(b, key, ocr), paired_p(s.test, values(a, key, ocr), values(b, key, ocr))


def verdict(diff: float, p: float) -> str:
    if math.isnan(diff) or math.isnan(p):
        return "not measured"
    if p >= ALPHA:
        return "not shown"
    return "holds" if diff > 0 else "reversed"


def f2(x: float, nd: int = 2, sign: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:+.{nd}f}" if sign else f"{x:.{nd}f}"


def pct(x: float) -> str:
    return "-" if math.isnan(x) else f"{100 * x:.1f}%"


def pval(p: float) -> str:
    return "-" if math.isnan(p) else (f"{p:.1e}" if p < 1e-3 else f"{p:.3f}")


def md_table(head: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(r) + " |" for r in rows] + [""]


# -- sections ----------------------------------------------------------------------------------
def section_setup(res: dict[str, MethodResults], args) -> list[str]:
    any_r = next(iter(res.values())).result
    d = any_r.get("data") or {}
    commits = sorted({str(m.result.get("commit")) for m in res.values()})
    budget = [f"{n} {m.result['train']['iterations']:,} it ({m.result['train']['train_seconds'] / 60:.1f} min)"
              for n, m in res.items() if is_learned(m.result)]
    machine = sorted({f"{m.result['machine'].get('logical_cpus')} x {m.result['machine'].get('cpu')}"
                      for m in res.values() if m.result.get("machine")})
    return [
        "## Setup", "",
        f"- data: `{d.get('name')}` ({d.get('n_train')} train / {d.get('n_val')} val / {d.get('n_test')} test plates, real CCPD photos, "
        f"{d.get('crop')} crop to {d.get('hr_size', ['?', '?'])[0]}x{d.get('hr_size', ['?', '?'])[1]}), x{any_r.get('scale')}, "
        "LR = antialiased bicubic (PIL, a = -0.5)",
        f"- profile `{any_r.get('profile')}`, seed {any_r.get('seed')}, device {any_r.get('device')}, torch {any_r.get('torch')}, "
        f"commit {', '.join(f'`{c}`' for c in commits)}; machine: {', '.join(machine) if machine else args.machine}",
        "- budget (iterations; measured training wall time, validation included): " + "; ".join(budget),
        f"- run directory `{args.run_dir}`; leaderboard `{args.leaderboard}`",
        "- paper: Table 1 (x8, CCPD, median ± std over its test set; 1,000k iterations at batch 128 on a V100S); its test set and "
        "OCR are not ours, so compare gains over Bicubic and rankings, not absolute numbers",
        f"- readability: exact plate accuracy and OCR rho with PP-OCRv4 (`{PRIMARY_OCR}`), which no method saw in training; "
        "the plate recogniser (`plate`) is shown too, but TBSRN, ESRGAN and the PECL family use it in their training losses",
        "",
    ]


def section_table1(res: dict[str, MethodResults], ref: MethodResults | None) -> list[str]:
    head = ["method", "params paper / ours", "PSNR paper", "PSNR ours", "PSNR-Y paper", "PSNR-Y ours",
            "OCR rho paper", f"OCR rho ours ({PRIMARY_OCR})", f"plate acc ({PRIMARY_OCR})", "plate acc (plate)",
            "iters to best ours / total; paper's convergence"]
    rows = []
    order = ["bicubic"] + BASELINES + ["pecl"] + [n for n in res if n not in PAPER]
    for name in order:
        mr = res.get(name)
        p = PAPER.get(name)
        if mr is None and p is None:
            continue
        tr = (mr.result.get("train") or {}) if mr else {}
        ours_params = fmt_count(mr.result.get("params")) if mr else "not run"
        it = f"{tr['best_iteration']:,} / {tr['iterations']:,}" if tr.get("iterations") else "-"
        rows.append([
            name + (f" ({p.label})" if p else ""),
            f"{p.params if p else '-'} / {ours_params}",
            f"{p.psnr[0]:.2f} ± {p.psnr[1]:.2f}" if p else "-",
            f2(agg(mr, 'psnr')) if mr else "-",
            f"{p.psnr_y[0]:.2f} ± {p.psnr_y[1]:.2f}" if p else "-",
            f2(agg(mr, 'psnr_y')) if mr else "-",
            f"{p.rho[0]:.3f}" if p else "-",
            f2(agg(mr, 'rho', PRIMARY_OCR), 3) if mr else "-",
            pct(agg(mr, 'plate_acc', PRIMARY_OCR)) if mr else "-",
            pct(agg(mr, 'plate_acc', 'plate')) if mr else "-",
            f"{it}; {p.converged_at or '-'}" if p else it,
        ])
    if ref is not None:
        rows.append(["HR (ceiling)", "-", "-", "-", "-", "-", "-", f2(agg(ref, 'rho', PRIMARY_OCR), 3),
                     pct(agg(ref, 'plate_acc', PRIMARY_OCR)), pct(agg(ref, 'plate_acc', 'plate')), "-"])
    return ["## Table 1 beside ours", "", "Ours: median over the test plates (PSNR, PSNR-Y, OCR rho), rate over the test plates "
            "(plate acc). Rows below the paper's eight are this harness's additions.", ""] + md_table(head, rows)


def section_gains(res: dict[str, MethodResults]) -> list[str]:
    bic = res.get("bicubic")
    if bic is None:
        return []
    head = ["method", "paper ΔPSNR", "ours ΔPSNR", "paper ΔPSNR-Y", "ours ΔPSNR-Y", "p (PSNR-Y, Wilcoxon)",
            f"ours Δ plate acc ({PRIMARY_OCR})", "p (McNemar)"]
    rows = []
    for name, mr in res.items():
        if name == "bicubic":
            continue
        p = PAPER.get(name)
        dpsnr = agg(mr, "psnr") - agg(bic, "psnr")
        dy, py = compare(mr, bic, "psnr_y")
        da, pa = compare(mr, bic, "plate_acc", PRIMARY_OCR)
        rows.append([name, f2(p.psnr[0] - PAPER["bicubic"].psnr[0], sign=True) if p else "-", f2(dpsnr, sign=True),
                     f2(p.psnr_y[0] - PAPER["bicubic"].psnr_y[0], sign=True) if p else "-", f2(dy, sign=True), pval(py),
                     "-" if math.isnan(da) else f"{100 * da:+.1f} pts", pval(pa)])
    return ["## Gain over Bicubic", "", "Difference of medians (dB) or of rates against `bicubic` (the degradation's kernel) on the "
            "same test plates; p from the paired test.", ""] + md_table(head, rows)


def section_rankings(res: dict[str, MethodResults]) -> list[str]:
    names = [n for n in PAPER if n in res]
    paper = sorted(names, key=lambda n: -PAPER[n].psnr_y[0])
    ours = sorted(names, key=lambda n: -agg(res[n], "psnr_y"))
    ours_all = sorted(res, key=lambda n: -agg(res[n], "psnr_y"))
    rows = [[str(i + 1), paper[i], f"{PAPER[paper[i]].psnr_y[0]:.2f}", ours[i], f2(agg(res[ours[i]], 'psnr_y'))] for i in range(len(names))]
    out = ["## Rankings by PSNR-Y", "", "The paper's eight methods (those run here), best first.", ""]
    out += md_table(["rank", "paper", "PSNR-Y", "ours", "PSNR-Y"], rows)
    out += ["Every method run here, by median PSNR-Y: " + " > ".join(f"{n} ({f2(agg(res[n], 'psnr_y'))})" for n in ours_all), ""]
    return out


def _ablation_rows(path: Path | None) -> dict[str, dict[str, Any]]:
    if path is None or not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return {r["method"]: r for r in data.get("rows", []) if not r.get("reference")}


def section_claims(res: dict[str, MethodResults], ablation: dict[str, dict[str, Any]], ablation_path: Path | None) -> list[str]:
    rows: list[list[str]] = []

    def pair(claim: str, a: str, b: str, key: str = "psnr_y", ocr: str | None = None) -> None:
        if a not in res or b not in res:
            rows.append([claim, f"{a} vs {b}", "not run", "not measured"])
            return
        d, p = compare(res[a], res[b], key, ocr)
        unit = " dB" if spec(key).kind == "image" else " pts"
        shown = f2(d if unit == " dB" else 100 * d, sign=True) + unit
        label = spec(key).label + (f" ({ocr})" if ocr else "")
        rows.append([claim, f"{a} vs {b}: {label}", f"{shown}, p = {pval(p)}", verdict(d, p)])

    for a, b in (("pecl", "mse"), ("pecl-pull", "mse"), ("pecl-pull-skip", "mse-skip")):
        pair("PECL > MSE (PSNR-Y)", a, b)
        pair("PECL > MSE (readability)", a, b, "plate_acc", PRIMARY_OCR)
    best_fam = max((n for n in PECL_FAMILY if n in res), key=lambda n: agg(res[n], "psnr_y"), default=None)
    for fam in dict.fromkeys(n for n in ("pecl", best_fam) if n is not None):
        beaten = [b for b in BASELINES if b in res]
        if not beaten or fam not in res:
            continue
        tests = [(b, *compare(res[fam], res[b], "psnr_y")) for b in beaten]
        worst = min(tests, key=lambda t: (verdict(t[1], t[2]) == "holds", t[1]))
        all_hold = all(verdict(d, p) == "holds" for _b, d, p in tests)
        rows.append([f"PECL > every baseline in PSNR-Y ({fam})", f"{fam} vs each of {', '.join(beaten)}",
                     f"closest: {worst[0]} {f2(worst[1], sign=True)} dB, p = {pval(worst[2])}",
                     "holds" if all_hold else ("reversed" if verdict(worst[1], worst[2]) == "reversed" else "not shown")])
    hi, lo = [n for n in ("espcn", "tbsrn", "swinir") if n in res], [n for n in ("srcnn", "msrn") if n in res]
    if hi and lo:
        tests = [(a, b, *compare(res[a], res[b], "psnr_y")) for a in hi for b in lo]
        worst = min(tests, key=lambda t: t[2])
        ok = all(verdict(d, p) == "holds" and d >= 1.0 for _a, _b, d, p in tests)
        rows.append(["ESPCN, TBSRN, SwinIR far (paper: >= 3.7 dB) above SRCNN, MSRN", "every pair, PSNR-Y",
                     f"smallest gap {worst[0]} - {worst[1]} = {f2(worst[2], sign=True)} dB, p = {pval(worst[3])}",
                     "holds" if ok else ("reversed" if worst[2] < 0 and worst[3] < ALPHA else "not shown")])
    if ablation:
        src = f"ablation leaderboard `{ablation_path}` (its own profile and budget; medians with bootstrap 95% CIs, no paired test kept)"
        dims = sorted({int(n.split("-")[1][1:]) for n in ablation if n.startswith("pecl-d") and n.count("-") == 2})
        diffs = []
        for d in dims:
            m, e = ablation.get(f"pecl-d{d}-manhattan"), ablation.get(f"pecl-d{d}-euclidean")
            if m and e:
                diffs.append((d, m["psnr_y"] - e["psnr_y"], m["psnr_y.ci_low"] > e["psnr_y.ci_high"]))
        if diffs:
            rows.append(["Manhattan > Euclidean at every d (PSNR-Y)", src,
                         ", ".join(f"d={d}: {f2(x, sign=True)} dB" for d, x, _sep in diffs),
                         "holds" if all(sep for *_x, sep in diffs) else ("not shown" if all(x > 0 for _d, x, _s in diffs) else "reversed")])
        man = [(d, ablation[f"pecl-d{d}-manhattan"]["psnr_y"]) for d in dims if f"pecl-d{d}-manhattan" in ablation]
        if len(man) > 1:
            increasing = all(b[1] > a[1] for a, b in zip(man, man[1:]))
            flat = max(v for _d, v in man) - min(v for _d, v in man) < 0.01
            rows.append(["Larger d is better, best at 512 (Manhattan, PSNR-Y)", src, ", ".join(f"d={d}: {f2(v)}" for d, v in man),
                         "holds" if increasing else ("not shown (identical: the term is zero)" if flat else "not shown")])
    return ["## The paper's claims, checked here", "",
            "Verdicts: holds = the claimed sign with p < 0.05 on the same test plates; not shown = p >= 0.05 (or CIs overlap, "
            "for the ablation); reversed = significant the other way.", ""] + md_table(["claim", "comparison", "here", "verdict"], rows)


def section_hinge(res: dict[str, MethodResults]) -> list[str]:
    """Eq. 17 as printed: the logged contrastive term and embedding distance of `pecl`."""
    mr = res.get("pecl")
    if mr is None or mr.dir is None:
        return []
    log = [r for r in figures.read_train_log(mr.dir / "train.jsonl") if "l_con" in r]
    if not log:
        return []
    l_con = [r["l_con"] for r in log]
    dist = [r["D"] for r in log if "D" in r] or [float("nan")]
    margin = (mr.result.get("describe") or {}).get("margin")
    zero = max(l_con) == 0.0
    return ["## Eq. 17 as printed", "",
            f"`pecl`'s training log ({len(log)} lines over {log[-1]['iteration']:,} iterations; each a mean over its interval): "
            f"the contrastive term L_con = max(m - D, 0)^2 with m = {margin} was at most {max(l_con):.3g}, and the Manhattan "
            f"distance D between the unit-length embeddings of SR and HR ranged {min(dist):.2f} - {max(dist):.2f}. "
            + ("So the hinge is zero at every logged step and `pecl` optimises the pixel term alone (docs/pecl.md)."
               if zero else "The hinge was active at some logged steps."), ""]


def section_targets(res: dict[str, MethodResults]) -> list[str]:
    bic = res.get("bicubic")
    if bic is None:
        return []
    floor = max(agg(m, "psnr_y") for m in res.values() if is_floor(m.result))
    lines = ["## Against the bar this study set itself (issue 12)", ""]
    below = [n for n, m in res.items() if is_learned(m.result) and agg(m, "psnr_y") < floor]
    lines.append("- every learned method above Bicubic in PSNR-Y: " + (
        "yes" if not below else "no: " + ", ".join(
            f"{n} ({f2(agg(res[n], 'psnr_y'))} dB; best checkpoint at {res[n].result['train']['best_iteration']:,} of "
            f"{res[n].result['train']['iterations']:,} iterations)" for n in below)))
    fam = [(n, agg(res[n], "psnr") - agg(bic, "psnr")) for n in PECL_FAMILY if n in res]
    if fam:
        n, g = max(fam, key=lambda t: t[1])
        lines.append(f"- best PECL-family gain over Bicubic in PSNR: {n} {f2(g, sign=True)} dB "
                     f"({'meets' if g >= TARGETS['pecl_gain_db'] else 'misses'} the +{TARGETS['pecl_gain_db']:.0f} dB bar)")
    accs = [(n, agg(m, "plate_acc", PRIMARY_OCR)) for n, m in res.items() if is_learned(m.result)]
    accs = [t for t in accs if not math.isnan(t[1])]
    if accs:
        n, a = max(accs, key=lambda t: t[1])
        lines.append(f"- best exact plate accuracy with PP-OCRv4: {n} {pct(a)} (Bicubic {pct(agg(bic, 'plate_acc', PRIMARY_OCR))}; "
                     f"{'meets' if a >= TARGETS['plate_acc'] else 'misses'} the {TARGETS['plate_acc']:.0%} bar)")
    return lines + [""]


def best_at_budgets(res: dict[str, MethodResults], minutes: list[float]) -> list[str]:
    """Which method has the best val PSNR by each training-time budget (from the logs)."""
    curves = {}
    for n, mr in res.items():
        log = [r for r in figures.read_train_log(mr.dir / "train.jsonl") if "val_psnr" in r] if mr.dir else []
        if log:
            secs, _exact = figures.curve_seconds(mr, log)
            if secs:
                curves[n] = list(zip([s / 60 for s in secs], [r["val_psnr"] for r in log]))
    if not curves:
        return []
    rows = []
    for t in minutes:
        reached = {n: max((v for m, v in c if m <= t), default=float("nan")) for n, c in curves.items()}
        reached = {n: v for n, v in reached.items() if not math.isnan(v)}
        if reached:
            top = sorted(reached, key=lambda n: -reached[n])[:3]
            rows.append([f"{t:g} min", ", ".join(f"{n} ({reached[n]:.2f})" for n in top)])
    return md_table(["training time", "best val PSNR reached by then (top 3, dB)"], rows)


def section_curves(res: dict[str, MethodResults], out: Path, floors: dict[str, float]) -> list[str]:
    fig = out.parent / "figures" / "reproduction_val_psnr_time.png"
    ordered = list(res.values())
    if not figures.val_curves(ordered, fig, x="seconds", floors=floors):
        return []
    rel = fig.relative_to(out.parent).as_posix()
    return ["## Which method is best at which budget", "",
            f"![Validation PSNR against training wall time]({rel})", "",
            "*Validation PSNR (mean over the val plates) against training wall time on the study's machine, log axis; dashed: "
            "methods evaluated without training (their val PSNR). Star: the checkpoint evaluated.*", "",
            *best_at_budgets(res, [1, 2, 5, 10, 15, 20])]


def section_budget(res: dict[str, MethodResults], longer: dict[str, MethodResults], path: Path | None) -> list[str]:
    """The same methods retrained at a multiple of their budget (benchmarks/budget_sensitivity.py),
    compared on the same test plates: is a row's number the method's or its budget's?"""
    rows = []
    for n, lm in longer.items():
        mr = res.get(n)
        if mr is None or not is_learned(lm.result) or not is_learned(mr.result):
            continue
        if list(mr.plates["id"]) != list(lm.plates["id"]):
            raise SystemExit(f"error: {path}: {n}'s test plates differ from the study's; rerun it with the same --data")
        t0, t1 = mr.result["train"], lm.result["train"]
        dy, py = compare(lm, mr, "psnr_y")
        da, pa = compare(lm, mr, "plate_acc", PRIMARY_OCR)
        rows.append([n, f"{t0['iterations']:,} -> {t1['iterations']:,}",
                     f"{t0['train_seconds'] / 60:.1f} -> {t1['train_seconds'] / 60:.1f}",
                     f"{f2(agg(mr, 'psnr'))} -> {f2(agg(lm, 'psnr'))}",
                     f"{f2(agg(mr, 'psnr_y'))} -> {f2(agg(lm, 'psnr_y'))} ({f2(dy, sign=True)}, p = {pval(py)})",
                     f"{pct(agg(mr, 'plate_acc', PRIMARY_OCR))} -> {pct(agg(lm, 'plate_acc', PRIMARY_OCR))} (p = {pval(pa)})",
                     f"{pct(agg(mr, 'plate_acc', 'plate'))} -> {pct(agg(lm, 'plate_acc', 'plate'))}",
                     f"{t1['best_iteration']:,}"])
    if not rows:
        return []
    return ["## Budget sensitivity", "",
            f"The same methods, recipe, data and seed, retrained at a multiple of the study's budget (`{path}`, profile "
            f"`{next(iter(longer.values())).result.get('profile')}`): study -> longer, on the same test plates, paired tests as above.", ""
            ] + md_table(["method", "iterations", "train min", "PSNR", "PSNR-Y (Δ, Wilcoxon p)", f"plate acc {PRIMARY_OCR} (McNemar p)",
                          "plate acc (plate)", "best iteration"], rows)


def floor_val_psnr(res: dict[str, MethodResults]) -> dict[str, float]:
    """Val PSNR of the untrained rows: from their result, else computed on the run's val plates."""
    out = {}
    for n, mr in res.items():
        if not is_floor(mr.result):
            continue
        if isinstance(mr.result.get("val_psnr"), (int, float)):
            out[n] = float(mr.result["val_psnr"])
            continue
        import torch

        from lpsr import registry
        from lpsr.data.sources import load_data
        from lpsr.evaluate import mean_psnr

        d = mr.result["data"]
        val = load_data(d["spec"], hr_size=tuple(d["hr_size"]), crop=d["crop"], seed=int(mr.result.get("seed") or 0),
                        scale=int(mr.result["scale"])).val
        method = registry.get(n).create(int(mr.result["scale"]))
        out[n] = mean_psnr(method, None, val, torch.device("cpu"))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run-dir", type=Path, required=True, help="the study's run directory")
    ap.add_argument("--leaderboard", default="leaderboards/ccpd-sample-x8-cpu.md", help="the study's leaderboard (named in the text)")
    ap.add_argument("--ablation", type=Path, default=None, help="the PECL ablation leaderboard's JSON")
    ap.add_argument("--longer", type=Path, default=None,
                    help="a run of some of the same methods at a multiple of their budget (benchmarks/budget_sensitivity.py)")
    ap.add_argument("--machine", default="not recorded in the run", help="the machine, when the run does not record it")
    ap.add_argument("--notes", type=Path, default=ROOT / "benchmarks" / "reproduction_notes.md")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "reproduction.md")
    args = ap.parse_args(argv)
    loaded = load_results(args.run_dir)
    if not loaded:
        print(f"error: {args.run_dir}: no finished method results (run the study first)", file=sys.stderr)
        return 2
    res = {mr.name: mr for mr in loaded}
    ref = load_reference(args.run_dir, loaded)
    ablation = _ablation_rows(args.ablation)
    cmd = "python benchmarks/reproduction.py " + " ".join(a if " " not in a else repr(a) for a in (argv if argv is not None else sys.argv[1:]))
    md = ["# Reproducing Sendjasni & Larabi (2025) on the CCPD sample", "",
          f"Generated by `{cmd}` from the study's per-plate results and training logs; do not edit by hand.", ""]
    md += section_setup(res, args)
    md += section_targets(res)
    md += section_table1(res, ref)
    md += section_gains(res)
    md += section_rankings(res)
    md += section_claims(res, ablation, args.ablation)
    md += section_hinge(res)
    md += section_curves(res, args.out, floor_val_psnr(res))
    if args.longer is not None:
        longer = {mr.name: mr for mr in load_results(args.longer)}
        if not longer:
            print(f"error: --longer {args.longer}: no finished method results", file=sys.stderr)
            return 2
        md += section_budget(res, longer, args.longer)
    if args.notes.is_file():
        md += [args.notes.read_text(encoding="utf-8").rstrip(), ""]
    from lpsr.io import write_text

    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text(args.out, "\n".join(md))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
