"""Time and memory of the leaderboard's statistics per method at 1k / 10k / 100k test plates.

    python benchmarks/stats_speed.py --out benchmarks/stats_speed.md

Per-plate values are drawn at random (PSNR-like normals, 0/1 exact reads at 80%): the cost
does not depend on the values. Each row runs in a fresh process (its peak RSS is that
statistic's alone): ``lpsr.metrics.stats.bootstrap_ci`` for the median and for a rate (2,000
resamples, the leaderboard's), the Wilcoxon and McNemar paired tests, and, for comparison,
``scipy.stats.bootstrap`` (the interval ``bootstrap_ci`` reproduces to the last bit).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CASES = ["bootstrap_ci median", "bootstrap_ci rate", "wilcoxon_p", "mcnemar_p", "scipy.stats.bootstrap median"]

CHILD = """
import json, resource, sys, time
import numpy as np
from lpsr.metrics.stats import N_RESAMPLES, SEED, bootstrap_ci, mcnemar_p, wilcoxon_p
import scipy.stats  # imported before the clock starts, as in a report that already ran one test
case, n = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(0)
a, b = rng.normal(25, 2, n), rng.normal(25.1, 2, n)
ra, rb = (rng.random(n) < 0.8).astype(float), (rng.random(n) < 0.82).astype(float)
def scipy_median():
    from scipy import stats
    return stats.bootstrap((a,), lambda x, axis: np.median(x, axis=axis), n_resamples=N_RESAMPLES, method="percentile",
                           vectorized=True, rng=np.random.default_rng(SEED)).confidence_interval
run = {"bootstrap_ci median": lambda: bootstrap_ci(a, np.median), "bootstrap_ci rate": lambda: bootstrap_ci(ra, np.mean),
       "wilcoxon_p": lambda: wilcoxon_p(a, b), "mcnemar_p": lambda: mcnemar_p(ra, rb),
       "scipy.stats.bootstrap median": scipy_median}[case]
t = time.perf_counter(); run(); seconds = time.perf_counter() - t
print(json.dumps({"seconds": seconds, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def measure(case: str, n: int) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", CHILD, case, str(n)], capture_output=True, text=True, env=env, timeout=3600)
    if done.returncode:
        raise SystemExit(f"error: {case} at n={n} failed: {done.stderr[-500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1000,10000,100000", help="test plates per method (comma-separated)")
    ap.add_argument("--out", type=Path, help="markdown report [print it]")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    load_before = os.getloadavg()[0]
    rows = [(case, n, measure(case, n)) for case in CASES for n in sizes]
    load_after = os.getloadavg()[0]
    import numpy
    import scipy

    lines = ["# Leaderboard statistics per method: time and memory", "",
             f"- command: `python benchmarks/stats_speed.py --sizes {args.sizes}`",
             f"- machine: {cpu_name()}, {os.cpu_count()} logical CPUs; numpy {numpy.__version__}, scipy {scipy.__version__}",
             f"- load average (1 min) before / after: {load_before:.2f} / {load_after:.2f}",
             "- each cell: one call in a fresh process (wall seconds; peak RSS of that process, ~100 MB of it the imports);"
             " 2,000 bootstrap resamples", "",
             "| statistic | " + " | ".join(f"n = {n:,}" for n in sizes) + " |", "|---|" + "---:|" * len(sizes)]
    for case in CASES:
        cells = [next(r for c, m, r in rows if c == case and m == n) for n in sizes]
        lines.append(f"| {case} | " + " | ".join(f"{r['seconds']:.2f} s, {r['rss_mb']:,.0f} MB" for r in cells) + " |")
    text = "\n".join(lines) + "\n"
    if args.out:
        tmp = args.out.with_name(args.out.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(args.out)
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
