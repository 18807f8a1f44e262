"""Validation during training: mean RGB PSNR over whole val plates, batched; best scores; early stop.

:func:`validate` is the one validation block of the loop: it scores the validated weights
(the EMA when there is one) and the raw ones, keeps the best of each in :class:`Scores`
(part of the training state, so of the checkpoint), and decides early stopping
(``early_stop_patience`` validations without a new best).

:class:`Validator`: 
Same number as :func:`lpsr.evaluate.mean_psnr` (SR rounded to uint8 as a saved image
would be, PSNR per plate over all RGB values, peak 255, then the mean), but the LR/HR pairs
are made once per run instead of at every validation, plates of one size go through the
network as one batch (chunks of ``batch_size``, by default the evaluation's batch size
``eval.batch_size``), and the PSNR is computed on tensors.  The val LR is made by the
training degradation (``train.degradation``; default bicubic), each plate keyed by its id as
a test plate is (the same bytes at every validation and in every run), so the checkpoint is
chosen under the LR it is trained for.
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from lpsr.data.record import PlateRecord
from lpsr.degradations import Degradation, default_degradation
from lpsr.method import Method
from lpsr.profile import EVAL_BATCH

#: plates per forward pass: the evaluation's default batch size (one source of the default)
VAL_BATCH_SIZE: int = EVAL_BATCH


class Validator:
    def __init__(self, method: Method, plates: list[PlateRecord], device: torch.device, batch_size: int = VAL_BATCH_SIZE,
                 memory_format: torch.memory_format = torch.contiguous_format, degradation: Degradation | None = None) -> None:
        self.method, self.device, self.batch_size, self.memory_format = method, device, batch_size, memory_format
        degradation = degradation or default_degradation()
        pairs = [degradation.pair(p.hr, method.scale, key=p.id) for p in plates]
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


def _no_score() -> dict:
    return {"iteration": 0, "psnr": -math.inf}


@dataclass
class Scores:
    """Best validation scores so far (iteration 0: none yet) and validations since the last best."""

    best: dict = field(default_factory=_no_score)  #: of the validated weights (EMA or raw)
    best_raw: dict = field(default_factory=_no_score)  #: of the raw weights (EMA runs only)
    bad_vals: int = 0

    def state_dict(self) -> dict:
        return {"best": dict(self.best), "best_raw": dict(self.best_raw), "bad_vals": self.bad_vals}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.best_raw, self.bad_vals = dict(state["best"]), dict(state["best_raw"]), int(state["bad_vals"])


@dataclass
class Validated:
    record: dict  #: the log fields: val_psnr (val_psnr_raw, early_stop, early_stop_reason)
    improved: bool = False  #: a new best of the validated weights: export them
    improved_raw: bool = False  #: a new best of the raw weights (EMA runs): export them
    stop: bool = False  #: early stop


def validate(validator: Validator, model: nn.Module, raw: nn.Module | None, scores: Scores, it: int, total: int,
             patience: int) -> Validated:
    """Score ``model`` (and ``raw``, the raw weights of an EMA run) at iteration ``it``,
    update ``scores``, decide early stopping (never at the last iteration)."""
    out = Validated({"val_psnr": validator.mean_psnr(model)})
    score = out.record["val_psnr"]
    if score > scores.best["psnr"]:
        scores.best, scores.bad_vals, out.improved = {"iteration": it, "psnr": score}, 0, True
    else:
        scores.bad_vals += 1
    if raw is not None:
        out.record["val_psnr_raw"] = raw_score = validator.mean_psnr(raw)
        if raw_score > scores.best_raw["psnr"]:
            scores.best_raw, out.improved_raw = {"iteration": it, "psnr": raw_score}, True
    if patience and scores.bad_vals >= patience and it < total:
        out.stop = True
        out.record["early_stop"] = True
        out.record["early_stop_reason"] = (
            f"no new best val PSNR in {scores.bad_vals} validations (patience {patience}); "
            f"best {scores.best['psnr']:.4f} dB at iteration {scores.best['iteration']}"
        )
    return out
