"""How fast and how right are the OCR recognisers on plate crops?  Rerunnable.

For each recogniser and batch size it reads the test plates (HR crops, and the floor: the
x8 bicubic LR upscaled back with bicubic) and reports plates/s, exact-match accuracy,
character accuracy and mean confidence; it writes the table to ``benchmarks/ocr_speed.md``
with the machine and the command.

    python benchmarks/ocr_speed.py                                 # CCPD sample test split
    python benchmarks/ocr_speed.py --data synthetic --plates 64     # no CCPD needed
    python benchmarks/ocr_speed.py --batch-sizes 1,6,16,32 --threads 2 --repeat 2
"""
from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lpsr.metrics.text import char_accuracy, exact_match  # noqa: E402
from lpsr.ocr.registry import get_recognizer  # noqa: E402

DEFAULT_CCPD = REPO.parent / "shared" / "data" / "ccpd-sample"


def load_plates(data: str, n: int | None):
    if data == "synthetic":
        from lpsr.data.synthetic import make_synthetic

        plates = make_synthetic(n_train=0, n_val=0, n_test=n or 64).test
        return plates, f"synthetic test plates (lpsr.data.synthetic, seed 0, {len(plates)} plates); ground truth = rendered text"
    from lpsr.data.ccpd import load_ccpd

    path = Path(data.split(":", 1)[1]) if data.startswith("ccpd:") else DEFAULT_CCPD
    limit = {"train": 0, "val": 0}
    if n:
        limit["test"] = n
    plates = load_ccpd(path, limit=limit).test
    return plates, (f"CCPD test split of {path.name} ({len(plates)} plates, perspective crop 192x64); "
                    "ground truth from the file names")


def bicubic_floor(hr: np.ndarray, scale: int) -> np.ndarray:
    """HR -> x``scale`` antialiased bicubic LR -> bicubic back to the HR size."""
    from lpsr.data.degrade import bicubic_downscale, modcrop

    hr = modcrop(hr, scale)
    lr = bicubic_downscale(hr, scale)
    return np.asarray(Image.fromarray(lr).resize((hr.shape[1], hr.shape[0]), Image.BICUBIC))


def score(reader, images, truths, repeat: int):
    """plates/s (wall clock), plates per CPU-second (all threads), exact, char acc, mean conf."""
    best, best_cpu = float("inf"), float("inf")
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        results = reader.read(images)
        best = min(best, time.perf_counter() - start)
        best_cpu = min(best_cpu, time.process_time() - start_cpu)
    exact = np.mean([exact_match(t, g) for (t, _), g in zip(results, truths)])
    chars = np.mean([char_accuracy(t, g) for (t, _), g in zip(results, truths)])
    conf = np.mean([c for _, c in results])
    return len(images) / best, len(images) / best_cpu, exact, chars, conf


def machine() -> str:
    import onnxruntime

    import torch

    from bench.environment import machine_facts

    cpu = machine_facts(torch.device("cpu"))["cpu"]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{cpu}, {os.cpu_count()} logical cores, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}, onnxruntime {onnxruntime.__version__}; "
            f"1-min load average at start {load:.1f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="ccpd", help="ccpd (the shared sample), ccpd:PATH, or synthetic")
    ap.add_argument("--plates", type=int, default=0, help="read only the first N test plates (0 = all)")
    ap.add_argument("--ocr", default="ppocr,plate", help="recognisers, comma-separated")
    ap.add_argument("--batch-sizes", default="1,6,16,32")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2, help="time each setting N times, keep the fastest")
    ap.add_argument("--scale", type=int, default=8, help="scale of the bicubic floor")
    ap.add_argument("--no-pad", action="store_true", help="also time without PaddleOCR's pad to width 320")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "ocr_speed.md"))
    args = ap.parse_args(argv)

    env = machine()
    plates, described = load_plates(args.data, args.plates or None)
    hr = [p.hr for p in plates]
    floor = [bicubic_floor(p.hr, args.scale) for p in plates]
    truths = [p.text for p in plates]
    rows = []
    pads = [True, False] if args.no_pad else [True]
    for name in [n.strip() for n in args.ocr.split(",") if n.strip()]:
        for pad in pads:
            sizes = [int(b) for b in args.batch_sizes.split(",")]
            for bs in sizes:
                reader = get_recognizer(name, threads=args.threads, batch_size=bs, pad_to_width=pad)
                speed, per_cpu, exact, chars, conf = score(reader, hr, truths, args.repeat)
                row = [name, "320" if pad else "crop", bs, f"{speed:.1f}", f"{per_cpu:.1f}",
                       f"{exact:.3f}", f"{chars:.3f}", f"{conf:.3f}"]
                if bs == sizes[-1]:  # accuracy does not depend on the batch size: score the floor once
                    _, _, f_exact, f_chars, f_conf = score(reader, floor, truths, 1)
                    row += [f"{f_exact:.3f}", f"{f_chars:.3f}", f"{f_conf:.3f}"]
                else:
                    row += ["", "", ""]
                rows.append(row)
                print(" | ".join(map(str, row)), flush=True)

    command = "python " + " ".join(shlex.quote(a) for a in ["benchmarks/ocr_speed.py", *(argv if argv is not None else sys.argv[1:])])
    head = ["recogniser", "pad to", "batch", "plates/s (HR)", "plates/CPU-s", "HR exact", "HR char acc", "HR mean conf",
            f"LR x{args.scale} bicubic exact", "char acc", "mean conf"]
    lines = [
        "# OCR recogniser speed and accuracy",
        "",
        f"Command: `{command}` (threads = {args.threads}, fastest of {args.repeat} runs).",
        f"Machine: {env}. Shared with other jobs, so wall-clock speeds are indicative; plates per",
        "CPU-second (process CPU time over all threads) is less sensitive to the sharing.",
        f"Data: {described}. Readings are compared after",
        "`lpsr.metrics.text.normalise_plate` (separator dot dropped, O->0 and I->1 since Chinese",
        "plates have no letters O or I). Speed counts everything `Recognizer.read` does (resize,",
        "normalise, batch, onnxruntime, CTC decoding). The LR columns are the floor: the HR crop",
        f"downscaled x{args.scale} (antialiased bicubic) and upscaled back with bicubic.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    lines += ["| " + " | ".join(map(str, r)) + " |" for r in rows]
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
