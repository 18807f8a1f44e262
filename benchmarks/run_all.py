"""Time a whole `bench run` and write what it measured to benchmarks/run_all-<data>.md.

    python benchmarks/run_all.py                                   # all methods, synthetic data
    python benchmarks/run_all.py --data ccpd:../shared/data/ccpd-sample
    python benchmarks/run_all.py --methods pecl-ablation

It runs the real CLI in a fresh run directory (so nothing is skipped as cached), records
wall time, the machine, and per-method training time and seconds per step from the run's
result files, and publishes the leaderboard the run generated into ``leaderboards/``.
"""
from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.environment import machine_facts  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default="all")
    ap.add_argument("--scale", default="8")
    ap.add_argument("--data", default="synthetic")
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--ocr", default="ppocr,plate")
    ap.add_argument("--keep", action="store_true", help="reuse the run directory (resume) instead of starting fresh")
    args = ap.parse_args()

    data_tag = args.data.split(":", 1)[-1].rstrip("/").split("/")[-1] if ":" in args.data else args.data
    tag = f"{data_tag}-x{args.scale}-{args.profile}" + ("" if args.methods == "all" else f"-{args.methods.replace(',', '+')}")
    run_dir = ROOT / "runs" / f"bench-{tag}"
    if run_dir.exists() and not args.keep:
        shutil.rmtree(run_dir)
    cmd = ["bench", "run", "--methods", args.methods, "--scale", args.scale, "--data", args.data, "--profile", args.profile,
           "--ocr", args.ocr, "--run-dir", str(run_dir.relative_to(ROOT)), "--leaderboard-dir", "leaderboards"]
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", "from bench.cli import main; main()", *cmd[1:]], cwd=ROOT, text=True, capture_output=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(proc.returncode)

    rows = []
    for res_path in sorted(run_dir.glob("*/result.json")):
        if res_path.parent.name.startswith("_"):
            continue
        r = json.loads(res_path.read_text())
        tr = r.get("train") or {}
        cfg_iters = tr.get("iterations")
        secs = tr.get("train_seconds")
        per_step = f"{secs / cfg_iters:.3f}" if secs and cfg_iters else "-"
        ocr = "; ".join(f"{k}: {v['plates_per_s']} plates/s" for k, v in (r.get("ocr") or {}).items())
        rows.append(f"| {r['method']} | {r['params']:,} | {tr.get('iterations', '-')} | {secs if secs is not None else '-'} | {per_step} | {r['sr_seconds']} | {ocr or '-'} |")
    board = next((ln.split("leaderboard written to ", 1)[1].split(" ")[0] for ln in proc.stdout.splitlines() if "leaderboard written to" in ln), "?")
    out = ROOT / "benchmarks" / f"run_all-{tag}.md"
    out.write_text("\n".join([
        f"# `bench run` timing: {tag}",
        "",
        f"- command: `{' '.join(cmd)}` (via `python benchmarks/run_all.py --methods {args.methods} --data {args.data} --profile {args.profile} --ocr {args.ocr}`)",
        f"- machine: {machine_facts(torch.device('cpu'))['cpu']}, {torch.get_num_threads()} torch threads, {platform.system()} {platform.release()}, Python {platform.python_version()}, torch {torch.__version__}, device cpu",
        f"- measured {time.strftime('%Y-%m-%d')}; wall time of the whole command, data loading, training, evaluation and OCR included: **{wall / 60:.1f} min ({wall:.0f} s)**",
        f"- leaderboard: `{board}`",
        "",
        "| method | params | iterations | train s | s / step | SR s (test set) | OCR speed |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
    ]))
    print(f"{wall:.0f} s; wrote {out}")


if __name__ == "__main__":
    main()
