"""Training batches: random aligned HR/LR patches (the paper trains on 64x64 HR patches)."""
from __future__ import annotations

import numpy as np
import torch

from lpsr.data.degrade import make_pair
from lpsr.data.record import DataError, PlateRecord
from lpsr.method import Batch


def to_tensor(images: list[np.ndarray]) -> torch.Tensor:
    """uint8 HxWx3 arrays of one size -> float NCHW in [0, 1]."""
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div_(255.0)


def to_uint8(batch: torch.Tensor) -> list[np.ndarray]:
    """float NCHW in [0, 1] -> uint8 HxWx3 arrays (rounded, as saved images would be)."""
    arr = batch.detach().clamp(0, 1).mul(255.0).round().byte().permute(0, 2, 3, 1).cpu().numpy()
    return list(arr)


class PatchSampler:
    """Draws random (LR, HR) patch batches from a list of plates, reproducibly from a seed.

    LR is made once per plate from the whole HR plate (as at test time), and patches are cut
    at LR-aligned positions, so an LR patch is exactly the LR of its HR patch's area.
    """

    def __init__(self, plates: list[PlateRecord], scale: int, patch: int, seed: int = 0) -> None:
        if not plates:
            raise DataError("no training plates: the train split is empty")
        if patch % scale:
            raise DataError(f"patch size {patch} must be a multiple of the scale x{scale}; set train.patch_size")
        self.scale, self.patch = scale, patch
        self.pairs = [make_pair(p.hr, scale, p.id) for p in plates]
        self.texts = [p.text for p in plates]
        small = [p.id for p, (_, hr) in zip(plates, self.pairs) if min(hr.shape[:2]) < patch]
        if len(small) == len(plates):
            raise DataError(f"every training plate is smaller than the {patch}px patch; lower train.patch_size")
        self.usable = [i for i, (_, hr) in enumerate(self.pairs) if min(hr.shape[:2]) >= patch]
        self.rng = np.random.default_rng(seed)

    def state(self) -> dict:
        return self.rng.bit_generator.state

    def set_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state

    def sample(self, batch_size: int) -> Batch:
        lrs, hrs, texts = [], [], []
        p, s = self.patch, self.scale
        lp = p // s
        for idx in self.rng.choice(self.usable, size=batch_size, replace=True):
            lr, hr = self.pairs[idx]
            y = int(self.rng.integers(0, lr.shape[0] - lp + 1))
            x = int(self.rng.integers(0, lr.shape[1] - lp + 1))
            lrs.append(lr[y : y + lp, x : x + lp])
            hrs.append(hr[y * s : (y + lp) * s, x * s : (x + lp) * s])
            texts.append(self.texts[idx])
        return Batch(to_tensor(lrs), to_tensor(hrs), texts)
