"""D's short training measurements (own loop: whole plates, betas, clip, loss scale)."""
import argparse, json, sys, time
import numpy as np, torch, yaml
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[2]))
from lpsr import registry
from lpsr.data.degrade import make_pair
from lpsr.data.patches import PatchSampler, to_tensor
from lpsr.evaluate import mean_psnr
from lpsr.method import Batch

from common import load_splits


ap = argparse.ArgumentParser()
ap.add_argument("--method", required=True)
ap.add_argument("--set", action="append", default=[])
ap.add_argument("--iters", type=int, default=100)
ap.add_argument("--batch", type=int, default=16)
ap.add_argument("--lr", type=float, default=2e-4)
ap.add_argument("--betas", default="0.9,0.999")
ap.add_argument("--clip", type=float, default=0.0)
ap.add_argument("--loss-scale", type=float, default=1.0)
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
torch.manual_seed(a.seed)
model = m.build()
recipe = m.recipe(model)
params = list(model.parameters()) + recipe.generator_parameters()
b1, b2 = (float(x) for x in a.betas.split(","))
opt = torch.optim.Adam(params, lr=a.lr, betas=(b1, b2))
sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, a.iters) if a.schedule == "cosine" else None
train = splits.train
pairs = [make_pair(p.hr, 8, p.id) for p in train]
rng = np.random.default_rng(a.seed)
sampler = PatchSampler(train, 8, 64, seed=a.seed)
def sample():
    if not a.whole:
        return sampler.sample(a.batch)
    idx = rng.choice(len(pairs), a.batch)
    return Batch(to_tensor([pairs[i][0] for i in idx]), to_tensor([pairs[i][1] for i in idx]), [train[i].text for i in idx])
val = splits.val
log = open(a.out, "w")
dev = torch.device("cpu")
t0 = time.perf_counter(); run = {}
best = -1
for it in range(1, a.iters + 1):
    model.train(); recipe.train()
    batch = sample()
    sr = model(batch.lr)
    loss, logs = recipe.loss(sr, batch, it, a.iters)
    opt.zero_grad(set_to_none=True)
    (loss * a.loss_scale).backward()
    if a.clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), a.clip)
    opt.step(); recipe.after_step()
    if sched: sched.step()
    for k, v in logs.items(): run.setdefault(k, []).append(float(v))
    if it % a.val_every == 0 or it == a.iters:
        v = mean_psnr(m, model, val, dev)
        best = max(best, v)
        rec = {"it": it, "val_psnr": round(v, 3), "s": round(time.perf_counter() - t0, 1), **{k: round(float(np.mean(x)), 5) for k, x in run.items()}}
        run = {}
        log.write(json.dumps(rec) + "\n"); log.flush()
log.write(json.dumps({"done": True, "best_val_psnr": round(best, 3), "args": vars(a)}) + "\n")
