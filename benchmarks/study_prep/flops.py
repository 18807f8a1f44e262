"""FLOPs of one training step (the engine's ``lpsr.train.step.train_step``: forward and backward
of the SR network and the loss nets, the discriminator step when due) per method."""
import json, sys
import torch
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[2]))
from torch.utils.flop_counter import FlopCounterMode
from lpsr import registry
from lpsr.method import Batch
from lpsr.train.settings import TrainSettings
from lpsr.train.state import build_state
from lpsr.train.step import train_step
torch.set_num_threads(1)
out = {}
for name in sys.argv[1:]:
    m = registry.get(name).create(8)
    whole = getattr(m, "train_on_whole_plates", False)
    h, w = (8, 24) if whole else (8, 8)
    lr = torch.rand(2, 3, h, w); hr = torch.rand(2, 3, 8 * h, 8 * w)
    batch = Batch(lr, hr, ["皖A12345"] * 2)
    total = 10
    state, _ = build_state(m, m.build(), TrainSettings(iterations=total), torch.device("cpu"), seed=0)
    fc = FlopCounterMode(display=False)
    with fc:
        train_step(state, batch, total)  # the last iteration: GAN stage for esrgan (the dearer one)
    out[name] = {"flops_per_sample": fc.get_total_flops() / 2, "lr_size": [h, w]}
    print(name, f"{fc.get_total_flops() / 2 / 1e9:.2f} GFLOP per sample per step", flush=True)
json.dump(out, sys.stdout, indent=1)
