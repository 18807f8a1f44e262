"""The one training loop every learned method shares (nanoGPT-style: readable in one go).

Iteration-based: Adam + cosine annealing over the run, random HR patches, validation on
whole val plates every ``val_every`` iterations and at the end, best checkpoint by mean
validation PSNR.  The iteration of the best checkpoint is the run's "iterations to
convergence" (the paper's Fig. 6).  A run that is stopped resumes from ``state.pt``
exactly where it was: same batches, same RNG, same optimiser moments.

Files in ``out_dir``: ``ckpt/best.safetensors``, ``ckpt/last.safetensors``,
``ckpt/state.pt`` and ``train.jsonl`` (one JSON line per log interval and per validation).
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from lpsr.data.patches import PatchSampler
from lpsr.data.record import PlateRecord
from lpsr.evaluate import mean_psnr
from lpsr.method import Method, TrainRecipe
from lpsr.train.checkpoint import load_state, load_weights, save_state, save_weights
from lpsr.train.settings import TrainSettings

ProgressFn = Callable[[int, int, dict], None]


class TrainingDiverged(RuntimeError):
    pass


@dataclass
class TrainResult:
    best_iteration: int
    best_val_psnr: float
    iterations: int
    seconds: float
    resumed_from: int
    recipe: dict


def _schedulers(opt: torch.optim.Optimizer, settings: TrainSettings):
    if settings.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=settings.iterations)
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _trim_log(log_path: Path, upto: int) -> None:
    """Drop log lines past ``upto`` (written after the last checkpoint of a crashed run)."""
    if not log_path.exists():
        return
    kept = [ln for ln in log_path.read_text().splitlines() if ln.strip() and json.loads(ln).get("iteration", 0) <= upto]
    log_path.write_text("".join(ln + "\n" for ln in kept))


def train(
    method: Method,
    model: nn.Module,
    train_plates: list[PlateRecord],
    val_plates: list[PlateRecord],
    settings: TrainSettings,
    out_dir: Path,
    device: torch.device,
    seed: int = 0,
    progress: ProgressFn | None = None,
) -> TrainResult:
    out_dir = Path(out_dir)
    ckpt = out_dir / "ckpt"
    ckpt.mkdir(parents=True, exist_ok=True)
    log_path = out_dir / "train.jsonl"
    if settings.threads > 0 and device.type == "cpu":
        torch.set_num_threads(settings.threads)
    torch.manual_seed(seed)

    model.to(device)
    recipe: TrainRecipe = method.recipe(model).to(device)
    sampler = PatchSampler(train_plates, method.scale, settings.patch_size, seed=seed)
    val = val_plates[: settings.val_plates]

    opt_g = torch.optim.Adam(list(model.parameters()) + recipe.generator_parameters(), lr=settings.lr)
    sched_g = _schedulers(opt_g, settings)
    disc = recipe.discriminator()
    opt_d = torch.optim.Adam(disc.parameters(), lr=settings.lr) if disc is not None else None
    sched_d = _schedulers(opt_d, settings) if opt_d is not None else None

    start, best_it, best_psnr, elapsed = 0, 0, -math.inf, 0.0
    state_path = ckpt / "state.pt"
    if state_path.exists():
        state = load_state(state_path)
        load_weights(model, ckpt / "last.safetensors", flag="resume checkpoint")
        recipe.load_state_dict(state["recipe"])
        opt_g.load_state_dict(state["opt_g"])
        sched_g.load_state_dict(state["sched_g"])
        if opt_d is not None:
            opt_d.load_state_dict(state["opt_d"])
            sched_d.load_state_dict(state["sched_d"])
        sampler.set_state(state["sampler"])
        _set_rng_state(state["rng"])
        start, best_it, best_psnr, elapsed = state["iteration"], state["best_iteration"], state["best_val_psnr"], state["seconds"]
        _trim_log(log_path, start)
    resumed_from = start

    def checkpoint(iteration: int) -> None:
        save_weights(model, ckpt / "last.safetensors", {"iteration": str(iteration)})
        save_state(
            state_path,
            {
                "iteration": iteration,
                "recipe": recipe.state_dict(),
                "opt_g": opt_g.state_dict(),
                "sched_g": sched_g.state_dict(),
                "opt_d": opt_d.state_dict() if opt_d is not None else None,
                "sched_d": sched_d.state_dict() if sched_d is not None else None,
                "sampler": sampler.state(),
                "rng": _rng_state(),
                "best_iteration": best_it,
                "best_val_psnr": best_psnr,
                "seconds": elapsed + (time.perf_counter() - t0),
            },
        )

    t0 = time.perf_counter()
    running: dict[str, list[float]] = {}
    with open(log_path, "a", encoding="utf-8") as log:
        for it in range(start + 1, settings.iterations + 1):
            model.train()
            recipe.train()
            batch = sampler.sample(settings.batch_size).to(device)
            sr = model(batch.lr)
            loss, logs = recipe.loss(sr, batch, it, settings.iterations)
            if not torch.isfinite(loss):
                raise TrainingDiverged(
                    f"method '{method.name}': loss became {float(loss)} at iteration {it}; lower train.lr (now {settings.lr})"
                )
            opt_g.zero_grad(set_to_none=True)
            loss.backward()
            if settings.grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
            opt_g.step()
            if opt_d is not None:
                d_out = recipe.discriminator_loss(sr.detach(), batch, it, settings.iterations)
                if d_out is not None:
                    d_loss, d_logs = d_out
                    opt_d.zero_grad(set_to_none=True)
                    d_loss.backward()
                    opt_d.step()
                    logs = {**logs, **d_logs}
                sched_d.step()
            recipe.after_step()
            sched_g.step()
            for k, v in logs.items():
                running.setdefault(k, []).append(float(v))

            record: dict | None = None
            if it % settings.log_every == 0 or it == settings.iterations:
                record = {"iteration": it, "lr": sched_g.get_last_lr()[0], **{k: float(np.mean(v)) for k, v in running.items()}}
                running = {}
            if it % settings.val_every == 0 or it == settings.iterations:
                val_psnr = mean_psnr(method, model, val, device)
                record = {**(record or {"iteration": it}), "val_psnr": val_psnr}
                if val_psnr > best_psnr:
                    best_psnr, best_it = val_psnr, it
                    save_weights(model, ckpt / "best.safetensors", {"iteration": str(it), "val_psnr": f"{val_psnr:.4f}"})
            if record is not None:
                log.write(json.dumps(record) + "\n")
                log.flush()
            if it % settings.val_every == 0 or it == settings.iterations:
                checkpoint(it)
            if progress is not None:
                progress(it, settings.iterations, logs)

    seconds = elapsed + (time.perf_counter() - t0)
    return TrainResult(best_it, best_psnr, settings.iterations, seconds, resumed_from, recipe.describe())
