"""Validation during training: mean RGB PSNR over whole val plates, batched.

Same number as :func:`lpsr.evaluate.mean_psnr` (SR rounded to uint8 as a saved image
would be, PSNR per plate over all RGB values, peak 255, then the mean), but the LR/HR pairs
are made once per run instead of at every validation, plates of one size go through the
network as one batch (chunks of ``batch_size``), and the PSNR is computed on tensors.
"""
from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import torch
from torch import nn

from lpsr.data.degrade import make_pair
from lpsr.data.record import PlateRecord
from lpsr.method import Method


class Validator:
    def __init__(self, method: Method, plates: list[PlateRecord], device: torch.device, batch_size: int = 32,
                 memory_format: torch.memory_format = torch.contiguous_format) -> None:
        self.method, self.device, self.batch_size, self.memory_format = method, device, batch_size, memory_format
        pairs = [make_pair(p.hr, method.scale, p.id) for p in plates]
        by_shape: dict[tuple, list[int]] = defaultdict(list)
        for i, (lr, _) in enumerate(pairs):
            by_shape[lr.shape].append(i)
        self.n = len(pairs)
        self.groups = [
            (torch.from_numpy(np.stack([pairs[i][0] for i in idxs])), torch.from_numpy(np.stack([pairs[i][1] for i in idxs])))
            for idxs in by_shape.values()
        ]

    @torch.no_grad()
    def psnrs(self, model: nn.Module) -> torch.Tensor:
        was_training = model.training
        model.eval()
        out = []
        try:
            for lr_u8, hr_u8 in self.groups:
                for start in range(0, len(lr_u8), self.batch_size):
                    lr = lr_u8[start : start + self.batch_size].permute(0, 3, 1, 2).float().div_(255.0)
                    lr = lr.to(self.device).contiguous(memory_format=self.memory_format)
                    sr = self.method.super_resolve(model, lr)
                    sr_u8 = sr.detach().clamp(0, 1).mul(255.0).round().to(torch.float64).cpu().permute(0, 2, 3, 1)
                    hr = hr_u8[start : start + self.batch_size].to(torch.float64)
                    if sr_u8.shape != hr.shape:
                        raise RuntimeError(
                            f"method '{self.method.name}' returned {tuple(sr_u8.shape[1:3])} for a val plate, expected {tuple(hr.shape[1:3])}"
                        )
                    mse = (sr_u8 - hr).pow_(2).flatten(1).mean(1)
                    out.append(torch.where(mse == 0, torch.full_like(mse, math.inf), 10.0 * torch.log10(255.0**2 / mse)))
        finally:
            model.train(was_training)
        return torch.cat(out) if out else torch.empty(0, dtype=torch.float64)

    def mean_psnr(self, model: nn.Module) -> float:
        return float(self.psnrs(model).mean())
