"""Score a method on whole plates: super-resolve in batches, then PSNR / PSNR-Y / SSIM-Y
per plate.  SR is rounded to uint8 before scoring, as a saved image would be."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from lpsr.data.degrade import make_pair
from lpsr.data.patches import to_tensor, to_uint8
from lpsr.data.record import PlateRecord
from lpsr.method import Method
from lpsr.metrics.image import psnr, psnr_y, ssim_y


@dataclass
class PlateScore:
    id: str
    text: str
    psnr: float
    psnr_y: float
    ssim_y: float


def super_resolve_plates(
    method: Method, model: nn.Module | None, plates: list[PlateRecord], device: torch.device, batch_size: int = 32
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Return (SR, HR) uint8 images in plate order; HR is mod-cropped to the scale."""
    pairs = [make_pair(p.hr, method.scale, p.id) for p in plates]
    by_shape: dict[tuple, list[int]] = defaultdict(list)
    for i, (lr, _) in enumerate(pairs):
        by_shape[lr.shape].append(i)
    srs: list[np.ndarray | None] = [None] * len(plates)
    if model is not None:
        model.eval()
    for idxs in by_shape.values():
        for start in range(0, len(idxs), batch_size):
            chunk = idxs[start : start + batch_size]
            lr = to_tensor([pairs[i][0] for i in chunk]).to(device)
            with torch.no_grad():
                sr = method.super_resolve(model, lr)
            for i, img in zip(chunk, to_uint8(sr)):
                srs[i] = img
    hrs = [hr for _, hr in pairs]
    for sr, hr, p in zip(srs, hrs, plates):
        if sr.shape != hr.shape:
            raise RuntimeError(f"method '{method.name}' returned {sr.shape} for plate {p.id}, expected {hr.shape}")
    return srs, hrs  # type: ignore[return-value]


def score_plates(plates: list[PlateRecord], srs: list[np.ndarray], hrs: list[np.ndarray], crop_border: int = 0) -> list[PlateScore]:
    return [
        PlateScore(p.id, p.text, psnr(sr, hr, crop_border), psnr_y(sr, hr, crop_border), ssim_y(sr, hr, crop_border))
        for p, sr, hr in zip(plates, srs, hrs)
    ]


def mean_psnr(method: Method, model: nn.Module | None, plates: list[PlateRecord], device: torch.device, batch_size: int = 32) -> float:
    """Validation score: mean RGB PSNR over the plates (the checkpoint selection rule)."""
    srs, hrs = super_resolve_plates(method, model, plates, device, batch_size)
    return float(np.mean([psnr(s, h) for s, h in zip(srs, hrs)]))
