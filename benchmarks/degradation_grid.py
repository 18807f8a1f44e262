"""Every degradation preset on the same real CCPD plates, and what each costs.  Rerunnable.

Cuts 6 test plates from the CCPD sample with the project's own loader (``lpsr.data.ccpd``,
perspective crop 192x64), applies every built-in preset (``configs/degradations/``) with
each plate's own key (its id, as a test run does), and writes

- ``docs/figures/degradations.png``: rows = plates, columns = the HR, then each preset's
  x8 LR enlarged to the HR size with nearest neighbour (so its pixels show as they are);
- the ms per 192x64 plate of each preset (median of ``--calls`` calls, each with a
  different key) into ``docs/degradations.md`` between its ``cost`` markers.

    python benchmarks/degradation_grid.py
    python benchmarks/degradation_grid.py --data /path/to/ccpd --calls 200
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lpsr.data.ccpd import load_ccpd  # noqa: E402
from lpsr.degradations import get_degradation, known_degradations  # noqa: E402
from lpsr.io import atomic_path  # noqa: E402

DEFAULT_CCPD = Path("/work/shared/data/ccpd-sample")
FIGURE = REPO / "docs" / "figures" / "degradations.png"
DOC = REPO / "docs" / "degradations.md"
BEGIN, END = "<!-- cost:begin (benchmarks/degradation_grid.py) -->", "<!-- cost:end -->"
SCALE = 8
#: the figure's column order: today's LR first, then by kind
ORDER = ["bicubic", "camera-mild", "camera", "camera-hard", "motion", "camera-random", "realesrgan"]


def presets() -> list[str]:
    known = known_degradations()
    return [n for n in ORDER if n in known] + [n for n in known if n not in ORDER]


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or "unknown CPU"


def grid(plates, names: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    from matplotlib.font_manager import FontProperties

    from lpsr.data.synthetic import FONT_PATH

    cjk = FontProperties(fname=str(FONT_PATH), size=9) if Path(FONT_PATH).is_file() else None
    cols = ["HR 192x64"] + [f"{n}\n(x{SCALE} LR, nearest)" for n in names]
    fig, axes = plt.subplots(len(plates), len(cols), figsize=(1.95 * len(cols), 0.78 * len(plates) + 0.5),
                             squeeze=False, gridspec_kw={"wspace": 0.04, "hspace": 0.1})
    for r, p in enumerate(plates):
        h, w = p.hr.shape[:2]
        images = [p.hr] + [np.asarray(Image.fromarray(get_degradation(n).apply(p.hr, SCALE, key=p.id))
                                      .resize((w, h), Image.NEAREST)) for n in names]
        for c, img in enumerate(images):
            ax = axes[r][c]
            ax.imshow(img, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(cols[c], fontsize=9)
        axes[r][0].set_ylabel(p.text, fontproperties=cjk, rotation=0, ha="right", va="center", labelpad=4)
    fig.suptitle(f"Every degradation preset on {len(plates)} CCPD test plates (each plate's LR keyed by its id)",
                 fontsize=10, y=1.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)


def cost(hr: np.ndarray, names: list[str], calls: int) -> dict[str, float]:
    """Median ms per call of each preset on ``hr`` (a new key per call, as per plate)."""
    out = {}
    for n in names:
        deg = get_degradation(n)
        deg.apply(hr, SCALE, key="warm-up")  # imports (basicsr) and caches outside the timing
        times = []
        for i in range(calls):
            t = time.perf_counter()
            deg.apply(hr, SCALE, key=f"timing-{i}")
            times.append(time.perf_counter() - t)
        out[n] = 1000 * statistics.median(times)
    return out


def cost_table(ms: dict[str, float], calls: int) -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    rows = [f"| `{n}` | {v:.2f} |" for n, v in ms.items()]
    return "\n".join([
        f"Measured by `python benchmarks/degradation_grid.py` on one 192x64 CCPD plate, median of {calls} calls "
        f"(a different key each), one process, on a {cpu_model()} ({os.cpu_count()} cores) **under load** "
        f"(other jobs running; 1-min load average {load:.1f} at the end), torch threads {_threads()}. "
        "Read the numbers as orders of magnitude.",
        "",
        "| preset | ms per plate |",
        "|---|---|",
        *rows,
    ])


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def write_between_markers(doc: Path, text: str) -> bool:
    if not doc.is_file():
        return False
    src = doc.read_text()
    if BEGIN not in src or END not in src:
        return False
    head, rest = src.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    with atomic_path(doc) as tmp:
        Path(tmp).write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")
    return True


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_CCPD, help="a CCPD folder (default: the shared sample)")
    ap.add_argument("--plates", type=int, default=6)
    ap.add_argument("--calls", type=int, default=50, help="timed calls per preset (the median is reported)")
    ap.add_argument("--figure", type=Path, default=FIGURE)
    ap.add_argument("--doc", type=Path, default=DOC)
    args = ap.parse_args(argv)
    if args.calls < 1 or args.plates < 1:
        ap.error("--calls and --plates must be >= 1")

    plates = load_ccpd(args.data, limit={"train": 0, "val": 0, "test": args.plates}).test
    names = presets()
    grid(plates, names, args.figure)
    print(f"wrote {args.figure}")
    table = cost_table(cost(plates[0].hr, names, args.calls), args.calls)
    if write_between_markers(args.doc, table):
        print(f"wrote the cost table into {args.doc}")
    print(table)


if __name__ == "__main__":
    main()
