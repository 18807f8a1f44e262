"""Learning-rate sweep on the VAL split for one method of a study profile.

    python benchmarks/lr_sweep.py --method mse-skip --lrs 2e-4,5e-4,1e-3 \\
        --data ccpd:../shared/data/ccpd-sample --run-dir runs/ccpd-sample-x8-cpu-lr-mse-skip \\
        --reuse 2e-4=runs/ccpd-sample-x8-cpu/mse-skip --out benchmarks/lr_sweep-cpu-mse-skip.md

Each point is the base profile with only ``per_method.<method>.lr`` changed (budget,
schedule, batch, seed and data exactly as the study trains it), run by ``bench run --ocr
none`` into ``<run-dir>/lr-<lr>`` with its leaderboard kept there (never in
``leaderboards/``).  The report reads only what training measured on the val split
(``result.json``'s best val PSNR and its iteration, the val curve in ``train.jsonl``) and
chooses the lr with the best val PSNR; the test numbers those runs also write are not read.
``--reuse LR=METHOD_DIR`` takes a point that was already trained (e.g. the study's own
run) instead of training it again, after checking that its recorded lr is that LR.
Resumable: rerun the same command; finished points are skipped, an interrupted one resumes.
Writes ``--out`` (markdown) and a figure of the val curves beside it.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report.figures import read_train_log  # noqa: E402
from bench.environment import git_commit, machine_facts  # noqa: E402
from lpsr.config import ConfigError  # noqa: E402
from lpsr.profile import load_profile  # noqa: E402


def swept_profile(base: str, method: str, lr: float) -> dict:
    """The ``base`` profile as a mapping with ``method``'s lr set to ``lr``, only that method kept."""
    name, prof = load_profile(base)
    raw = prof.model_dump(mode="json")
    if method not in raw["per_method"]:
        raise ConfigError(f"--method {method}: profile {name} gives it no per_method budget; "
                          f"choose among {', '.join(raw['per_method'])}")
    raw["per_method"] = {method: {**raw["per_method"][method], "lr": lr}}
    raw["description"] = f"{prof.description or name}, {method} at lr {lr:g} (lr sweep on val)"
    return raw


def parse_lrs(text: str) -> list[float]:
    try:
        lrs = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"--lrs {text!r}: give comma-separated numbers, e.g. 2e-4,5e-4,1e-3") from None
    if not lrs or any(lr <= 0 for lr in lrs):
        raise ConfigError(f"--lrs {text!r}: give at least one learning rate, all > 0")
    return lrs


def parse_reuse(items: list[str], method: str) -> dict[float, Path]:
    out: dict[float, Path] = {}
    for item in items:
        lr_text, _, path = item.partition("=")
        try:
            lr = float(lr_text)
        except ValueError:
            raise ConfigError(f"--reuse {item!r}: expected LR=METHOD_DIR, e.g. 2e-4=runs/ccpd-sample-x8-cpu/{method}") from None
        d = Path(path)
        result = d / "result.json"
        if not result.is_file():
            raise ConfigError(f"--reuse {item!r}: {result} not found; point it at a trained method's folder")
        got = json.loads(result.read_text())
        if got.get("method") != method or not got.get("config_hash"):
            raise ConfigError(f"--reuse {item!r}: {result} is method {got.get('method')!r}, not {method!r}")
        trained_lr = yaml.safe_load((d / "config.yaml").read_text())["train"]["lr"]
        if abs(trained_lr - lr) > 1e-12:
            raise ConfigError(f"--reuse {item!r}: {d / 'config.yaml'} trained at lr {trained_lr:g}, not {lr:g}")
        out[lr] = d
    return out


def bench_run(args: list[str], log: Path) -> int:
    """``bench ARGS`` in a child process (this interpreter), its output appended to ``log``
    (not shown: the point's leaderboard holds test numbers the sweep must not choose on);
    its exit status."""
    with open(log, "a", encoding="utf-8") as fh:
        return subprocess.run([sys.executable, "-m", "bench.cli", *args], stdout=fh, stderr=subprocess.STDOUT).returncode


def point_dir(run_dir: Path, lr: float) -> Path:
    return run_dir / f"lr-{lr:g}"


def read_point(method_dir: Path) -> dict | None:
    """What a finished point measured on val: best val PSNR, its iteration, the curve."""
    result = method_dir / "result.json"
    if not result.is_file():
        return None
    got = json.loads(result.read_text())
    curve = [(r["iteration"], r["val_psnr"]) for r in read_train_log(method_dir / "train.jsonl") if "val_psnr" in r]
    return {"best_val_psnr": got["train"]["best_val_psnr"], "best_iteration": got["train"]["best_iteration"],
            "iterations": got["train"]["iterations"], "final_val_psnr": curve[-1][1] if curve else float("nan"),
            "train_seconds": got["train"]["train_seconds"], "commit": got["commit"], "curve": curve}


def report(method: str, base: str, points: dict[float, dict], out: Path, command: str,
           failed: dict[float, str] | None = None) -> str:
    """Markdown table of the sweep and the choice, with a figure of the val curves beside ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    best = max(points, key=lambda lr: points[lr]["best_val_psnr"])
    fig_path = out.with_suffix(".png")
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    for lr in sorted(points):
        xs, ys = zip(*points[lr]["curve"])
        ax.plot(xs, ys, marker="o", ms=3, label=f"lr {lr:g}" + (" (chosen)" if lr == best else ""))
    ax.set_xlabel("iteration")
    ax.set_ylabel("mean val PSNR (dB)")
    ax.set_title(f"{method}: learning-rate sweep on val ({base} profile)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(fig_path)
    plt.close(fig)
    facts = machine_facts(torch.device("cpu"))
    lines = [
        f"# Learning-rate sweep on val: `{method}` under the `{base}` profile",
        "",
        f"Command: `{command}`  ",
        f"Machine: {facts['cpu']} ({facts['logical_cpus']} logical CPUs); report written at commit {git_commit()}.",
        "",
        f"Each point trains `{method}` with the `{base}` profile's budget, schedule, batch, seed and data; only the",
        "learning rate differs. The choice is the best mean PSNR on the **val** split; test numbers are not read.",
        "Training seconds are wall time as measured, under whatever else ran on the machine; they are not compared.",
        "",
        "| lr | best val PSNR (dB) | at iteration | final val PSNR (dB) | iterations | train s | commit |",
        "|---:|---:|---:|---:|---:|---:|---|",
    ]
    for lr in sorted(points):
        p = points[lr]
        mark = " **(chosen)**" if lr == best else ""
        lines.append(f"| {lr:g}{mark} | {p['best_val_psnr']:.3f} | {p['best_iteration']} | {p['final_val_psnr']:.3f} | "
                     f"{p['iterations']} | {p['train_seconds']:.0f} | {p['commit']} |")
    for lr, why in sorted((failed or {}).items()):
        lines.append(f"| {lr:g} | {why} | | | | | |")
    lines += ["", f"Chosen: lr **{best:g}** (best val PSNR {points[best]['best_val_psnr']:.3f} dB).", "",
              f"![val PSNR against iterations per lr]({fig_path.name})", ""]
    out.write_text("\n".join(lines))
    return f"{best:g}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", required=True)
    ap.add_argument("--lrs", required=True, help="comma-separated learning rates, e.g. 2e-4,5e-4,1e-3")
    ap.add_argument("--base", default="cpu", help="the study profile whose recipe the points share")
    ap.add_argument("--data", default="ccpd:../shared/data/ccpd-sample")
    ap.add_argument("--scale", default="8")
    ap.add_argument("--run-dir", type=Path, required=True)
    ap.add_argument("--reuse", action="append", default=[], metavar="LR=METHOD_DIR",
                    help="a point already trained (checked to be that method at that lr); repeatable")
    ap.add_argument("--out", type=Path, required=True, help="markdown report; its figure goes beside it (.png)")
    args = ap.parse_args(argv)
    try:
        lrs = parse_lrs(args.lrs)
        reuse = parse_reuse(args.reuse, args.method)
        profiles = {lr: swept_profile(args.base, args.method, lr) for lr in lrs if lr not in reuse}
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failed: dict[float, str] = {}
    for lr, raw in profiles.items():
        run_dir = point_dir(args.run_dir, lr)
        run_dir.mkdir(parents=True, exist_ok=True)
        prof_file = run_dir / f"{Path(args.base).stem}-lr{lr:g}.yaml"  # the profile's name in its results
        prof_file.write_text(f"# written by benchmarks/lr_sweep.py --base {args.base} --method {args.method} (lr {lr:g})\n"
                             + yaml.safe_dump(raw, sort_keys=False))
        cmd = ["run", "--methods", args.method, "--scale", args.scale, "--data", args.data, "--profile", str(prof_file),
               "--ocr", "none", "--run-dir", str(run_dir), "--leaderboard-dir", str(run_dir / "leaderboard")]
        print("bench " + " ".join(cmd) + f"  (output: {run_dir / 'bench.log'})", flush=True)
        rc = bench_run(cmd, run_dir / "bench.log")
        if rc == 2:  # an error the user can fix at this lr, e.g. a NaN loss: a result of the sweep
            failed[lr] = f"failed (bench run exit 2, e.g. a NaN loss: {run_dir / 'bench.log'})"
        elif rc != 0:
            print(f"error: the point at lr {lr:g} stopped (exit {rc}, see {run_dir / 'bench.log'}); rerun the same command to resume",
                  file=sys.stderr)
            return rc
    dirs = {lr: reuse.get(lr, point_dir(args.run_dir, lr) / args.method) for lr in lrs if lr not in failed}
    points = {lr: read_point(d) for lr, d in dirs.items()}
    missing = [f"{lr:g} ({d})" for lr, d in dirs.items() if points[lr] is None]
    if missing or not points:
        print(f"error: no finished result for lr {', '.join(missing) or 'any point'}; rerun the same command", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/lr_sweep.py " + " ".join(argv if argv is not None else sys.argv[1:])
    chosen = report(args.method, args.base, points, args.out, command, failed)
    print(f"chosen lr {chosen} on val; report {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
