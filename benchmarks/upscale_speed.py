"""`bench upscale` throughput of every method of a run, at the benchmark's test size.  Rerunnable.

For each method with a finished result in ``--run-dir`` (and the floor, Bicubic, which needs
no weights) it loads the method as ``bench upscale --from RUN`` does (``lpsr.infer.
load_from_run``), makes the LR of ``--plates`` test plates exactly as ``bench run`` does
(``lpsr.data.degrade.make_pair``: 192x64 HR -> 24x8 LR at x8), and times
``lpsr.infer.upscale`` (the function the command calls; SR only, no file writing, no OCR):
one warm-up pass, then the median of ``--repeat`` passes.  It writes a markdown table
(plates/s, ms per plate) with the machine, threads and the command to ``--out``.

    python benchmarks/upscale_speed.py --run-dir runs/synthetic-x8                # README command 1's run
    python benchmarks/upscale_speed.py --run-dir R --batch-size 1 --out /tmp/b1.md

Time it on a quiet machine: another process on the cores changes every number.
"""
from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.environment import machine_facts  # noqa: E402
from bench.report.interface import floor_name, order  # noqa: E402
from lpsr import registry  # noqa: E402
from lpsr.data.degrade import make_pair  # noqa: E402
from lpsr.data.sources import load_data  # noqa: E402
from lpsr.infer import Loaded, load_from_run, upscale  # noqa: E402
from lpsr.method import count_parameters  # noqa: E402


def finished_methods(run_dir: Path) -> list[str]:
    names = [d.name for d in run_dir.iterdir() if (d / "result.json").is_file() and (d / "config.yaml").is_file()]
    return sorted(names, key=order)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run-dir", type=Path, required=True)
    ap.add_argument("--data", default="synthetic", help="where the test plates come from (as bench run --data)")
    ap.add_argument("--plates", type=int, default=256, help="test plates to upscale (the synthetic set is made this large)")
    ap.add_argument("--batch-size", type=int, default=8, help="as bench upscale --batch-size")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "upscale_speed.md")
    args = ap.parse_args(argv)

    device = torch.device("cpu")
    splits = load_data(args.data, synthetic_sizes=(0, 0, args.plates), scale=8)
    plates = splits.test[: args.plates]
    floor = floor_name()
    names = finished_methods(args.run_dir)
    rows = []
    for name in ([floor] if floor and floor not in names else []) + names:
        entry = registry.get(name)
        if entry.cls.trainable:
            loaded = load_from_run(name, args.run_dir)
        else:
            loaded = Loaded(entry.create(8), None)
        scale = loaded.method.scale
        # float32 in [0, 1], as bench upscale's inputs (lpsr.infer.ccpd_lr)
        lrs = [make_pair(p.hr, scale, p.id)[0].astype(np.float32) / 255.0 for p in plates]
        upscale(loaded, lrs[: args.batch_size], device, args.batch_size)  # warm-up
        times = [upscale(loaded, lrs, device, args.batch_size)[1] for _ in range(args.repeat)]
        sec = statistics.median(times)
        lr_h, lr_w = lrs[0].shape[:2]
        rows.append((name, count_parameters(loaded.model), len(lrs) / sec, 1000 * sec / len(lrs), f"{lr_w}x{lr_h}"))
        print(f"{name:16s} {rows[-1][2]:9.1f} plates/s", flush=True)

    facts = machine_facts(device)
    load = os.getloadavg()
    cmd = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__, REPO), *(argv if argv is not None else sys.argv[1:])])
    lines = [
        "# `bench upscale` throughput per method (SR only)",
        "",
        f"- command: `{cmd}` ({time.strftime('%Y-%m-%d')})",
        f"- machine: {facts['cpu']}, {facts['logical_cpus']} logical CPUs, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, fp32, batch {args.batch_size}; load average at the end {load[0]:.2f}",
        f"- plates: {len(plates)} test plates of `{splits.name}` at x8 (LR made as `bench run` makes it); "
        f"weights from `{args.run_dir.name}` (the networks' speed does not depend on them); "
        f"median of {args.repeat} passes after one warm-up batch",
        "",
        "| method | params | LR size | plates/s | ms/plate |",
        "|---|---:|---|---:|---:|",
        *[f"| {n} | {p:,} | {s} | {r:,.1f} | {ms:.2f} |" for n, p, r, ms, s in rows],
        "",
    ]
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
