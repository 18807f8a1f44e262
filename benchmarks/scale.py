"""How `bench run`'s costs grow with the number of plates (issue 19's "Scale" section).

For each N it builds a data folder of about N plates from the CCPD sample by hard links
under distinct names (never copies; in ``--work``): ``ccpd`` form (the photos, with the
sample's own split lists repeated, so one car stays in one split) or ``folder`` form (the
sample's 1,500 plates cut once into 192x64 PNG crops, then linked N/1500 times with a
``labels.csv``; for N where decoding photos would take hours).  Then, each in a fresh run
directory, alone on the machine:

1. **cold**: ``bench run --methods bicubic,tiny --profile test --ocr none`` with an empty
   plate cache (the cache is built);
2. **warm**: the same command again into a new run directory (cache hit; tiny retrains);
3. ``bench report`` of the warm run.

It records wall time, the load time and cache state from the run's summary line, each
method's SR seconds and plates, and the peak RSS (VmHWM, polled every 0.25 s from /proc) of
the bench process and of each method's process; then fits log-log slopes of wall time and
peak RSS against N and writes a table, a plot and the machine into ``--out`` (markdown, with
the figure beside it).  OCR throughput is measured separately (``benchmarks/ocr_speed.py``).

    python benchmarks/scale.py --sizes 1500,4400,40000 --form ccpd
    python benchmarks/scale.py --sizes 1500,4400,40000,300000 --form folder --out benchmarks/scale.md
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO.parent / "shared" / "data" / "ccpd-sample"
RUN = [sys.executable, "-c", "from bench.cli import main; main()"]
POLL_S = 0.25


# -- data folders --------------------------------------------------------------------------
def copies_for(n: int, base: int) -> int:
    return max(1, round(n / base))


def ccpd_tree(sample: Path, root: Path, copies: int) -> int:
    """The sample's photos ``copies`` times under distinct names (the area field prefixed by
    the copy number), with the sample's split lists repeated; returns the photo count."""
    if (root / "splits" / "test.txt").is_file():
        return sum(len((root / "splits" / f"{s}.txt").read_text(encoding="utf-8").split()) for s in ("train", "val", "test"))
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "splits").mkdir(exist_ok=True)
    total = 0
    for split in ("train", "val", "test"):
        listed = (sample / "splits" / f"{split}.txt").read_text(encoding="utf-8").split()
        lines = []
        for c in range(copies):
            for rel in listed:
                name = Path(rel).name
                new = f"{c + 1}{name}"  # "0033-..." -> "10033-...": the area field stays a number
                if not (root / "images" / new).exists():
                    os.link(sample / rel, root / "images" / new)
                lines.append(f"images/{new}")
        (root / "splits" / f"{split}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        total += len(lines)
    return total


def crops(sample: Path, work: Path) -> tuple[Path, list[tuple[str, str, str]]]:
    """The sample's plates cut once (the project's CCPD loader, perspective crop 192x64) as PNGs."""
    folder = work / "crops"
    index = folder / "index.csv"
    if not index.is_file():
        from PIL import Image

        sys.path.insert(0, str(REPO))
        from lpsr.data.ccpd import load_ccpd

        splits = load_ccpd(sample)
        folder.mkdir(parents=True, exist_ok=True)
        rows = []
        for split in ("train", "val", "test"):
            for r in splits.split(split):
                name = Path(r.id).stem + ".png"
                Image.fromarray(r.hr).save(folder / name)
                rows.append((name, r.text, split))
        with open(index, "w", encoding="utf-8", newline="") as fh:
            csv.writer(fh).writerows(rows)
    with open(index, encoding="utf-8") as fh:
        return folder, [tuple(r) for r in csv.reader(fh)]


def folder_tree(sample: Path, work: Path, root: Path, copies: int) -> int:
    """``folder:`` data: the crops ``copies`` times under distinct names, with labels.csv."""
    if (root / "labels.csv").is_file():
        return sum(1 for _ in open(root / "labels.csv", encoding="utf-8")) - 1
    src, rows = crops(sample, work)
    (root / "plates").mkdir(parents=True, exist_ok=True)
    out = []
    for c in range(copies):
        for name, text, split in rows:
            new = f"c{c:04d}-{name}"
            os.link(src / name, root / "plates" / new)
            out.append((f"plates/{new}", text, split))
    tmp = root / "labels.csv.tmp"
    with open(tmp, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["filename", "text", "split"])
        w.writerows(out)
    tmp.rename(root / "labels.csv")
    return len(out)


# -- one measured command --------------------------------------------------------------------
def _children() -> dict[int, int]:
    """pid -> parent pid of every process."""
    out = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
                out[int(d.name)] = int(stat[stat.rindex(")") + 2:].split()[1])
            except (OSError, ValueError):
                pass
    return out


def _hwm_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def measured(args: list[str], cwd: Path, env: dict[str, str]) -> dict:
    """Run ``args``; wall seconds, output, and peak RSS (MB) of the process and of each of
    its descendants (polled: a process's last 0.25 s may be missed)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peaks: dict[int, int] = {}
    out_lines: list[str] = []
    import threading

    reader = threading.Thread(target=lambda: out_lines.extend(proc.stdout), daemon=True)
    reader.start()
    while proc.poll() is None:
        tree = _children()
        family, frontier = {proc.pid}, [proc.pid]
        while frontier:
            parent = frontier.pop()
            kids = [p for p, pp in tree.items() if pp == parent and p not in family]
            family.update(kids)
            frontier += kids
        for pid in family:
            if (kb := _hwm_kb(pid)) is not None:
                peaks[pid] = max(peaks.get(pid, 0), kb)
        time.sleep(POLL_S)
    reader.join()
    wall = time.perf_counter() - t0
    parent = peaks.pop(proc.pid, 0)
    return {"rc": proc.returncode, "wall_s": wall, "output": "".join(out_lines),
            "parent_mb": parent / 1024, "children_mb": sorted((kb / 1024 for kb in peaks.values()), reverse=True)}


LOAD = re.compile(r"loaded in ([0-9.]+) s \(plate cache (hit|built)\)")


def bench_pass(spec: str, run_dir: Path, cache: Path, env: dict[str, str]) -> dict:
    res = measured(RUN + ["run", "--methods", "bicubic,tiny", "--profile", "test", "--ocr", "none", "--data", spec,
                          "--run-dir", str(run_dir), "--leaderboard-dir", str(run_dir.parent / f"lb-{run_dir.name}"),
                          "--cache-dir", str(cache)], REPO, env)
    if res["rc"] != 0:
        raise SystemExit(f"bench run failed ({res['rc']}):\n{res['output'][-3000:]}")
    m = LOAD.search(res["output"])
    res["load_s"], res["cache"] = (float(m.group(1)), m.group(2)) if m else (None, None)
    res["methods"] = {}
    for name in ("bicubic", "tiny"):
        r = json.loads((run_dir / name / "result.json").read_text(encoding="utf-8"))
        res["methods"][name] = {"n": r["n_plates"], "sr_s": r["sr_seconds"]}
    return res


def fit_slope(ns: list[float], ys: list[float]) -> float:
    """Slope of log y against log n (least squares)."""
    return float(np.polyfit(np.log(ns), np.log(ys), 1)[0])


def machine() -> str:
    try:
        model = next(line.split(":", 1)[1].strip() for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()
                     if line.startswith("Model name:"))
    except (OSError, StopIteration):
        model = platform.processor() or "unknown CPU"
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{model}, {os.cpu_count()} logical CPUs, {mem:.0f} GiB"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1500,4400,40000", help="plate counts N (comma-separated)")
    ap.add_argument("--form", choices=["ccpd", "folder"], default="ccpd")
    ap.add_argument("--sample", type=Path, default=SAMPLE)
    ap.add_argument("--work", type=Path, default=Path("/tmp/lpsr-scale"), help="data, caches and runs (on the sample's file system)")
    ap.add_argument("--out", type=Path, default=None, help="markdown report (and its .png); default: print only")
    args = ap.parse_args()
    env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    load_before = os.getloadavg()[0]
    rows = []
    for n in [int(x) for x in args.sizes.split(",")]:
        root = args.work / f"{args.form}-{n}"
        copies = copies_for(n, 1500)
        plates = ccpd_tree(args.sample, root, copies) if args.form == "ccpd" else folder_tree(args.sample, args.work, root, copies)
        spec = f"{args.form}:{root}"
        cache = args.work / f"cache-{args.form}-{n}"
        runs = args.work / f"runs-{args.form}-{n}"
        subprocess.run(["rm", "-rf", str(cache), str(runs)], check=True)
        cold = bench_pass(spec, runs / "cold", cache, env)
        warm = bench_pass(spec, runs / "warm", cache, env)
        rep = measured(RUN + ["report", str(runs / "warm"), "--out", str(runs / "report")], REPO, env)
        row = {"N": plates, "cold": cold, "warm": warm, "report_s": rep["wall_s"]}
        rows.append(row)
        print(json.dumps({"N": plates, "cold_wall_s": round(cold["wall_s"], 1), "cold_load_s": cold["load_s"],
                          "warm_wall_s": round(warm["wall_s"], 1), "warm_load_s": warm["load_s"],
                          "parent_mb": round(warm["parent_mb"]), "children_mb": [round(c) for c in warm["children_mb"]],
                          "report_s": round(rep["wall_s"], 1)}), flush=True)
    if args.out:
        write_report(args.out, rows, args, load_before, os.getloadavg()[0])


def write_report(out: Path, rows: list[dict], args, load_before: float, load_after: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = [r["N"] for r in rows]
    lines = [
        "# Scale: bench run's costs against the number of plates",
        "",
        f"Made by `python benchmarks/scale.py --sizes {args.sizes} --form {args.form} --out {out}` on {machine()}; "
        f"load average (1 min) before / after: {load_before:.2f} / {load_after:.2f}. Each N: `bench run --methods bicubic,tiny "
        "--profile test --ocr none` cold (empty plate cache) and warm (cache hit) into fresh run directories, then "
        "`bench report` of the warm run. Peak RSS: VmHWM polled every 0.25 s. Data: the CCPD sample's "
        + ("photos" if args.form == "ccpd" else "plates cut once into 192x64 PNGs") + " hard-linked N/1500 times under distinct names.",
        "",
        "| N plates | cold wall s | cold load s | warm wall s | warm load s | cache cold / warm | bench RSS MB | method RSS MB (each) | SR plates/s bicubic / tiny | report s |",
        "|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        w = r["warm"]
        rates = " / ".join(f"{m['n'] / m['sr_s']:,.0f}" if m["sr_s"] else "-" for m in w["methods"].values())
        lines.append(f"| {r['N']:,} | {r['cold']['wall_s']:.1f} | {r['cold']['load_s']} | {w['wall_s']:.1f} | {w['load_s']} | "
                     f"{r['cold']['cache']} / {w['cache']} | "
                     f"{w['parent_mb']:.0f} | {', '.join(f'{c:.0f}' for c in w['children_mb'])} | {rates} | {r['report_s']:.1f} |")
    if len(rows) >= 2:
        slopes = {
            "cold wall time": fit_slope(ns, [r["cold"]["wall_s"] for r in rows]),
            "warm wall time": fit_slope(ns, [r["warm"]["wall_s"] for r in rows]),
            "bench peak RSS (warm)": fit_slope(ns, [r["warm"]["parent_mb"] for r in rows]),
            "largest method RSS (warm)": fit_slope(ns, [max(r["warm"]["children_mb"] or [1]) for r in rows]),
        }
        lines += ["", "Log-log slopes against N (1 = linear): " + "; ".join(f"{k} {v:.2f}" for k, v in slopes.items()) + "."]
        fig, ax = plt.subplots(1, 2, figsize=(10, 4))
        ax[0].loglog(ns, [r["cold"]["wall_s"] for r in rows], "o-", label="cold")
        ax[0].loglog(ns, [r["warm"]["wall_s"] for r in rows], "s-", label="warm")
        ax[0].set(xlabel="plates", ylabel="wall seconds", title="bench run wall time")
        ax[1].loglog(ns, [r["warm"]["parent_mb"] for r in rows], "o-", label="bench process")
        ax[1].loglog(ns, [max(r["warm"]["children_mb"] or [1]) for r in rows], "s-", label="largest method process")
        ax[1].set(xlabel="plates", ylabel="peak RSS MB", title="memory (warm run)")
        for a in ax:
            a.grid(True, which="both", alpha=0.3)
            a.legend()
        fig.tight_layout()
        fig.savefig(out.with_suffix(".png"), dpi=110)
        lines += ["", f"![wall time and peak RSS against N]({out.with_suffix('.png').name})"]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
