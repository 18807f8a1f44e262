"""FLOPs of one training step (forward + backward of the SR network and the loss nets) per method."""
import json, sys
import torch
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[2]))
from torch.utils.flop_counter import FlopCounterMode
from lpsr import registry
from lpsr.method import Batch
torch.set_num_threads(1)
out = {}
for name in sys.argv[1:]:
    m = registry.get(name).create(8)
    torch.manual_seed(0)
    net = m.build().train()
    recipe = m.recipe(net).train()
    whole = getattr(m, "train_on_whole_plates", False)
    h, w = (8, 24) if whole else (8, 8)
    lr = torch.rand(2, 3, h, w); hr = torch.rand(2, 3, 8 * h, 8 * w)
    batch = Batch(lr, hr, ["皖A12345"] * 2)
    total = 10
    it = total  # GAN stage for esrgan (the dearer one)
    fc = FlopCounterMode(display=False)
    with fc:
        sr = net(lr)
        loss, _ = recipe.loss(sr, batch, it, total)
        loss.backward()
        d = recipe.discriminator_loss(sr.detach(), batch, it, total) if recipe.discriminator() is not None else None
        if d is not None:
            d[0].backward()
    out[name] = {"flops_per_sample": fc.get_total_flops() / 2, "lr_size": [h, w]}
    print(name, f"{fc.get_total_flops() / 2 / 1e9:.2f} GFLOP per sample per step", flush=True)
json.dump(out, sys.stdout, indent=1)
