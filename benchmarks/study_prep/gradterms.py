import json, sys
import numpy as np, torch
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[2]))
from lpsr import registry
from lpsr.data.degrade import make_pair
from lpsr.data.patches import to_tensor
from lpsr.method import Batch
from lpsr.models.bicubic import upsample
from common import load_splits


torch.set_num_threads(1)
splits = load_splits()
over = dict(a.split("=",1) for a in sys.argv[1:])
over = {k: float(v) for k, v in over.items()}
m = registry.get("tbsrn").create(8, over)
torch.manual_seed(0)
model = m.build().train(); recipe = m.recipe(model).train()
recipe.loss_scale = 1.0
pw, cw = recipe.position_weight, recipe.content_weight
plates = splits.val; pairs = [make_pair(p.hr, 8, p.id) for p in plates]
rng = np.random.default_rng(0)
res = {"init": [], "bicubic": []}
for b in range(4):
    idx = rng.choice(len(pairs), 16)
    batch = Batch(to_tensor([pairs[i][0] for i in idx]), to_tensor([pairs[i][1] for i in idx]), [plates[i].text for i in idx])
    for kind in res:
        with torch.no_grad():
            sr0 = model(batch.lr) if kind == "init" else upsample(batch.lr, 8).clamp(0, 1)
        g = {}
        for name, (p, c) in {"pos": (pw, 0.0), "con": (0.0, cw)}.items():
            sr = sr0.clone().requires_grad_(True)
            recipe.position_weight, recipe.content_weight = p, c
            loss, logs = recipe.loss(sr, batch, 1, 10)
            pix = recipe.pixel_loss(sr, batch.hr)
            gt = torch.autograd.grad(loss - pix, sr, retain_graph=True)[0]
            gp = torch.autograd.grad(pix, sr)[0]
            g[name] = gt.norm().item() / gp.norm().item()
        sr = sr0.clone().requires_grad_(True)
        recipe.position_weight, recipe.content_weight = pw, cw
        loss, logs = recipe.loss(sr, batch, 1, 10)
        pix = recipe.pixel_loss(sr, batch.hr)
        g["text"] = torch.autograd.grad(loss - pix, sr, retain_graph=True)[0].norm().item() / torch.autograd.grad(pix, sr)[0].norm().item()
        g.update({k: logs[k] for k in ("l_pixel", "l_pos", "l_con")})
        res[kind].append(g)
print(json.dumps({"weights": [pw, cw], **{k: {kk: round(float(np.mean([x[kk] for x in v])), 5) for kk in v[0]} for k, v in res.items()}}))
