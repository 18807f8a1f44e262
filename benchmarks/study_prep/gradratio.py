"""Gradient norms at the SR image: pixel term vs the auxiliary terms (TBSRN text loss, PECL pull)."""
import argparse, json, sys
import numpy as np, torch, yaml
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[2]))
from lpsr import registry
from lpsr.data.degrade import make_pair
from lpsr.data.patches import PatchSampler, to_tensor
from lpsr.method import Batch
from common import load_splits


ap = argparse.ArgumentParser()
ap.add_argument("--method", required=True)
ap.add_argument("--set", action="append", default=[])
ap.add_argument("--whole", action="store_true")
ap.add_argument("--sr", default="model", help="model | bicubic (SR = bicubic upsampling)")
ap.add_argument("--batches", type=int, default=3)
a = ap.parse_args()
torch.set_num_threads(1)
splits = load_splits()
over = {k: yaml.safe_load(v) for k, v in (kv.split("=", 1) for kv in a.set)}
m = registry.get(a.method).create(8, over)
torch.manual_seed(0)
model = m.build().train()
recipe = m.recipe(model).train()
train = splits.val  # any plates; val only read, never trained on
pairs = [make_pair(p.hr, 8, p.id) for p in train]
rng = np.random.default_rng(0)
sampler = PatchSampler(train, 8, 64, seed=0)
out = []
for b in range(a.batches):
    if a.whole:
        idx = rng.choice(len(pairs), 16)
        batch = Batch(to_tensor([pairs[i][0] for i in idx]), to_tensor([pairs[i][1] for i in idx]), [train[i].text for i in idx])
    else:
        batch = sampler.sample(16)
    if a.sr == "bicubic":
        from lpsr.models.bicubic import upsample
        sr = upsample(batch.lr, 8).clamp(0, 1)
    else:
        with torch.no_grad():
            sr = model(batch.lr)
    terms = {}
    sr = sr.detach().requires_grad_(True)
    pix = recipe.pixel_loss(sr, batch.hr)
    g_pix = torch.autograd.grad(pix, sr)[0].norm().item()
    loss, logs = recipe.loss(sr, batch, 1, 10)
    g_all = torch.autograd.grad(loss, sr)[0]
    w_pix = float(getattr(getattr(recipe, "weights", None), "w_pixel", 1.0)) if hasattr(recipe, "weights") and hasattr(recipe.weights, "w_pixel") else 1.0
    g_aux = (g_all - torch.autograd.grad(w_pix * recipe.pixel_loss(sr, batch.hr), sr)[0]).norm().item()
    out.append({"g_pixel": g_pix, "g_aux": g_aux, "ratio_aux_over_pixel": g_aux / max(w_pix * g_pix, 1e-12), **{k: round(v, 5) for k, v in logs.items()}})
print(json.dumps({"method": a.method, "set": a.set, "whole": a.whole, "sr": a.sr,
                  "ratio_mean": float(np.mean([o["ratio_aux_over_pixel"] for o in out])), "batches": out}))
