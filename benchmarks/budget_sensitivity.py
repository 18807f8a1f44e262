"""Is a study row's number the method's or its budget's? Retrain chosen methods of a study
profile at a multiple of their budget, same recipe and data, and publish that leaderboard.

    python benchmarks/budget_sensitivity.py --methods mse-skip --factor 2 \\
        --data ccpd:../shared/data/ccpd-sample --ocr ppocr,plate --run-dir runs/ccpd-sample-x8-cpu-x2

It writes ``<run-dir>/cpu-x<factor>.yaml``: the base profile with each chosen method's
``iterations``, ``val_every`` and step-schedule ``lr_steps`` multiplied by the factor (a
cosine schedule stretches with ``iterations``), then runs the floor (Bicubic) and them
with ``bench run --profile`` that file, so the leaderboard is ``leaderboards/<data>-x<scale>-cpu-x<factor>.md`` and states its
budget at the top like every other. Resumable: rerun the same command.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lpsr.config import ConfigError  # noqa: E402
from lpsr.profile import load_profile  # noqa: E402

SCALED = ("iterations", "val_every")


def scaled_profile(base: str, methods: list[str], factor: int) -> dict:
    """The ``base`` profile as a mapping, ``methods``' budgets multiplied by ``factor``."""
    name, prof = load_profile(base)
    raw = prof.model_dump(mode="json")
    for method in methods:
        block = raw["per_method"].get(method)
        if not block or "iterations" not in block:
            raise ConfigError(f"--methods {method}: profile {name} gives it no per_method iterations to scale; "
                              f"choose among {', '.join(m for m, b in raw['per_method'].items() if 'iterations' in b)}")
        for key in SCALED:
            if key in block:
                block[key] = int(block[key]) * factor
        if "lr_steps" in block:
            block["lr_steps"] = [int(s) * factor for s in block["lr_steps"]]
    raw["per_method"] = {m: raw["per_method"][m] for m in methods}
    raw["description"] = f"{prof.description or name}, at {factor}x the budget of {', '.join(methods)} (budget sensitivity)"
    return raw


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", required=True, help="comma-separated methods of the base profile")
    ap.add_argument("--factor", type=int, default=2, help="budget multiplier (integer >= 2)")
    ap.add_argument("--base", default="cpu", help="the study profile whose budgets are scaled")
    ap.add_argument("--data", default="ccpd:../shared/data/ccpd-sample")
    ap.add_argument("--scale", default="8")
    ap.add_argument("--ocr", default="ppocr,plate")
    ap.add_argument("--run-dir", type=Path, required=True)
    ap.add_argument("--leaderboard-dir", default="leaderboards")
    ap.add_argument("--floor", default="bicubic", help="an untrained reference row run beside them ('' for none)")
    args = ap.parse_args(argv)
    if args.factor < 2:
        ap.error("--factor: must be an integer >= 2")
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    try:
        raw = scaled_profile(args.base, methods, args.factor)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.run_dir.mkdir(parents=True, exist_ok=True)
    prof_file = args.run_dir / f"{Path(args.base).stem}-x{args.factor}.yaml"
    prof_file.write_text(
        f"# written by benchmarks/budget_sensitivity.py --base {args.base} --factor {args.factor} --methods {args.methods}\n"
        + yaml.safe_dump(raw, sort_keys=False)
    )
    runs = [args.floor, *methods] if args.floor and args.floor not in methods else methods
    cmd = ["run", "--methods", ",".join(runs), "--scale", args.scale, "--data", args.data, "--profile", str(prof_file),
           "--ocr", args.ocr, "--run-dir", str(args.run_dir), "--leaderboard-dir", args.leaderboard_dir]
    print("bench " + " ".join(cmd), flush=True)
    return subprocess.run([sys.executable, "-m", "bench.cli", *cmd]).returncode


if __name__ == "__main__":
    raise SystemExit(main())
