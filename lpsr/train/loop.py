"""The one training loop every learned method shares (nanoGPT-style: ``train()`` reads top to bottom).

Iteration-based: each iteration is :func:`lpsr.train.step.train_step` on the next batch of
the keyed patch stream (:mod:`lpsr.data.patches`: batch ``k`` of rank ``r`` is a function
of ``(seed, r, k)``; cut by ``DataLoader`` workers into pinned memory on CUDA); every
``log_every`` iterations a record goes to the run log (:mod:`lpsr.train.runlog`: JSONL and
TensorBoard); every ``val_every`` iterations and at the end the validation block
(:func:`lpsr.train.validate.validate`: best checkpoint by mean validation PSNR, early stop)
runs, then the one atomic resume checkpoint is written and the best weights exported
(:mod:`lpsr.train.checkpoint`).  The iteration of the best checkpoint is the run's
"iterations to convergence" (the paper's Fig. 6).

Where the rest lives: the state and its construction (:mod:`lpsr.train.state`), the lr
schedules (:mod:`lpsr.train.schedule`), precision (:mod:`lpsr.train.precision`), signals
(:mod:`lpsr.train.signals`), device settings (:mod:`lpsr.train.device`), data-parallel
(:mod:`lpsr.train.ddp`: ``wrap()`` and ``agree()``), errors (:mod:`lpsr.train.errors`).

Stopping: a non-finite loss raises :class:`TrainingDiverged` (one line naming the iteration
and the settings to change); no checkpoint is ever written from non-finite weights, so the
last good one stays.  SIGINT / SIGTERM set a flag; at the next iteration boundary the loop
writes a checkpoint and raises :class:`TrainingInterrupted` saying how to resume.  A rerun
resumes from ``ckpt/resume.pt`` exactly where it was: same batches, same RNG, same
optimiser moments.

GPUs: the step never waits for the device; the loop reads the step logs and the device-side
"first non-finite iteration" flag (one copy) at log intervals only.  Under DDP rank 0 alone
validates, logs and writes checkpoints.

OpenMP's wait policy is not a training setting: it must be in the environment before
torch is imported (``OMP_WAIT_POLICY=PASSIVE`` when other processes share the cores; see
README "Training speed").
"""
from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from lpsr.data.patches import PatchSampler, batch_stream
from lpsr.data.record import PlateRecord
from lpsr.method import Method
from lpsr.train import ddp
from lpsr.train.checkpoint import BEST_FILE, BEST_RAW_FILE, RESUME_FILE, export_best, prepare_folder, restore, write_checkpoint
from lpsr.train.device import device_settings
from lpsr.train.errors import TrainingDiverged, diverged_message
from lpsr.train.runlog import RunLog, check_loggers
from lpsr.train.settings import TrainSettings
from lpsr.train.signals import stop_on_signals
from lpsr.train.state import TrainState, build_state
from lpsr.train.step import first_compiled_step, train_step
from lpsr.train.validate import Validator, validate

ProgressFn = Callable[[int, int, dict], None]
log_warning = logging.getLogger("lpsr.train")


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
    *,
    deterministic: bool = False,
    log: tuple[str, ...] | list[str] = (),
) -> TrainResult:
    check_loggers(tuple(log))
    ctx = ddp.init_distributed(device)  # a no-op in a single process
    device, main, total = ddp.device_for_rank(torch.device(device)), ctx.is_main, settings.iterations
    ckpt = Path(out_dir) / "ckpt"
    ckpt.mkdir(parents=True, exist_ok=True)
    resume_path = ckpt / RESUME_FILE
    notes = prepare_folder(ckpt, Path(out_dir), main)
    if settings.threads > 0 and device.type == "cpu":
        torch.set_num_threads(settings.threads)
    state, note = build_state(method, model, settings, device, seed, ctx.rank)
    notes += [note] if note else []
    degradation = settings.lr_degradation()  # training and val LR (train.degradation)
    sampler = PatchSampler(train_plates, method.scale, settings.patch_size, seed=seed,
                           whole_plates=bool(getattr(method, "train_on_whole_plates", False)), rank=ctx.rank, degradation=degradation)
    memory_format = torch.channels_last if settings.channels_last else torch.contiguous_format
    validator = Validator(method, val_plates[: settings.val_plates], device, memory_format=memory_format,
                          degradation=degradation) if main else None
    run = {"method": method.name, "scale": method.scale, "seed": seed, "world_size": ctx.world_size, "settings": settings.to_dict()}
    runlog = RunLog(Path(out_dir), tuple(log), main)
    restore(resume_path, state, runlog, run, ctx.rank, main, notes)
    start = last_checkpoint = state.iteration
    for note in notes:  # the caller also gets them in TrainResult.notes
        log_warning.warning("[%s] %s", method.name, note)

    workers = settings.workers_for(device.type)
    if not state.finished and start < total:
        with contextlib.ExitStack() as stack:
            stop = stack.enter_context(stop_on_signals(method.name))
            stack.enter_context(device_settings(device, deterministic))
            batches = batch_stream(sampler, settings.batch_size, start, total, workers, pin_memory=device.type == "cuda")
            stack.callback(_close_stream, batches)
            stack.enter_context(runlog.open(start))
            for it in range(start + 1, total + 1):
                step = first_compiled_step if settings.compile and it == start + 1 else train_step
                logs = step(state, next(batches), it)
                runlog.add(logs)
                at_log = it % settings.log_every == 0 or it == total
                validating = it % settings.val_every == 0 or it == total
                # under DDP every rank must stop at the same iteration: agree at log intervals
                stopping = ddp.agree(stop.requested, "any", device) if ctx.enabled and (at_log or validating) else (
                    stop.requested and not ctx.enabled)
                if at_log or validating or stopping:
                    runlog.read()
                    _check_finite(state, it, validating or stopping, last_checkpoint, resume_path)
                record = runlog.interval(it) if at_log else None
                checked = None
                if validating:
                    if main:
                        checked = validate(validator, state.eval_model, state.model if state.ema is not None else None,
                                           state.scores, it, total, settings.early_stop_patience)
                        record = {**(record or {"iteration": it}), **checked.record}
                    state.stopped_early = bool(ddp.agree(checked is not None and checked.stop, "main"))
                    state.finished = state.stopped_early or it == total
                if record is not None:
                    runlog.write(record)
                if validating or stopping:
                    write_checkpoint(resume_path, state, runlog, run, main)  # first the checkpoint, then the exports
                    last_checkpoint = it
                if checked is not None and checked.improved:
                    export_best(ckpt / BEST_FILE, state.eval_model, state.scores.best)
                if checked is not None and checked.improved_raw:
                    export_best(ckpt / BEST_RAW_FILE, state.model, state.scores.best_raw)
                if validating:
                    runlog.flush()
                if progress is not None:
                    progress(it, total, logs)
                if state.stopped_early:
                    break
                if stopping and not state.finished:
                    raise stop.interrupted(it, total, resume_path)

    best = ddp.agree(state.scores.best, "main")
    return TrainResult(best["iteration"], best["psnr"], state.iteration, runlog.seconds(), start, state.recipe.describe(),
                       stopped_early=state.stopped_early, notes=notes, engine=_engine_facts(state, workers, ctx.world_size, deterministic, log))


def _check_finite(state: TrainState, it: int, weights: bool, last_checkpoint: int, resume_path: Path) -> None:
    """Raise :class:`TrainingDiverged` when a loss (or, before a checkpoint, a weight) is not
    finite: the device-side flag is read here, once per log interval (agreed over the ranks)."""
    bad, what = ddp.agree(int(state.first_bad), "max", state.device), "loss"
    if not bad and weights and not state.weights_finite():  # never checkpoint non-finite weights
        bad, what = it, "weights"
    if bad:
        raise TrainingDiverged(diverged_message(state.method.name, what, bad, state.settings, state.precision,
                                                last_checkpoint, resume_path), bad)


def _engine_facts(state: TrainState, workers: int, world_size: int, deterministic: bool, loggers) -> dict[str, Any]:
    """How the run was trained (``result.json``'s ``train.engine``)."""
    s, device = state.settings, state.device
    return {
        "precision": state.precision,
        "precision_requested": s.precision,
        "channels_last": s.channels_last,
        "compile": s.compile,
        "threads": torch.get_num_threads() if device.type == "cpu" else None,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "unset"),
        "ema_decay": s.ema_decay,
        "discriminator_start": state.d_start if state.disc is not None else None,
        "loader_workers": workers,
        "world_size": world_size,
        "deterministic": bool(deterministic),
        "cudnn_benchmark": device.type == "cuda" and not deterministic,
        "log": list(loggers),
    }


def _close_stream(batches) -> None:
    """Stop a batch stream: DataLoader workers are shut down, a generator closed."""
    shutdown = getattr(batches, "_shutdown_workers", None) or getattr(batches, "close", None)
    if shutdown is not None:
        shutdown()
