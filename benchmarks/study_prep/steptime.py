"""Seconds per training step (batch 16, 2 threads; whole plates for methods that train on them):
``OMP_WAIT_POLICY=PASSIVE python benchmarks/study_prep/steptime.py tbsrn pecl-pull``."""
import sys, time, torch, numpy as np
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[2]))
from lpsr import registry
from lpsr.data.degrade import make_pair
from lpsr.data.patches import PatchSampler, to_tensor
from lpsr.method import Batch
torch.set_num_threads(2)
from common import load_splits


splits = load_splits()
train = splits.train[:200]
pairs = [make_pair(p.hr, 8, p.id) for p in train]
for name in sys.argv[1:]:
    m = registry.get(name).create(8); torch.manual_seed(0)
    net = m.build().train(); rec = m.recipe(net).train()
    opt = torch.optim.Adam(list(net.parameters()) + rec.generator_parameters(), lr=1e-4)
    sampler = PatchSampler(train, 8, 64, seed=0)
    def batch():
        if m.train_on_whole_plates:
            idx = np.random.default_rng(0).choice(len(pairs), 16)
            return Batch(to_tensor([pairs[i][0] for i in idx]), to_tensor([pairs[i][1] for i in idx]), [train[i].text for i in idx])
        return sampler.sample(16)
    ts = []
    for k in range(4):
        b = batch(); t = time.perf_counter()
        loss, _ = rec.loss(net(b.lr), b, 5, 10); opt.zero_grad(); loss.backward(); opt.step()
        ts.append(time.perf_counter() - t)
    print(name, "s/step (mean of 3 after warm-up):", round(float(np.mean(ts[1:])), 3), flush=True)
