"""The published `bench upscale` example: the study's best method on 12 CCPD test plates.

    python benchmarks/upscale_example.py --run-dir runs/ccpd-sample-x8-cpu --method mse-skip \\
        --data ../shared/data/ccpd-sample --out docs/examples/upscale

Picks 12 of the run's test plates deterministically (the ids in ``<run>/_hr/plates.csv``
sorted, then evenly spaced from the first to the last), hard-links (or copies) their CCPD
photos from ``--data`` into a temporary folder and runs, exactly as a user would::

    bench upscale ccpd-test-plates --ccpd --method mse-skip --from runs/<run> --out OUT --ocr ppocr,plate --force

(run inside the temporary folder, where ``runs/<run>`` links to ``--run-dir``),

which cuts each plate by its annotated corners at the run's HR size, makes its LR as
`bench run` does, and writes the SR images, ``reads.csv``, ``contact_sheet.png`` and
``index.html`` to ``OUT`` (and prints the throughput).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd


def pick(ids: list[str], k: int = 12) -> list[str]:
    ids = sorted(ids)
    return [ids[i] for i in sorted(set(np.linspace(0, len(ids) - 1, min(k, len(ids))).round().astype(int)))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run-dir", type=Path, required=True)
    ap.add_argument("--method", default="mse-skip")
    ap.add_argument("--data", type=Path, required=True, help="the CCPD folder the run used")
    ap.add_argument("--out", type=Path, default=Path("docs/examples/upscale"))
    ap.add_argument("--plates", type=int, default=12)
    ap.add_argument("--ocr", default="ppocr,plate")
    args = ap.parse_args(argv)
    ids = list(pd.read_csv(args.run_dir / "_hr" / "plates.csv", keep_default_na=False)["id"].astype(str))
    files = {p.name: p for p in args.data.rglob("*") if p.is_file()}
    chosen = pick(ids, args.plates)
    missing = [i for i in chosen if i not in files]
    if missing:
        sys.exit(f"error: {len(missing)} test plates of {args.run_dir} are not under --data {args.data} (e.g. {missing[0]})")
    repo = Path(__file__).resolve().parents[1]
    out = args.out.resolve()
    with tempfile.TemporaryDirectory() as tmp:
        # the command runs in the temporary folder with relative names, so reads.csv and the
        # page show what a user types (``ccpd-test-plates/<photo>``, ``runs/<run>``), not /tmp paths
        plates = Path(tmp) / "ccpd-test-plates"
        plates.mkdir()
        for name in chosen:
            try:
                os.link(files[name], plates / name)
            except OSError:
                shutil.copy2(files[name], plates / name)
        (Path(tmp) / "runs").mkdir()
        run = Path("runs") / Path(os.path.abspath(args.run_dir)).name
        (Path(tmp) / run).symlink_to(args.run_dir.resolve(), target_is_directory=True)
        cmd = [sys.executable, "-c", "from bench.cli import main; main()", "upscale", plates.name, "--ccpd", "--method", args.method,
               "--from", str(run), "--out", str(out), "--ocr", args.ocr, "--force"]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
        return subprocess.call(cmd, cwd=tmp, env=env)


if __name__ == "__main__":
    raise SystemExit(main())
