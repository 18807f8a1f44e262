"""Training throughput of every learned method against this machine's measured ceiling.

For each learned method (through the registry), at batch 16 of 64x64 HR patches at x8:

* FLOPs per training step (forward + loss recipe + backward, discriminator step included;
  ``torch.utils.flop_counter.FlopCounterMode``), and the share of them in convolutions;
* seconds per step (median over ``--steps`` after ``--warmup``) and achieved GFLOP/s for
  each speed lever: fp32 (plain), channels_last, bf16 autocast, bf16 + channels_last
  (and torch.compile with ``--compile``);
* the fraction of the machine's ceiling, measured here with the same threads: a dense
  GEMM and a 64->64 3x3 conv (forward + backward) on a batch of feature maps, fp32 and bf16;
* a torch.profiler top-ops table for every conv-heavy method below 50% of the conv ceiling;
* the engine's overhead: ``lpsr.train.loop.train`` against its own step
  (``lpsr.train.step.train_step``) in a tight loop on one batch (same model, Adam, steps);
* OpenMP's wait policy (default busy-waiting vs ``OMP_WAIT_POLICY=PASSIVE``), quiet and with
  a competing process, in subprocesses (the policy is read when OpenMP loads).

It writes ``BENCHMARKS.md`` (machine, torch, threads, load average before/after, command)
and includes ``benchmarks/train_throughput_notes.md`` (hand-written findings) and
``benchmarks/bf16_quality.md`` (made by ``--quality``) when present.

    python benchmarks/train_throughput.py                       # the full run (~10 min, quiet machine)
    python benchmarks/train_throughput.py --quick --out /tmp/b.md   # smoke test (~1 min)
    python benchmarks/train_throughput.py --quality fp32=RUN_A/mse,bf16=RUN_B/mse   # quality table

The step timed here is the engine's own ``lpsr.train.step.train_step`` on a state from
``lpsr.train.state.build_state`` (autocast, memory format, fused Adam, clipping, scaler, EMA,
schedule, GAN discriminator step); the overhead section times the whole loop against it.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from lpsr import registry  # noqa: E402
from lpsr.data.patches import PatchSampler  # noqa: E402
from lpsr.data.synthetic import make_synthetic  # noqa: E402
from lpsr.train.loop import train  # noqa: E402
from lpsr.train.precision import autocast, resolve_precision  # noqa: E402
from lpsr.train.settings import TrainSettings  # noqa: E402
from lpsr.train.state import build_state, discriminator_start  # noqa: E402
from lpsr.train.step import train_step  # noqa: E402

#: "before" is the engine as it was: fp32, contiguous, Adam's for-loop implementation; every
#: other lever uses the engine's fused Adam (lpsr.train.state.make_adam).
LEVERS = {
    "before": dict(precision="fp32", channels_last=False, fused=False),
    "fp32": dict(precision="fp32", channels_last=False, fused=True),
    "channels_last": dict(precision="fp32", channels_last=True, fused=True),
    "bf16": dict(precision="bf16", channels_last=False, fused=True),
    "bf16+channels_last": dict(precision="bf16", channels_last=True, fused=True),
}


# ----------------------------------------------------------------------------- utilities
def lscpu() -> dict[str, str]:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return {}
    info = {}
    for line in out.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            info[k.strip()] = v.strip()
    return info


def timed(fn: Callable[[], None], steps: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(steps):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def timed_for(fn: Callable[[], None], min_seconds: float, min_reps: int = 3) -> float:
    """Median seconds per call, repeating until ``min_seconds`` have passed."""
    fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_reps or time.perf_counter() - start < min_seconds:
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def count_flops(fn: Callable[[], None]) -> tuple[int, int]:
    """(total FLOPs, FLOPs in convolutions) of one call."""
    mode = FlopCounterMode(display=False)
    with mode:
        fn()
    counts = mode.get_flop_counts().get("Global", {})
    conv = sum(v for k, v in counts.items() if "convolution" in str(k))
    return mode.get_total_flops(), conv


# ----------------------------------------------------------------------------- ceiling
def ceiling(quick: bool) -> dict[str, float]:
    """GFLOP/s of a dense GEMM and of a 64->64 3x3 conv (fwd, fwd+bwd), fp32 and bf16."""
    secs = 0.05 if quick else 1.0
    n = 512 if quick else 2048
    out: dict[str, float] = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        out[f"gemm {name}"] = 2 * n**3 / timed_for(lambda: torch.mm(a, b), secs) / 1e9
    shape = (4, 64, 32, 32) if quick else (16, 64, 64, 64)
    for name in ("fp32", "bf16"):
        for fmt_name, fmt in (("contiguous", torch.contiguous_format), ("channels_last", torch.channels_last)):
            conv = torch.nn.Conv2d(64, 64, 3, padding=1, bias=False).to(memory_format=fmt)
            x = torch.randn(*shape).contiguous(memory_format=fmt).requires_grad_(True)

            def fwd():
                with torch.no_grad(), autocast(torch.device("cpu"), name):
                    conv(x)

            def fwd_bwd():
                with autocast(torch.device("cpu"), name):
                    y = conv(x)
                y.float().sum().backward()

            f_fwd, _ = count_flops(fwd)
            f_all, _ = count_flops(fwd_bwd)
            out[f"conv fwd {name} {fmt_name}"] = f_fwd / timed_for(fwd, secs) / 1e9
            out[f"conv fwd+bwd {name} {fmt_name}"] = f_all / timed_for(fwd_bwd, secs) / 1e9
    for name in ("fp32", "bf16"):
        out[f"conv ceiling {name}"] = max(v for k, v in out.items() if k.startswith(f"conv fwd+bwd {name}"))
    # Shapes of the networks that run all their convs on the 8x8 LR patch (x8): the same
    # kernel at MSRN's width (64 -> 64) and at the RDB's growth convs (PECL / MSE: C -> 32).
    # Informational: they say how much of a method's gap to the ceiling is its layer shapes.
    for label, c_in, c_out in (("64->64", 64, 64), ("128->32 (RDB growth conv)", 128, 32)):
        conv = torch.nn.Conv2d(c_in, c_out, 3, padding=1, bias=False).to(memory_format=torch.channels_last)
        x = torch.randn(4 if quick else 16, c_in, 8, 8).contiguous(memory_format=torch.channels_last).requires_grad_(True)

        def fwd_bwd_small():
            conv(x).sum().backward()

        flops, _ = count_flops(fwd_bwd_small)
        out[f"conv fwd+bwd fp32 channels_last {label} on 8x8 maps"] = flops / timed_for(fwd_bwd_small, secs) / 1e9
    return out


# ----------------------------------------------------------------------------- one method
class Bench:
    """One method's training step: the engine's own :func:`lpsr.train.step.train_step` on a
    state built as the loop builds it (:func:`lpsr.train.state.build_state`), on one fixed
    batch of the engine's sampler.  The ``before`` lever swaps in Adam's for-loop
    implementation (the engine as it was)."""

    def __init__(self, name: str, scale: int, batch_size: int, patch: int, lever: dict, iteration: int, total: int,
                 plates, compile_model: bool = False) -> None:
        self.method = registry.get(name).create(scale)
        torch.manual_seed(0)
        model = self.method.build()
        settings = TrainSettings(iterations=total, lr=1e-4, precision=lever["precision"], channels_last=lever["channels_last"],
                                 compile=compile_model)
        self.state, _ = build_state(self.method, model, settings, torch.device("cpu"), seed=0)
        if not lever.get("fused", True):
            self.state.opt_g = torch.optim.Adam(self.state.params_g, lr=1e-4)
            if self.state.disc is not None:
                self.state.opt_d = torch.optim.Adam(self.state.disc.parameters(), lr=1e-4)
        self.precision = self.state.precision
        sampler = PatchSampler(plates, scale, patch, seed=0, whole_plates=bool(getattr(self.method, "train_on_whole_plates", False)))
        self.batch = sampler.sample(batch_size)
        self.iteration = iteration

    def step(self) -> None:
        train_step(self.state, self.batch, self.iteration)


def stages(name: str, scale: int) -> list[tuple[str, int, int]]:
    """(label, iteration, total): one stage, or two for a recipe whose discriminator
    starts later (its pre-training stage and its adversarial stage)."""
    method = registry.get(name).create(scale)
    recipe = method.recipe(method.build())
    total = 10
    whole = " (whole plates)" if getattr(method, "train_on_whole_plates", False) else ""
    if recipe.discriminator() is None:
        return [(whole, 1, total)]
    start = discriminator_start(recipe, total)
    if start > 0:
        return [(whole + " (pre-training)", 1, total), (whole + " (adversarial)", total, total)]
    return [(whole + f" (iteration 1 of {total})", 1, total), (whole + f" (iteration {total} of {total})", total, total)]


def profile_table(bench: Bench, rows: int = 12) -> str:
    from torch.profiler import ProfilerActivity, profile

    bench.step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(2):
            bench.step()
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows, max_name_column_width=48)


# ----------------------------------------------------------------------------- overhead
def overhead(name: str, scale: int, batch_size: int, patch: int, steps: int, warmup: int, threads: int, plates, val) -> dict:
    """Median s/step of the engine's loop (lpsr.train.loop.train) and of its step alone."""
    method = registry.get(name).create(scale)

    def bare() -> float:
        """The engine's step alone, in a tight loop on one batch (no sampler, schedule reads, logging, checks)."""
        bench = Bench(name, scale, batch_size, patch, LEVERS["fp32"], 1, 10**6, plates)
        return statistics.median(timed(bench.step, steps, warmup))

    def engine() -> float:
        stamps: list[float] = []
        settings = TrainSettings(iterations=warmup + steps + 1, batch_size=batch_size, patch_size=patch, lr=1e-4,
                                 val_every=10**6, log_every=10, val_plates=1, threads=threads)
        torch.manual_seed(0)
        model = method.build()
        with tempfile.TemporaryDirectory() as tmp:
            train(method, model, plates, val, settings, Path(tmp), torch.device("cpu"),
                  progress=lambda it, total, logs: stamps.append(time.perf_counter()))
        per_step = [b - a for a, b in zip(stamps[warmup - 1 : -1], stamps[warmup:-1])]  # the last step validates
        return statistics.median(per_step)

    rounds = [(bare(), engine()) for _ in range(3)]  # interleaved against drift
    b, e = min(r[0] for r in rounds), min(r[1] for r in rounds)
    return {"bare": b, "engine": e, "ratio": e / b - 1.0, "steps": steps}


# ----------------------------------------------------------------------------- OpenMP policy
def child_step(args) -> None:
    """Subprocess mode: print the median s/step of one method (fp32, plain)."""
    torch.set_num_threads(args.threads)
    plates = make_synthetic(32, 2, 0, seed=0).train
    bench = Bench(args.child_step, args.scale, args.batch, args.patch, LEVERS["fp32"], 1, 10, plates)
    print(json.dumps({"s_per_step": statistics.median(timed(bench.step, args.steps, args.warmup))}))


def omp_policy(method: str, args) -> list[tuple[str, str, float | None]]:
    rows = []
    competitor_code = "import torch\ntorch.set_num_threads(1)\na=torch.randn(1024,1024)\nwhile True:\n    a@a\n"
    for contended in (False, True):
        for policy in ("unset (busy-wait)", "PASSIVE"):
            env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
            if policy == "PASSIVE":
                env["OMP_WAIT_POLICY"] = "PASSIVE"
            comp = subprocess.Popen([sys.executable, "-c", competitor_code], env={**env, "OMP_NUM_THREADS": "1"}) if contended else None
            try:
                cmd = [sys.executable, __file__, "--child-step", method, "--threads", str(args.threads), "--steps", "3",
                       "--warmup", "1", "--batch", str(args.batch), "--patch", str(args.patch), "--scale", str(args.scale)]
                proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
                val = json.loads(proc.stdout.strip().splitlines()[-1])["s_per_step"] if proc.returncode == 0 else None
            except (subprocess.TimeoutExpired, ValueError, IndexError):
                val = None
            finally:
                if comp is not None:
                    comp.kill()
                    comp.wait()
            rows.append(("1 competing busy process" if contended else "quiet", policy, val))
            print(f"  OMP {rows[-1]}", flush=True)
    return rows


# ----------------------------------------------------------------------------- quality table
def quality(spec: str, out: Path) -> None:
    """Table of val PSNR per iteration (and test PSNR) for run dirs ``label=DIR,...``."""
    runs = dict(item.split("=", 1) for item in spec.split(","))
    vals: dict[str, dict[int, float]] = {}
    tests: dict[str, str] = {}
    secs: dict[str, str] = {}
    for label, folder in runs.items():
        folder = Path(folder)
        log = [json.loads(line) for line in (folder / "train.jsonl").read_text().splitlines() if line.strip()]
        vals[label] = {r["iteration"]: r["val_psnr"] for r in log if "val_psnr" in r}
        try:
            res = json.loads((folder / "result.json").read_text())
            summ = res.get("summary", {})
            tests[label] = ", ".join(f"{k} {summ[k]['value']:.3f} ± {summ[k]['std']:.2f}" for k in ("psnr", "psnr_y", "ssim_y") if k in summ) or "?"
            secs[label] = f"{res.get('train', {}).get('train_seconds', '?')}"
        except (OSError, ValueError):
            tests[label], secs[label] = "?", "?"
    labels = list(runs)
    its = sorted(set().union(*[set(v) for v in vals.values()]))
    lines = ["| iteration | " + " | ".join(f"val PSNR {lab} (dB)" for lab in labels) + " | difference (dB) |",
             "|---:|" + "---:|" * (len(labels) + 1)]
    for it in its:
        cells = [vals[lab].get(it) for lab in labels]
        diff = f"{cells[-1] - cells[0]:+.3f}" if None not in cells and len(cells) > 1 else ""
        lines.append(f"| {it} | " + " | ".join(f"{c:.3f}" if c is not None else "" for c in cells) + f" | {diff} |")
    best = {lab: max(v.values()) for lab, v in vals.items()}
    lines += ["", "best val PSNR: " + ", ".join(f"{lab} {best[lab]:.3f} dB" for lab in labels) + "."]
    lines += [f"- test plates, {lab} (median ± std; PSNR/PSNR-Y dB, SSIM-Y): {tests[lab]}" for lab in labels]
    lines += ["- train seconds (under load, not a timing): " + ", ".join(f"{lab} {secs[lab]}" for lab in labels)]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    print(f"wrote {out}")


# ----------------------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default="all", help="'all', a group, or comma-separated names (learned ones are kept)")
    ap.add_argument("--scale", type=int, default=8)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--patch", type=int, default=64, help="HR patch side")
    ap.add_argument("--steps", type=int, default=4, help="timed steps per lever (median)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--levers", default=",".join(LEVERS), help=f"comma-separated subset of {', '.join(LEVERS)}")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile (slow to compile)")
    ap.add_argument("--overhead-max-step", type=float, default=1.0,
                    help="measure the engine overhead for methods whose fp32 step is below this many seconds")
    ap.add_argument("--omp-method", default="msrn", help="method timed under both OpenMP wait policies ('' skips)")
    ap.add_argument("--quick", action="store_true", help="tiny sizes and 1 step: checks that the script works")
    ap.add_argument("--out", type=Path, default=None, help="default BENCHMARKS.md (quick: /tmp/BENCHMARKS-quick.md)")
    ap.add_argument("--quality", default=None, help="label=RUN_DIR/METHOD,... : write benchmarks/bf16_quality.md and exit")
    ap.add_argument("--child-step", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_step:
        child_step(args)
        return
    if args.quality:
        quality(args.quality, ROOT / "benchmarks" / "bf16_quality.md")
        return
    if args.quick:
        args.steps, args.warmup, args.batch = 1, 1, 4
        args.omp_method = ""
    out_path = args.out or (Path("/tmp/BENCHMARKS-quick.md") if args.quick else ROOT / "BENCHMARKS.md")
    torch.set_num_threads(args.threads)
    levers = [lv.strip() for lv in args.levers.split(",") if lv.strip()]
    unknown = sorted(set(levers) - set(LEVERS))
    if unknown:
        ap.error(f"--levers: unknown {', '.join(unknown)}; use {', '.join(LEVERS)}")
    names = [n for n in registry.resolve(args.methods) if registry.get(n).cls.trainable]

    t_start = time.time()
    load_before = os.getloadavg()
    cpu = lscpu()
    flags = set(cpu.get("Flags", "").split())
    print(f"ceiling ({args.threads} threads) ...", flush=True)
    ceil = ceiling(args.quick)
    for k, v in ceil.items():
        print(f"  {k:36s} {v:8.1f} GFLOP/s", flush=True)
    splits = make_synthetic(32, 2, 0, seed=0)
    plates, val = splits.train, splits.val

    rows = []  # (label, name, lever, flops, conv_flops, s/step)
    profiles: dict[str, str] = {}
    for name in names:
        for label, iteration, total in stages(name, args.scale):
            flops, conv = count_flops(Bench(name, args.scale, args.batch, args.patch, LEVERS["fp32"], iteration, total, plates).step)
            lever_list = list(levers) + (["compile (fp32)"] if args.compile else [])
            for lever in lever_list:
                spec = LEVERS.get(lever, LEVERS["fp32"])
                bench = Bench(name, args.scale, args.batch, args.patch, spec, iteration, total, plates, compile_model=lever.startswith("compile"))
                base = next((r[5] for r in rows if r[0] == name + label and r[5]), None)  # the first lever's time
                bf16_alone = next((r[5] for r in rows if r[0] == name + label and r[2] == "bf16" and r[5]), None)
                if lever == "bf16+channels_last" and base and bf16_alone and bf16_alone > 3 * base:
                    print(f"{name + label:28s} {lever:20s} skipped: bf16 alone is {bf16_alone / base:.0f}x slower", flush=True)
                    rows.append((name + label, name, lever, flops, conv, None, "skipped"))
                    continue
                try:
                    t0 = time.perf_counter()
                    bench.step()  # first step (compiles when compiling)
                    first = time.perf_counter() - t0
                    if base is not None and not lever.startswith("compile") and first > 3 * base:
                        # far slower than the first lever (e.g. bf16 without fast kernels): its first step says enough
                        sec = first
                    else:
                        sec = statistics.median(timed(bench.step, args.steps, max(args.warmup - 1, 0)))
                except Exception as exc:  # compile can fail on a machine without a compiler
                    print(f"{name + label:28s} {lever:20s} failed: {str(exc).splitlines()[0][:120]}", flush=True)
                    rows.append((name + label, name, lever, flops, conv, None, bench.precision))
                    continue
                rows.append((name + label, name, lever, flops, conv, sec, bench.precision))
                extra = f" (first step {first:.1f} s)" if lever.startswith("compile") else ""
                print(f"{name + label:28s} {lever:20s} {sec:8.3f} s/step  {flops / sec / 1e9:7.1f} GFLOP/s{extra}", flush=True)
            # profiler table for conv-heavy methods that stay below half the conv ceiling
            mine = [r for r in rows if r[0] == name + label and r[5]]
            best = min(mine, key=lambda r: r[5]) if mine else None
            if best and conv > 0.5 * flops:
                frac = flops / best[5] / 1e9 / ceil[f"conv ceiling {best[6] if best[6] in ('fp32', 'bf16') else 'fp32'}"]
                if frac < 0.5:
                    spec = LEVERS.get(best[2], LEVERS["fp32"])
                    b = Bench(name, args.scale, args.batch, args.patch, spec, iteration, total, plates)
                    profiles[f"{name + label} ({best[2]}, {frac:.0%} of the conv ceiling)"] = profile_table(b)

    over = {}
    base_time: dict[str, float] = {}
    for r in rows:  # speed-ups are against the first lever measured (default: "before")
        if r[5] and r[0] not in base_time:
            base_time[r[0]] = r[5]
    method_time: dict[str, float] = {}
    for r in rows:  # a method's slowest stage decides whether its overhead is measured
        if r[2] == "fp32" and r[5]:
            method_time[r[1]] = max(method_time.get(r[1], 0.0), r[5])
    for name in names:
        if method_time.get(name) is not None and method_time[name] < args.overhead_max_step:
            # ~4 s of steps per measurement (at least 16): a 5 ms step needs hundreds to be stable
            steps = 3 if args.quick else int(min(400, max(16, 4.0 / method_time[name])))
            over[name] = overhead(name, args.scale, args.batch, args.patch, steps, 2, args.threads, plates, val)
            print(f"overhead {name:20s} bare {over[name]['bare']:.4f}  engine {over[name]['engine']:.4f}  ratio {over[name]['ratio']:+.1%}", flush=True)

    omp_rows = omp_policy(args.omp_method, args) if args.omp_method else []
    load_after = os.getloadavg()
    minutes = (time.time() - t_start) / 60

    # --------------------------------------------------------------------- report
    cmd = "python benchmarks/train_throughput.py " + " ".join(sys.argv[1:])
    busy = max(load_before[0], load_after[0]) > args.threads + 0.5
    bf16_native = resolve_precision("bf16", torch.device("cpu"))[0] == "bf16"
    L = [
        "# Training throughput against the machine's ceiling",
        "",
        f"- command: `{cmd.strip()}` ({minutes:.1f} min)",
        f"- machine: {cpu.get('Model name', platform.processor() or 'unknown CPU')}, {os.cpu_count()} logical CPUs"
        f" (lscpu: {cpu.get('Core(s) per socket', '?')} cores/socket, {cpu.get('Thread(s) per core', '?')} threads/core); "
        f"bf16 ISA: avx512_bf16 {'yes' if 'avx512_bf16' in flags else 'no'}, amx_bf16 {'yes' if 'amx_bf16' in flags else 'no'}"
        f" -> torch native bf16 {'yes' if bf16_native else 'no (bf16 rows fall back to fp32)'}",
        f"- torch {torch.__version__}, {args.threads} threads, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset (busy-waiting)')}",
        f"- step: batch {args.batch} of {args.patch}x{args.patch} HR patches at x{args.scale} (the engine's sampler on synthetic 192x64 plates; "
        "whole plates for methods that train on them); "
        f"forward, loss recipe, backward, Adam, discriminator step when due; median of {args.steps} steps after {args.warmup} warm-up",
        f"- load average (1 min) before / after: {load_before[0]:.2f} / {load_after[0]:.2f}"
        + (" -- **other processes were running**: the times are pessimistic; rerun on a quiet machine" if busy else " (quiet)"),
        "",
        "## Ceiling (same threads)",
        "",
        "| kernel | GFLOP/s |",
        "|---|---:|",
    ]
    L += [f"| {k} | {v:.1f} |" for k, v in ceil.items()]
    L += [
        "",
        "`conv ceiling` = the best fwd+bwd 64->64 3x3 conv GFLOP/s of that precision; `% conv` compares each "
        "method's achieved GFLOP/s with the conv ceiling of the precision it ran in.",
        "",
        "## Per method and lever",
        "",
        "Levers: `before` = the engine as it was (fp32, contiguous, for-loop Adam); `fp32` = fused Adam "
        "(now the engine's optimiser); then channels_last, bf16 autocast and both, each with fused Adam. "
        "A lever more than 3x slower than `before` is timed on its first step only.",
        "",
        "| method | lever | GFLOP / step | conv share | s / step | GFLOP/s | % conv ceiling | speed-up vs before |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, name, lever, flops, conv, sec, prec in rows:
        if sec is None:
            L.append(f"| {label} | {lever} | {flops / 1e9:.2f} | {conv / max(flops, 1):.0%} | {prec if prec == 'skipped' else 'failed'} | | | |")
            continue
        gf = flops / sec / 1e9
        c = ceil[f"conv ceiling {prec if prec in ('fp32', 'bf16') else 'fp32'}"]
        base = base_time.get(label)
        L.append(f"| {label} | {lever}{'' if prec == LEVERS.get(lever, LEVERS['fp32'])['precision'] else f' (ran {prec})'} | "
                 f"{flops / 1e9:.2f} | {conv / max(flops, 1):.0%} | {sec:.3f} | {gf:.1f} | {gf / c:.0%} | "
                 f"{base / sec if base else float('nan'):.2f}x |")
    # lever summary
    L += ["", "### Levers (median speed-up over methods)", ""]
    for lever in levers + (["compile (fp32)"] if args.compile else []):
        ups = [base_time[r[0]] / r[5] for r in rows if r[2] == lever and r[5] and base_time.get(r[0])]
        if ups:
            L.append(f"- `{lever}`: {statistics.median(ups):.2f}x (range {min(ups):.2f}-{max(ups):.2f}x over {len(ups)} rows)")
    if profiles:
        L += ["", "## Where the time goes (conv-heavy methods below 50% of the conv ceiling)", "",
              "torch.profiler, 2 steps in the method's fastest lever, top ops by self CPU time.", ""]
        for title, table in profiles.items():
            L += [f"### {title}", "", "```", table.rstrip(), "```", ""]
    if over:
        L += ["", "## Engine overhead: the training loop against its own step alone", "",
              "Same model, Adam, fp32; `bare` is the engine's train_step in a tight loop on one batch, the loop adds "
              "the patch sampler, logging and checks. "
              "Median s/step over ~4 s of steps (at least 16), best of 3 interleaved rounds; target < 5%.", "",
              "| method | bare s/step | engine s/step | overhead |", "|---|---:|---:|---:|"]
        L += [f"| {n} | {o['bare']:.4f} | {o['engine']:.4f} | {o['ratio']:+.1%} |" for n, o in over.items()]
    if omp_rows:
        L += ["", f"## OpenMP wait policy ({args.omp_method}, fp32, {args.threads} threads, subprocesses)", "",
              "| condition | OMP_WAIT_POLICY | s / step |", "|---|---|---:|"]
        L += [f"| {c} | {p} | {v:.3f} |" if v is not None else f"| {c} | {p} | failed |" for c, p, v in omp_rows]
        L += ["", "The competing process is one busy single-thread GEMM loop.  The policy is read when OpenMP loads "
              "(at `import torch`), so it is an environment variable, not a training setting: "
              "`OMP_WAIT_POLICY=PASSIVE bench run ...` on a shared machine."]
    notes_md = ROOT / "benchmarks" / "train_throughput_notes.md"
    if notes_md.exists():
        L += ["", notes_md.read_text(encoding="utf-8").rstrip()]
    quality_md = ROOT / "benchmarks" / "bf16_quality.md"
    if quality_md.exists():
        L += ["", "## bf16 vs fp32: validation PSNR at equal iterations", "", quality_md.read_text(encoding="utf-8").rstrip()]
    out_path.write_text("\n".join(L) + "\n", encoding="utf-8")
    print(f"wrote {out_path} in {minutes:.1f} min")


if __name__ == "__main__":
    main()
