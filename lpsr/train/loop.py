"""The one training loop every learned method shares (nanoGPT-style: readable in one go).

Iteration-based: Adam (fused kernel), a learning-rate schedule (linear warm-up, then cosine / constant /
step; :mod:`lpsr.train.schedule`), random HR patches (or whole plates for methods with
``train_on_whole_plates``), validation on whole val plates every ``val_every``
iterations and at the end, best checkpoint by mean validation PSNR.  The iteration of the
best checkpoint is the run's "iterations to convergence" (the paper's Fig. 6).

Recipes, each a training setting (:class:`lpsr.train.settings.TrainSettings`): an EMA of
the weights (timm's ``ModelEmaV3``; validated beside the raw weights, and what
``best.safetensors`` holds), gradient clipping over every optimised parameter, early
stopping on a validation plateau, bf16/fp16 autocast, channels_last, torch.compile.

GAN recipes: the discriminator gets its own Adam (``lr_d``) and its own schedule, which
counts the discriminator's own steps and spans the iterations where it trains: a recipe
may define ``discriminator_start(total) -> int`` (iterations before D first trains,
default 0), e.g. ESRGAN's pre-training stage.

A run that is stopped resumes from ``ckpt/resume.pt`` (one atomic file: weights, EMA,
optimiser, RNG, sampler, best scores and the log so far; :mod:`lpsr.train.checkpoint`)
exactly where it was: same batches, same RNG, same optimiser moments.  ``train.jsonl`` has
one JSON line per log interval and per validation; on resume it is made to agree with the
checkpoint (lines past it, including a torn last line, are dropped).

OpenMP's wait policy is not a training setting: it must be in the environment before
torch is imported (``OMP_WAIT_POLICY=PASSIVE`` when other processes share the cores; see
README "Training speed").
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from lpsr.data.patches import PatchSampler
from lpsr.data.record import PlateRecord
from lpsr.errors import UserError
from lpsr.io import is_stray_temp, write_text
from lpsr.method import Method, TrainRecipe
from lpsr.train.checkpoint import (
    RESUME_FILE,
    CheckpointError,
    check_fits,
    legacy_checkpoint,
    load_resume,
    save_resume,
    save_weights,
    weights_metadata,
)
from lpsr.train.schedule import Schedule
from lpsr.train.settings import TrainSettings
from lpsr.train.validate import Validator

ProgressFn = Callable[[int, int, dict], None]
log_warning = logging.getLogger("lpsr.train")

#: settings that may change between a run and its resume (they do not change the maths)
RESUME_FREE_SETTINGS = ("threads", "compile")


class TrainingDiverged(RuntimeError):
    pass


class TrainingSetupError(UserError):
    """A training setting cannot be honoured here (e.g. torch.compile fails)."""


@dataclass
class TrainResult:
    best_iteration: int
    best_val_psnr: float
    iterations: int
    seconds: float
    resumed_from: int
    recipe: dict
    stopped_early: bool = False
    notes: list[str] = field(default_factory=list)
    engine: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- helpers
def discriminator_start(recipe: TrainRecipe, total: int) -> int:
    """Iterations before the recipe's discriminator first trains (recipe hook, default 0)."""
    hook = getattr(recipe, "discriminator_start", None)
    start = int(hook(total)) if callable(hook) else 0
    return min(max(start, 0), max(total - 1, 0))


def make_adam(params: list[torch.Tensor], lr: float, betas: tuple[float, float], device: torch.device) -> torch.optim.Adam:
    """Adam, fused where torch has a fused kernel for the device (CPU and CUDA): one kernel
    over all parameters instead of a Python loop of small ops (3x faster optimiser step
    for ESRGAN's 704 tensors on CPU; same maths up to float rounding)."""
    if device.type in ("cpu", "cuda"):
        try:
            return torch.optim.Adam(params, lr=lr, betas=betas, fused=True)
        except (RuntimeError, TypeError, ValueError):
            pass
    return torch.optim.Adam(params, lr=lr, betas=betas)


def resolve_precision(requested: str, device: torch.device) -> tuple[str, str | None]:
    """(precision actually used, note when it differs from the requested one)."""
    if requested == "fp32":
        return "fp32", None
    if device.type == "cuda":
        if requested == "bf16" and not torch.cuda.is_bf16_supported():
            return "fp32", "train.precision bf16: this GPU has no bf16 support; trained in fp32"
        return requested, None
    if device.type != "cpu":
        return "fp32", f"train.precision {requested}: autocast is only used on cpu and cuda; trained in fp32 on {device.type}"
    probe = {"bf16": "_is_mkldnn_bf16_supported", "fp16": "_is_mkldnn_fp16_supported"}[requested]
    try:
        native = bool(getattr(torch.ops.mkldnn, probe)())
    except Exception:
        native = False
    if not native:
        isa = "avx512_bf16 / amx_bf16" if requested == "bf16" else "avx512_fp16 / amx_fp16"
        return "fp32", f"train.precision {requested}: this CPU has no native {requested} ({isa}); trained in fp32 (emulated {requested} would be slower)"
    return requested, None


def _autocast(device: torch.device, precision: str):
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _clean_stray_temps(*folders: Path) -> list[str]:
    """Temporary files of writes a killed process never finished (never a checkpoint)."""
    removed = []
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            if path.is_file() and is_stray_temp(path):
                try:
                    path.unlink()
                    removed.append(path.name)
                except OSError:
                    pass
    return removed


def _reconcile_log(log_path: Path, logged: str, iteration: int, notes: list[str]) -> None:
    """Make ``train.jsonl`` equal the checkpoint's copy of the log (up to ``iteration``)."""
    disk = log_path.read_text(encoding="utf-8", errors="replace") if log_path.exists() else None
    if disk == logged:
        return
    if disk is not None and disk.startswith(logged):
        # lines written after the checkpoint (a crash between validations), possibly torn
        write_text(log_path, logged)
        return
    if disk is not None:
        aside = log_path.with_name(f"{log_path.name}.mismatch-{time.strftime('%Y%m%d-%H%M%S')}")
        os.replace(log_path, aside)
        notes.append(f"{log_path.name} did not match the checkpoint at iteration {iteration}: restored from the checkpoint (old file kept as {aside.name})")
    elif logged:
        notes.append(f"{log_path.name} was missing: restored from the checkpoint at iteration {iteration}")
    write_text(log_path, logged)


def _check_same_run(state: dict, method: Method, settings: TrainSettings, seed: int, path: Path) -> None:
    if state.get("method") != method.name or state.get("scale") != method.scale:
        raise CheckpointError(
            f"{path}: checkpoint of method '{state.get('method')}' x{state.get('scale')}, not '{method.name}' x{method.scale}; "
            "move it aside to train from the start"
        )
    if state.get("seed") != seed:
        raise CheckpointError(f"{path}: checkpoint of seed {state.get('seed')}, this run has seed {seed}; move it aside to train from the start")
    old, new = dict(state.get("settings") or {}), settings.to_dict()
    changed = sorted(k for k in set(old) | set(new) if k not in RESUME_FREE_SETTINGS and old.get(k) != new.get(k))
    if changed:
        diffs = ", ".join(f"{k} {old.get(k)!r} -> {new.get(k)!r}" for k in changed[:4])
        raise CheckpointError(f"{path}: checkpoint made with other training settings ({diffs}); move it aside to train from the start")


# --------------------------------------------------------------------------- the loop
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
    resume_path = ckpt / RESUME_FILE
    best_path, best_raw_path = ckpt / "best.safetensors", ckpt / "best_raw.safetensors"
    notes: list[str] = []
    stray = _clean_stray_temps(ckpt, out_dir)
    if stray:
        notes.append(f"removed {len(stray)} unfinished temporary file(s) of a killed write: {', '.join(stray[:3])}")
    if not resume_path.exists() and legacy_checkpoint(ckpt):
        raise CheckpointError(
            f"{ckpt}: holds a checkpoint in the old two-file format ({', '.join(p.name for p in legacy_checkpoint(ckpt))}), "
            "which cannot be resumed safely; move that folder aside to train from the start"
        )

    if settings.threads > 0 and device.type == "cpu":
        torch.set_num_threads(settings.threads)
    torch.manual_seed(seed)
    total = settings.iterations
    precision, note = resolve_precision(settings.precision, device)
    if note:
        notes.append(note)
    memory_format = torch.channels_last if settings.channels_last else torch.contiguous_format

    model.to(device)
    recipe: TrainRecipe = method.recipe(model).to(device)
    if settings.channels_last:
        model.to(memory_format=torch.channels_last)
        recipe.to(memory_format=torch.channels_last)
    sampler = PatchSampler(train_plates, method.scale, settings.patch_size, seed=seed,
                           whole_plates=bool(getattr(method, "train_on_whole_plates", False)))
    validator = Validator(method, val_plates[: settings.val_plates], device, memory_format=memory_format)

    params_g = list(model.parameters()) + recipe.generator_parameters()
    opt_g = make_adam(params_g, settings.lr, settings.betas, device)
    sched_g = Schedule(opt_g, settings, span=total)
    disc = recipe.discriminator()
    d_start = discriminator_start(recipe, total)
    opt_d = make_adam(list(disc.parameters()), settings.lr_for_discriminator(), settings.betas, device) if disc is not None else None
    sched_d = Schedule(opt_d, settings, span=total - d_start, offset=d_start) if opt_d is not None else None
    scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None
    ema = None
    if settings.ema_decay > 0:
        from timm.utils import ModelEmaV3

        ema = ModelEmaV3(model, decay=settings.ema_decay, use_warmup=True)

    start, d_steps, elapsed, bad_vals, finished, stopped_early = 0, 0, 0.0, 0, False, False
    best = {"iteration": 0, "psnr": -math.inf}
    best_raw = {"iteration": 0, "psnr": -math.inf}
    logged = ""
    if resume_path.exists():
        state = load_resume(resume_path)
        _check_same_run(state, method, settings, seed, resume_path)
        check_fits(model, state["model"], f"{resume_path}")
        model.load_state_dict(state["model"])
        if ema is not None:
            ema.module.load_state_dict(state["ema"])
        recipe.load_state_dict(state["recipe"])
        opt_g.load_state_dict(state["opt_g"])
        if opt_d is not None:
            opt_d.load_state_dict(state["opt_d"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        sampler.set_state(state["sampler"])
        _set_rng_state(state["rng"])
        start, d_steps, elapsed = state["iteration"], state["d_steps"], state["seconds"]
        best, best_raw, bad_vals = dict(state["best"]), dict(state["best_raw"]), state["bad_vals"]
        finished, stopped_early = bool(state["finished"]), bool(state["stopped_early"])
        logged = state["log"]
        _reconcile_log(log_path, logged, start, notes)
        _reconcile_best(best_path, best, start, state, "ema" if ema is not None else "model", notes)
        if ema is not None:
            _reconcile_best(best_raw_path, best_raw, start, state, "model", notes)
    elif log_path.exists():
        write_text(log_path, "")  # lines of an attempt killed before its first checkpoint
    resumed_from = start
    for note in notes:  # the caller also gets them in TrainResult.notes
        log_warning.warning("[%s] %s", method.name, note)

    t0 = time.perf_counter()

    def checkpoint(iteration: int) -> None:
        save_resume(
            resume_path,
            {
                "iteration": iteration,
                "method": method.name,
                "scale": method.scale,
                "seed": seed,
                "settings": settings.to_dict(),
                "model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
                "ema": {k: v.detach().cpu().clone() for k, v in ema.module.state_dict().items()} if ema is not None else None,
                "recipe": recipe.state_dict(),
                "opt_g": opt_g.state_dict(),
                "opt_d": opt_d.state_dict() if opt_d is not None else None,
                "scaler": scaler.state_dict() if scaler is not None else None,
                "sampler": sampler.state(),
                "rng": _rng_state(),
                "d_steps": d_steps,
                "best": best,
                "best_raw": best_raw,
                "bad_vals": bad_vals,
                "finished": finished,
                "stopped_early": stopped_early,
                "seconds": elapsed + (time.perf_counter() - t0),
                "log": logged,
            },
        )

    fwd = model
    if settings.compile:
        try:
            fwd = torch.compile(model)
        except Exception as exc:  # pragma: no cover - depends on the installation
            raise TrainingSetupError(f"train.compile: torch.compile is unavailable here ({_first_line(exc)}); set train.compile: false") from None

    def step(it: int) -> dict[str, float]:
        nonlocal d_steps
        batch = sampler.sample(settings.batch_size).to(device)
        if settings.channels_last:
            batch.lr = batch.lr.contiguous(memory_format=torch.channels_last)
            batch.hr = batch.hr.contiguous(memory_format=torch.channels_last)
        lr_now = sched_g.set(it - 1)
        with _autocast(device, precision):
            sr = fwd(batch.lr)
            loss, logs = recipe.loss(sr, batch, it, total)
        if not torch.isfinite(loss):
            raise TrainingDiverged(
                f"method '{method.name}': loss became {float(loss)} at iteration {it}; lower train.lr (now {settings.lr})"
            )
        opt_g.zero_grad(set_to_none=True)
        _backward_and_step(loss, opt_g, params_g, settings.grad_clip, scaler)
        if opt_d is not None:
            with _autocast(device, precision):
                d_out = recipe.discriminator_loss(sr.detach(), batch, it, total)
            if d_out is not None:
                d_loss, d_logs = d_out
                sched_d.set(d_steps)
                opt_d.zero_grad(set_to_none=True)
                _backward_and_step(d_loss, opt_d, list(disc.parameters()), settings.grad_clip, scaler)
                d_steps += 1
                logs = {**logs, **d_logs, "lr_d": sched_d.lr()}
        if scaler is not None:
            scaler.update()
        recipe.after_step()
        if ema is not None:
            ema.update(model, step=it)
        return {**logs, "lr": lr_now}

    running: dict[str, list[float]] = {}
    it = start
    if not finished and start < total:
        with open(log_path, "a", encoding="utf-8") as log:
            for it in range(start + 1, total + 1):
                model.train()
                recipe.train()
                if settings.compile and it == start + 1:
                    try:
                        logs = step(it)
                    except (TrainingDiverged, UserError):
                        raise
                    except Exception as exc:
                        raise TrainingSetupError(
                            f"train.compile: torch.compile failed on the first step ({_first_line(exc)}); set train.compile: false"
                        ) from None
                else:
                    logs = step(it)
                for k, v in logs.items():
                    running.setdefault(k, []).append(float(v))

                record: dict | None = None
                if it % settings.log_every == 0 or it == total:
                    record = {"iteration": it, **{k: float(np.mean(v)) for k, v in running.items()}}
                    running = {}
                validating = it % settings.val_every == 0 or it == total
                improved = improved_raw = False
                if validating:
                    score = validator.mean_psnr(ema.module if ema is not None else model)
                    record = {**(record or {"iteration": it}), "val_psnr": score}
                    if score > best["psnr"]:
                        best, bad_vals, improved = {"iteration": it, "psnr": score}, 0, True
                    else:
                        bad_vals += 1
                    if ema is not None:
                        raw = validator.mean_psnr(model)
                        record["val_psnr_raw"] = raw
                        if raw > best_raw["psnr"]:
                            best_raw, improved_raw = {"iteration": it, "psnr": raw}, True
                    if settings.early_stop_patience and bad_vals >= settings.early_stop_patience and it < total:
                        stopped_early = True
                        record["early_stop"] = True
                        record["early_stop_reason"] = (
                            f"no new best val PSNR in {bad_vals} validations (patience {settings.early_stop_patience}); "
                            f"best {best['psnr']:.4f} dB at iteration {best['iteration']}"
                        )
                if record is not None:
                    line = json.dumps(record) + "\n"
                    log.write(line)
                    log.flush()
                    logged += line
                if validating:
                    finished = stopped_early or it == total
                    checkpoint(it)  # first the one atomic checkpoint, then the exports
                    if improved:
                        _save_best(best_path, ema.module if ema is not None else model, best)
                    if improved_raw:
                        _save_best(best_raw_path, model, best_raw)
                if progress is not None:
                    progress(it, total, logs)
                if stopped_early:
                    break

    seconds = elapsed + (time.perf_counter() - t0)
    engine = {
        "precision": precision,
        "channels_last": settings.channels_last,
        "compile": settings.compile,
        "threads": torch.get_num_threads() if device.type == "cpu" else None,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "unset"),
        "ema_decay": settings.ema_decay,
        "discriminator_start": d_start if disc is not None else None,
    }
    return TrainResult(best["iteration"], best["psnr"], it, seconds, resumed_from, recipe.describe(),
                       stopped_early=stopped_early, notes=notes, engine=engine)


def _backward_and_step(loss: torch.Tensor, opt: torch.optim.Optimizer, params: list[torch.Tensor], clip: float, scaler) -> None:
    if scaler is not None:
        scaler.scale(loss).backward()
        if clip > 0:
            scaler.unscale_(opt)
            nn.utils.clip_grad_norm_(params, clip)
        scaler.step(opt)
        return
    loss.backward()
    if clip > 0:
        nn.utils.clip_grad_norm_(params, clip)
    opt.step()


def _save_best(path: Path, model: nn.Module, best: dict) -> None:
    save_weights(model, path, {"iteration": str(best["iteration"]), "val_psnr": f"{best['psnr']:.4f}"})


def _reconcile_best(path: Path, best: dict, iteration: int, state: dict, key: str, notes: list[str]) -> None:
    """Make the exported best weights agree with the checkpoint's record of the best.

    The best weights are exported right after the checkpoint that records them, so a crash
    in between leaves an older file: its weights are then the checkpoint's own weights."""
    if best["iteration"] == 0:
        return
    meta = weights_metadata(path)
    if meta is not None and meta.get("iteration") == str(best["iteration"]):
        return
    if best["iteration"] == iteration:
        save_weights(state[key], path, {"iteration": str(best["iteration"]), "val_psnr": f"{best['psnr']:.4f}"})
        notes.append(f"{path.name} re-exported from the checkpoint at iteration {iteration} (the run stopped before writing it)")
        return
    found = "missing or unreadable" if meta is None else f"from iteration {meta.get('iteration')}"
    raise CheckpointError(
        f"{path}: is {found}, but the resume checkpoint's best is iteration {best['iteration']}; "
        "the run directory was changed by hand: restore that file or move ckpt/ aside to train from the start"
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]
