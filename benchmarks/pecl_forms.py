"""Which PECL contrastive form to use by default: a short CPU training per form.

Trains the PECL network with each contrastive form (``paper-eq17``, ``pull``,
``hadsell``) under each loss-weight setting (``learnable``, the paper's, and fixed
``PIXEL:CON`` pairs), everything else at the ``pecl`` defaults, and with MSE alone,
through the harness's own training loop; compares validation PSNR and records the loss
terms and weights over training.  Writes ``benchmarks/pecl_forms.md``; raw logs go under
``--work``, one folder per run keyed by its settings, so a rerun reuses finished runs.

    python benchmarks/pecl_forms.py                        # CCPD sample if present, else synthetic
    python benchmarks/pecl_forms.py --data synthetic --iterations 100
"""
from __future__ import annotations

import argparse
import hashlib
import json
import platform
import shutil
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lpsr import registry  # noqa: E402
from lpsr.train.loop import train  # noqa: E402
from lpsr.train.settings import TrainSettings  # noqa: E402

CCPD_SAMPLE = ROOT.parent / "shared" / "data" / "ccpd-sample"
FORMS = ("paper-eq17", "pull", "hadsell")


def load_plates(spec: str, n_train: int, n_val: int):
    if spec.startswith("ccpd:"):
        from lpsr.data.ccpd import load_ccpd

        splits = load_ccpd(spec.removeprefix("ccpd:"), limit={"train": n_train, "val": n_val, "test": 0})
    else:
        from lpsr.data.synthetic import make_synthetic

        splits = make_synthetic(n_train, n_val, 0, seed=0)
    return splits.train, splits.val


def read_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=f"ccpd:{CCPD_SAMPLE}" if CCPD_SAMPLE.is_dir() else "synthetic")
    ap.add_argument("--scale", type=int, default=8)
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--train-plates", type=int, default=400)
    ap.add_argument("--val-plates", type=int, default=48)
    ap.add_argument("--siamese-init", default="auto")
    ap.add_argument("--runs", default="mse," + ",".join(FORMS), help="comma list of mse and contrastive forms")
    ap.add_argument("--weights", default="learnable,0.999:0.001", help="comma list: learnable and/or PIXEL:CON fixed pairs")
    ap.add_argument("--work", type=Path, default=Path("/tmp/pecl_forms"))
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "pecl_forms.md")
    args = ap.parse_args()

    torch.set_num_threads(1)
    train_plates, val_plates = load_plates(args.data, args.train_plates, args.val_plates)
    settings = TrainSettings(iterations=args.iterations, batch_size=args.batch_size, lr=args.lr,
                             val_every=max(1, args.iterations // 6), val_plates=args.val_plates,
                             log_every=max(1, args.iterations // 12), threads=1)
    plan: list[tuple[str, dict]] = []
    for run in args.runs.split(","):
        if run == "mse":
            plan.append(("mse", {}))
            continue
        for w in args.weights.split(","):
            weights = "learnable" if w == "learnable" else dict(zip(("pixel", "con"), map(float, w.split(":"))))
            plan.append((f"{run} / {w}", {"contrastive": run, "siamese_init": args.siamese_init, "weights": weights}))
    rows, trajectories = [], {}
    for label, overrides in plan:
        method = registry.get("mse" if label == "mse" else "pecl").create(args.scale, overrides)
        model = method.build()
        key = json.dumps([label, overrides, args.data, args.scale, settings.to_dict(), args.train_plates], sort_keys=True)
        out = args.work / f"{label.replace(' / ', '_').replace(':', '-')}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"
        log_path = out / "train.jsonl"
        finished = log_path.exists() and any(r.get("iteration") == args.iterations and "val_psnr" in r for r in read_log(log_path))
        if not finished:
            shutil.rmtree(out, ignore_errors=True)
        t0 = time.perf_counter()
        result = train(method, model, train_plates, val_plates, settings, out, torch.device("cpu"), seed=0)
        seconds = result.seconds
        log = read_log(log_path)
        vals = [r["val_psnr"] for r in log if "val_psnr" in r]
        facts = result.recipe
        rows.append((label, result.best_val_psnr, vals[-1], result.best_iteration, seconds, facts))
        trajectories[label] = [(r["iteration"], r.get("w_pixel"), r.get("w_con"), r.get("l_pixel"), r.get("l_con"), r.get("D"))
                               for r in log if "loss" in r]
        reused = " (reused)" if finished else ""
        print(f"{label}: best val PSNR {result.best_val_psnr:.2f} dB at {result.best_iteration}, last {vals[-1]:.2f}, "
              f"{seconds:.0f}s{reused} [{time.perf_counter() - t0:.0f}s now]", flush=True)

    lines = [
        "# PECL contrastive forms: short CPU training",
        "",
        f"Command: `python benchmarks/pecl_forms.py {' '.join(sys.argv[1:])}`".rstrip(),
        "",
        f"Machine: {platform.machine()}, torch {torch.__version__}, 1 thread (CPU shared with other jobs).",
        f"Data: `{args.data}` ({len(train_plates)} train plates, {len(val_plates)} val plates, whole-plate validation), x{args.scale}.",
        f"Training: the harness loop (`lpsr.train.loop.train`), {args.iterations} iterations, batch {args.batch_size}, "
        f"64x64 HR patches, Adam lr {args.lr:g}, cosine; seed 0.  PECL settings: the `pecl` defaults except the form "
        "and the loss weights (`learnable` = the paper's; `A:B` = fixed w_pixel = A, w_con = B).",
        "",
        "| form / weights | best val PSNR (dB) | last val PSNR (dB) | best at iter | train seconds | Siamese | init |",
        "|---|---|---|---|---|---|---|",
    ]
    for run, best, last, it, sec, facts in rows:
        lines.append(f"| {run} | {best:.2f} | {last:.2f} | {it} | {sec:.0f} | {facts.get('siamese', '-')} | {facts.get('siamese_init', '-')} |")
    lines += ["", "## Loss terms and learned weights over training (mean over each log interval)", ""]
    for run, traj in trajectories.items():
        if run == "mse":
            continue
        lines += [f"### {run}", "", "| iter | w_pixel | w_con | l_pixel | l_con | D |", "|---|---|---|---|---|---|"]
        for it, wp, wc, lp, lc, d in traj:
            lines.append(f"| {it} | {wp:.4f} | {wc:.4f} | {lp:.5f} | {lc:.4g} | {d:.4g} |")
        lines.append("")
    if rows:
        init = next((f.get("siamese_init_reason") for _, _, _, _, _, f in rows if "siamese_init_reason" in f), None)
        if init:
            lines += [f"Siamese initialisation: {init}.", ""]
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
