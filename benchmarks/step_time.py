"""Seconds per training step of each method on this CPU, and parameter counts at x2/x4/x8.

One step = the engine's own step, :func:`lpsr.train.step.train_step` (what the training
loop runs per iteration): SR of a batch of LR patches, the method's loss recipe, backward,
fused Adam step, and the discriminator step when it is due; default training settings.
The batch is random data of the training shape (timing does not depend on pixel values).
A recipe whose discriminator starts late (ESRGAN) is timed in both of its stages.

    python benchmarks/step_time.py                       # all trainable methods in `all`
    python benchmarks/step_time.py --methods srcnn,espcn --steps 5 --threads 2
    python benchmarks/step_time.py --methods mse-skip --degradations bicubic,camera,camera-random,realesrgan \
        --out benchmarks/step_time_degradations.md

``--degradations``: also the cost of making the batch under each ``train.degradation``
preset, as the loop makes it on the CPU (``loader_workers`` 0: in the training process, on
the critical path): :class:`lpsr.data.patches.PatchSampler` over 64 synthetic 192x64
plates, so each sample's whole plate is degraded, then its patch cut; the step itself does
not depend on the LR's pixels, so it is timed once per method.

Writes ``benchmarks/step_time.md`` (machine, torch version, command, load average).

OpenMP's wait policy matters on a shared 2-core machine and is recorded in the output: with
the default (busy-waiting) 2 threads are ~1.7x faster than 1 on a quiet machine (MSRN 0.28
vs 0.46 s per step) but up to 15x slower when other processes compete for the cores (7.8 s);
``OMP_WAIT_POLICY=PASSIVE`` (set it in the environment) avoids the collapse (0.54 s under
load) at the price of the quiet-machine speed-up.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.environment import machine_facts  # noqa: E402
from lpsr import registry  # noqa: E402
from lpsr.data.patches import PatchSampler  # noqa: E402
from lpsr.data.synthetic import make_synthetic  # noqa: E402
from lpsr.degradations import get_degradation  # noqa: E402
from lpsr.method import Batch, count_parameters  # noqa: E402
from lpsr.train.settings import TrainSettings  # noqa: E402
from lpsr.train.state import build_state, discriminator_start  # noqa: E402
from lpsr.train.step import train_step  # noqa: E402


def random_batch(batch: int, size: tuple[int, int], scale: int) -> Batch:
    hr = torch.rand(batch, 3, *size)
    lr = torch.nn.functional.avg_pool2d(hr, scale)
    return Batch(lr, hr, ["皖A12345"] * batch)


def time_steps(method, batch: Batch, steps: int, iteration: int, total: int) -> float:
    """Seconds per step of the engine's own step (:func:`lpsr.train.step.train_step`, with a
    state built as the training loop builds it) at ``iteration`` of ``total``."""
    torch.manual_seed(0)
    model = method.build()
    state, _ = build_state(method, model, TrainSettings(iterations=total, lr=1e-4), torch.device("cpu"), seed=0)
    train_step(state, batch, iteration)  # warm-up (allocations, one-off caches)
    start = time.perf_counter()
    for _ in range(steps):
        train_step(state, batch, iteration)
    return (time.perf_counter() - start) / steps


def time_batches(plates, scale: int, patch: int, batch: int, degradation, whole: bool, batches: int) -> float:
    """Seconds to make one training batch under ``degradation`` (the loop's sampler; batches
    1 .. ``batches`` of the stream, after batch 0 as a warm-up)."""
    sampler = PatchSampler(plates, scale, patch, seed=0, whole_plates=whole, degradation=degradation)
    sampler.batch(0, batch)
    start = time.perf_counter()
    for k in range(1, batches + 1):
        sampler.batch(k, batch)
    return (time.perf_counter() - start) / batches


def stages(method, total: int = 10) -> list[tuple[str, int, int]]:
    """(label, iteration, total): one stage, or two for a recipe whose discriminator starts
    later (its pre-training stage and its adversarial stage)."""
    start = discriminator_start(method.recipe(method.build()), total)
    if start == 0:
        return [("", 1, total)]
    return [(" (pre-training stage)", 1, total), (" (adversarial stage)", total, total)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default="all", help="'all', a group, or comma-separated names")
    ap.add_argument("--scale", type=int, default=8)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--patch", type=int, default=64, help="HR patch side")
    ap.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up step")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--whole-plates", action="store_true",
                    help="time a method that trains on whole plates (train_on_whole_plates: TBSRN) on whole 192x64 HR plates, as the loop feeds it")
    ap.add_argument("--degradations", default=None, metavar="NAME,...",
                    help="train.degradation presets: also time making the batch under each (see the module's doc)")
    ap.add_argument("--batches", type=int, default=20, help="timed batches per degradation (--degradations)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "step_time.md")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    degradations = [get_degradation(d.strip()) for d in args.degradations.split(",")] if args.degradations else []
    sample = make_synthetic(64, 0, 1, seed=0).train if degradations else []

    names = [n for n in registry.resolve(args.methods) if registry.get(n).cls.trainable]
    batch = random_batch(args.batch, (args.patch, args.patch), args.scale)
    plates = random_batch(args.batch, (64, 192), args.scale)
    load_before = os.getloadavg()
    rows, deg_rows = [], []
    for name in names:
        counts = {s: count_parameters(registry.get(name).create(s).build()) for s in (2, 4, 8)}
        method = registry.get(name).create(args.scale)
        for label, it, total in stages(method):
            whole = args.whole_plates and method.train_on_whole_plates
            seconds = time_steps(method, plates if whole else batch, args.steps, it, total)
            label += " (whole plates)" if whole else ""
            rows.append((name + label, counts, seconds))
            print(f"{name + label:24s} {seconds:7.2f} s/step  params x8 {counts[8]:,}", flush=True)
            for deg in degradations:
                made = time_batches(sample, args.scale, args.patch, args.batch, deg, whole, args.batches)
                deg_rows.append((name + label, deg.name, made, seconds))
                print(f"{'':24s} {deg.name:14s} {made * 1e3:8.1f} ms/batch  {made / (made + seconds):6.1%} of the step", flush=True)
    load_after = os.getloadavg()

    busy = max(load_before[0], load_after[0]) > args.threads + 0.5
    cmd = "python benchmarks/step_time.py " + " ".join(sys.argv[1:])
    lines = [
        "# Seconds per training step on CPU",
        "",
        f"- machine: {machine_facts(torch.device('cpu'))['cpu']}, {os.cpu_count()} logical CPUs; torch {torch.__version__}, {args.threads} threads, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset (busy-waiting)')}",
        f"- step: batch {args.batch} of {args.patch}x{args.patch} HR patches "
        f"({args.patch // args.scale}x{args.patch // args.scale} LR) at x{args.scale}"
        + (" (whole 192x64 plates for a method that trains on them)" if args.whole_plates else "")
        + "; forward, loss recipe, "
        f"backward, Adam (and the discriminator step when it is due): the engine's train_step; mean of {args.steps} steps after one warm-up",
        f"- command: `{cmd.strip()}`",
        f"- load average (1 min) before / after: {load_before[0]:.2f} / {load_after[0]:.2f}"
        + (
            f" -- **other processes were running** (load above {args.threads} threads): the times are pessimistic; "
            "rerun on a quiet machine"
            if busy
            else ""
        ),
        "",
        "| method | params x2 | params x4 | params x8 | s / step |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, counts, seconds in rows:
        lines.append(f"| {name} | {counts[2]:,} | {counts[4]:,} | {counts[8]:,} | {seconds:.2f} |")
    if deg_rows:
        lines += [
            "",
            f"Making the batch under each `train.degradation` (PatchSampler over 64 synthetic 192x64 plates: each sample's whole "
            f"plate degraded, then cut; mean of {args.batches} batches after one warm-up), in the training process as on the CPU "
            "(`loader_workers` 0); on CUDA the loop's DataLoader workers make batches beside the step.",
            "",
            "| method | train.degradation | ms / batch | s / step + batch | batch share |",
            "|---|---|---:|---:|---:|",
        ]
        for name, deg, made, seconds in deg_rows:
            lines.append(f"| {name} | `{deg}` | {made * 1e3:.1f} | {seconds + made:.3f} | {made / (made + seconds):.1%} |")
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
