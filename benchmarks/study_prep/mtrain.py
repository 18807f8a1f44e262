"""Short training of one method with the engine's own step (``lpsr.train.step.train_step`` on a
state from ``lpsr.train.state.build_state``: the loop's optimiser, clipping, schedule and
discriminator), val PSNR on the whole val split every ``--val-every`` iterations, one JSON
line each.  Loss scaling is the method's own setting (TBSRN: ``--set loss_scale=100``)."""
import argparse, json, sys, time
import numpy as np, torch, yaml
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[2]))
from lpsr import registry
from lpsr.data.patches import PatchSampler
from lpsr.evaluate import mean_psnr
from lpsr.train.settings import TrainSettings
from lpsr.train.state import build_state
from lpsr.train.step import train_step

from common import load_splits


ap = argparse.ArgumentParser()
ap.add_argument("--method", required=True)
ap.add_argument("--set", action="append", default=[])
ap.add_argument("--iters", type=int, default=100)
ap.add_argument("--batch", type=int, default=16)
ap.add_argument("--lr", type=float, default=2e-4)
ap.add_argument("--betas", default="0.9,0.999")
ap.add_argument("--clip", type=float, default=0.0)
ap.add_argument("--whole", action="store_true")
ap.add_argument("--val-every", type=int, default=50)
ap.add_argument("--schedule", default="cosine")
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--out", required=True)
a = ap.parse_args()
torch.set_num_threads(a.threads)
splits = load_splits()
over = {}
for kv in a.set:
    k, v = kv.split("=", 1)
    over[k] = yaml.safe_load(v)
m = registry.get(a.method).create(8, over)
settings = TrainSettings(iterations=a.iters, batch_size=a.batch, lr=a.lr, betas=tuple(float(x) for x in a.betas.split(",")),
                         grad_clip=a.clip, schedule=a.schedule, threads=a.threads)
dev = torch.device("cpu")
torch.manual_seed(a.seed)
state, _ = build_state(m, m.build(), settings, dev, seed=a.seed)
sampler = PatchSampler(splits.train, 8, 64, seed=a.seed, whole_plates=a.whole)
val = splits.val
log = open(a.out, "w")
t0 = time.perf_counter(); run = {}
best = -1
for it in range(1, a.iters + 1):
    logs = train_step(state, sampler.batch(it - 1, a.batch), it)
    for k, v in logs.items(): run.setdefault(k, []).append(float(v))
    if it % a.val_every == 0 or it == a.iters:
        v = mean_psnr(m, state.model, val, dev)
        best = max(best, v)
        rec = {"it": it, "val_psnr": round(v, 3), "s": round(time.perf_counter() - t0, 1), **{k: round(float(np.mean(x)), 5) for k, x in run.items()}}
        run = {}
        log.write(json.dumps(rec) + "\n"); log.flush()
log.write(json.dumps({"done": True, "best_val_psnr": round(best, 3), "args": vars(a)}) + "\n")
