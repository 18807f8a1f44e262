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

Stopping: a non-finite loss raises :class:`TrainingDiverged` (a :class:`UserError`: one
line naming the iteration and the settings to change); no checkpoint is ever written from
non-finite weights, so the last good one stays.  SIGINT / SIGTERM (handlers installed only
while training, the previous ones restored after) set a flag; at the next iteration
boundary the loop writes a checkpoint and raises :class:`TrainingInterrupted` (a
``KeyboardInterrupt``) saying how to resume.  A second signal stops at once (the last
checkpoint is kept).

GPUs: the step never waits for the device.  Recipes return detached tensors as logs; the
loop keeps them and reads them (one copy) at log intervals only, together with a device-side
"first non-finite iteration" flag.  Batches come from a keyed stream
(:mod:`lpsr.data.patches`: batch ``k`` of rank ``r`` is a function of ``(seed, r, k)``),
cut by ``DataLoader`` worker processes into pinned memory on CUDA (``loader_workers``) and
copied non-blocking.  ``cudnn.benchmark`` is on for CUDA unless ``deterministic=True``,
which also sets ``torch.use_deterministic_algorithms(True)``, ``cudnn.deterministic`` and
``CUBLAS_WORKSPACE_CONFIG``; fp16 uses a ``GradScaler`` whose state is in the checkpoint.

Data-parallel (``torchrun``, :mod:`lpsr.train.ddp`): the network is wrapped in
``DistributedDataParallel``; the recipe's own trainable parameters and a discriminator have
their gradients all-reduced by the loop; rank 0 alone validates, logs and writes checkpoints.

``log=("tensorboard",)`` also writes every log record (training losses, learning rates, the
recipe's learned loss weights, validation PSNR) to ``<out_dir>/tb/`` with
``torch.utils.tensorboard``.

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
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from lpsr.data.patches import PatchSampler, batch_stream
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
from lpsr.train import ddp
from lpsr.train.schedule import Schedule
from lpsr.train.settings import TrainSettings
from lpsr.train.validate import Validator

ProgressFn = Callable[[int, int, dict], None]
log_warning = logging.getLogger("lpsr.train")

#: settings that may change between a run and its resume (they do not change the maths)
RESUME_FREE_SETTINGS = ("threads", "compile", "loader_workers")
#: what ``log=`` accepts
LOGGERS = ("tensorboard",)


class TrainingDiverged(UserError):
    """The loss became NaN/inf: one line naming the iteration and the settings to change.
    The last good checkpoint is kept (none is written from non-finite weights)."""

    def __init__(self, message: str, iteration: int = 0) -> None:
        super().__init__(message, iteration)  # all args: it pickles across processes
        self.message, self.iteration = message, iteration

    def __str__(self) -> str:
        return self.message


class TrainingInterrupted(KeyboardInterrupt):
    """SIGINT/SIGTERM during training: a checkpoint was written (unless ``checkpointed`` is
    False: a second signal stops at once and keeps the previous one); rerun to resume."""

    def __init__(self, message: str, signum: int | None = None, iteration: int = 0, checkpointed: bool = True) -> None:
        super().__init__(message, signum, iteration, checkpointed)  # all args: it pickles across processes
        self.message, self.signum, self.iteration, self.checkpointed = message, signum, iteration, checkpointed

    def __str__(self) -> str:
        return self.message


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


def _signal_name(signum: int | None) -> str:
    try:
        return signal.Signals(signum).name if signum is not None else "a signal"
    except ValueError:
        return f"signal {signum}"


class StopFlag:
    """Set by SIGINT/SIGTERM while training; the loop stops at the next iteration boundary.
    A second signal raises :class:`TrainingInterrupted` at once."""

    def __init__(self, method: str = "") -> None:
        self.method, self.signum, self.count = method, None, 0

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def __call__(self, signum: int, frame: Any) -> None:
        self.count += 1
        if self.signum is None:
            self.signum = signum
            return
        raise TrainingInterrupted(
            f"method '{self.method}': stopped at once by a second {_signal_name(signum)}; the last checkpoint is kept; "
            "rerun the same command to resume from it",
            signum=signum, checkpointed=False,
        )


@contextlib.contextmanager
def stop_on_signals(method: str = "", signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)):
    """Install :class:`StopFlag` for ``signals`` while the block runs; restore the previous
    handlers after (only in the main thread: elsewhere signals cannot be caught)."""
    flag = StopFlag(method)
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = {s: signal.getsignal(s) for s in signals}
    for s in signals:
        signal.signal(s, flag)
    try:
        yield flag
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)


#: cuBLAS workspace setting that makes its GEMMs deterministic (CUDA docs, "Reproducibility")
CUBLAS_DETERMINISTIC = ":4096:8"


@contextlib.contextmanager
def device_settings(device: torch.device, deterministic: bool):
    """cudnn.benchmark on CUDA (autotuned convolutions), or the documented deterministic
    settings (torch "Reproducibility" notes); the previous values are restored after."""
    prev = (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic,
            torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    try:
        if deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_DETERMINISTIC)
            torch.backends.cudnn.benchmark = False
            torch.backends.cudnn.deterministic = True
            torch.use_deterministic_algorithms(True)
        elif device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        yield
    finally:
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = prev[0], prev[1]
        torch.use_deterministic_algorithms(prev[2], warn_only=prev[3])


def _materialise(running: dict[str, list]) -> dict[str, list[float]]:
    """Turn the logged tensors into floats with ONE device-to-host copy."""
    tensors = [v for vals in running.values() for v in vals if isinstance(v, torch.Tensor)]
    if not tensors:
        return {k: [float(v) for v in vals] for k, vals in running.items()}
    floats = iter(torch.stack([t.detach().float().reshape(()) for t in tensors]).cpu().tolist())
    return {k: [next(floats) if isinstance(v, torch.Tensor) else float(v) for v in vals] for k, vals in running.items()}


class TensorBoardLog:
    """Scalars of each log record under ``<out_dir>/tb`` (train/<key>, val/psnr, ...).
    A resumed run purges the events past its checkpoint (``purge_step``)."""

    def __init__(self, folder: Path, purge_step: int | None) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise UserError("--log tensorboard needs the tensorboard package: pip install 'lpsr-bench[tensorboard]'") from None
        self.writer = SummaryWriter(log_dir=str(folder), purge_step=purge_step)

    @staticmethod
    def tag(key: str) -> str:
        if key.startswith("val_"):
            return "val/" + key[4:]
        return "train/" + key

    def write(self, record: dict) -> None:
        it = int(record["iteration"])
        for key, value in record.items():
            if key == "iteration" or isinstance(value, (bool, str)) or not isinstance(value, (int, float)):
                continue
            self.writer.add_scalar(self.tag(key), float(value), it)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


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
#: rank r > 0 seeds torch with ``seed + RANK_SEED_STRIDE * r`` (rank 0: the single-process seed)
RANK_SEED_STRIDE = 1_000_003


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
    loggers = tuple(log)
    for name in loggers:
        if name not in LOGGERS:
            raise UserError(f"--log {name}: unknown logger; use one of: {', '.join(LOGGERS)}")
    ctx = ddp.init_distributed(device)  # a no-op in a single process
    device = ddp.device_for_rank(torch.device(device))
    main = ctx.is_main
    out_dir = Path(out_dir)
    ckpt = out_dir / "ckpt"
    ckpt.mkdir(parents=True, exist_ok=True)
    log_path = out_dir / "train.jsonl"
    resume_path = ckpt / RESUME_FILE
    best_path, best_raw_path = ckpt / "best.safetensors", ckpt / "best_raw.safetensors"
    notes: list[str] = []
    if main:
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
    torch.manual_seed(seed + RANK_SEED_STRIDE * ctx.rank)
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
                           whole_plates=bool(getattr(method, "train_on_whole_plates", False)), rank=ctx.rank)
    validator = Validator(method, val_plates[: settings.val_plates], device, memory_format=memory_format) if main else None

    recipe_params = recipe.generator_parameters()
    params_g = list(model.parameters()) + recipe_params
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
    running: dict[str, list] = {}
    if resume_path.exists():
        state = load_resume(resume_path)
        _check_same_run(state, method, settings, seed, resume_path)
        if int(state.get("world_size", 1)) != ctx.world_size:
            raise CheckpointError(
                f"{resume_path}: checkpoint of a run on {state.get('world_size', 1)} process(es), this run has {ctx.world_size}; "
                "resume with the same number of processes, or move it aside to train from the start"
            )
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
        rngs = state.get("rng_ranks")
        _set_rng_state(rngs[ctx.rank] if ctx.enabled and rngs else state["rng"])
        start, d_steps, elapsed = state["iteration"], state["d_steps"], state["seconds"]
        best, best_raw, bad_vals = dict(state["best"]), dict(state["best_raw"]), state["bad_vals"]
        finished, stopped_early = bool(state["finished"]), bool(state["stopped_early"])
        logged = state["log"]
        running = {k: list(v) for k, v in (state.get("running") or {}).items()}
        setup_error = None
        if main:
            try:
                _reconcile_log(log_path, logged, start, notes)
                _reconcile_best(best_path, best, start, state, "ema" if ema is not None else "model", notes)
                if ema is not None:
                    _reconcile_best(best_raw_path, best_raw, start, state, "model", notes)
            except CheckpointError as exc:
                setup_error = str(exc)
        if ctx.enabled:  # every rank stops with rank 0's error, none waits for it
            setup_error = ddp.broadcast_object(setup_error)
        if setup_error:
            raise CheckpointError(setup_error)
        del state
    elif main and log_path.exists():
        write_text(log_path, "")  # lines of an attempt killed before its first checkpoint
    ddp.barrier()
    resumed_from = start
    last_checkpoint = start
    for note in notes:  # the caller also gets them in TrainResult.notes
        log_warning.warning("[%s] %s", method.name, note)

    t0 = time.perf_counter()

    def checkpoint(iteration: int) -> None:
        """Write the resume checkpoint (rank 0; a collective under DDP: every rank calls it)."""
        nonlocal last_checkpoint
        rngs = ddp.all_gather_object(_rng_state()) if ctx.enabled else None
        if main:
            save_resume(
                resume_path,
                {
                    "iteration": iteration,
                    "method": method.name,
                    "scale": method.scale,
                    "seed": seed,
                    "world_size": ctx.world_size,
                    "settings": settings.to_dict(),
                    "model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
                    "ema": {k: v.detach().cpu().clone() for k, v in ema.module.state_dict().items()} if ema is not None else None,
                    "recipe": recipe.state_dict(),
                    "opt_g": opt_g.state_dict(),
                    "opt_d": opt_d.state_dict() if opt_d is not None else None,
                    "scaler": scaler.state_dict() if scaler is not None else None,
                    "sampler": iteration,  # batches drawn = iterations done (the stream is keyed by k)
                    "rng": _rng_state(),
                    "rng_ranks": rngs,
                    "d_steps": d_steps,
                    "best": best,
                    "best_raw": best_raw,
                    "bad_vals": bad_vals,
                    "finished": finished,
                    "stopped_early": stopped_early,
                    "seconds": elapsed + (time.perf_counter() - t0),
                    "log": logged,
                    "running": _materialise(running),  # a log interval cut by a stop
                },
            )
        last_checkpoint = iteration
        ddp.barrier()

    first_bad = torch.zeros((), dtype=torch.long, device=device)  # first iteration with a non-finite loss

    def guard(it: int, weights: bool) -> None:
        """Read the step logs and the divergence flag (one copy each); raise
        :class:`TrainingDiverged` when a loss (or, before a checkpoint, a weight) is not finite."""
        nonlocal running
        running = _materialise(running)
        bad, what = (ddp.max_int(int(first_bad), device) if ctx.enabled else int(first_bad)), "loss"
        if not bad and weights:  # never checkpoint non-finite weights
            params = [p.detach() for p in params_g] + ([p.detach() for p in disc.parameters()] if disc is not None else [])
            if params and not bool(torch.stack([p.isfinite().all() for p in params]).all()):
                bad, what = it, "weights"
        if bad:
            raise TrainingDiverged(_diverged_message(method.name, what, bad, settings, precision, last_checkpoint, resume_path), bad)

    fwd: nn.Module = model
    if ctx.enabled:
        from torch.nn.parallel import DistributedDataParallel

        fwd = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if settings.compile:
        try:
            fwd = torch.compile(fwd)
        except Exception as exc:  # pragma: no cover - depends on the installation
            raise TrainingSetupError(f"train.compile: torch.compile is unavailable here ({_first_line(exc)}); set train.compile: false") from None
    sync_g = recipe_params if ctx.enabled else None
    sync_d = list(disc.parameters()) if ctx.enabled and disc is not None else None

    def step(it: int, batch) -> dict:
        nonlocal d_steps, first_bad
        batch = batch.to(device, non_blocking=True)
        if settings.channels_last:
            batch.lr = batch.lr.contiguous(memory_format=torch.channels_last)
            batch.hr = batch.hr.contiguous(memory_format=torch.channels_last)
        lr_now = sched_g.set(it - 1)
        with _autocast(device, precision):
            sr = fwd(batch.lr)
            loss, logs = recipe.loss(sr, batch, it, total)
        # no host-device sync: the flag is read at log intervals (guard)
        first_bad = torch.where(first_bad > 0, first_bad, (~torch.isfinite(loss.detach())).long() * it)
        opt_g.zero_grad(set_to_none=True)
        _backward_and_step(loss, opt_g, params_g, settings.grad_clip, scaler, sync_g)
        if opt_d is not None:
            with _autocast(device, precision):
                d_out = recipe.discriminator_loss(sr.detach(), batch, it, total)
            if d_out is not None:
                d_loss, d_logs = d_out
                sched_d.set(d_steps)
                opt_d.zero_grad(set_to_none=True)
                _backward_and_step(d_loss, opt_d, list(disc.parameters()), settings.grad_clip, scaler, sync_d)
                d_steps += 1
                logs = {**logs, **d_logs, "lr_d": sched_d.lr()}
        if scaler is not None:
            scaler.update()
        recipe.after_step()
        if ema is not None:
            ema.update(model, step=it)
        return {**logs, "lr": lr_now}

    workers = settings.workers_for(device.type)
    it = start
    if not finished and start < total:
        with contextlib.ExitStack() as stack:
            stop = stack.enter_context(stop_on_signals(method.name))
            stack.enter_context(device_settings(device, deterministic))
            batches = batch_stream(sampler, settings.batch_size, start, total, workers, pin_memory=device.type == "cuda")
            stack.callback(_close_stream, batches)
            log = stack.enter_context(open(log_path, "a", encoding="utf-8")) if main else None
            tb = TensorBoardLog(out_dir / "tb", purge_step=start + 1 if start else None) if main and "tensorboard" in loggers else None
            if tb is not None:
                stack.callback(tb.close)
            for it in range(start + 1, total + 1):
                model.train()
                recipe.train()
                batch = next(batches)
                if settings.compile and it == start + 1:
                    try:
                        logs = step(it, batch)
                    except (TrainingDiverged, UserError):
                        raise
                    except Exception as exc:
                        raise TrainingSetupError(
                            f"train.compile: torch.compile failed on the first step ({_first_line(exc)}); set train.compile: false"
                        ) from None
                else:
                    logs = step(it, batch)
                for k, v in logs.items():
                    running.setdefault(k, []).append(v)

                at_log = it % settings.log_every == 0 or it == total
                validating = it % settings.val_every == 0 or it == total
                # under DDP every rank must stop at the same iteration: agree at log intervals
                stopping = ddp.any_rank(stop.requested, device) if ctx.enabled and (at_log or validating) else (
                    stop.requested and not ctx.enabled)
                if at_log or validating or stopping:
                    guard(it, weights=validating or stopping)

                record: dict | None = None
                if at_log:
                    record = {"iteration": it, **{k: float(np.mean(v)) for k, v in running.items()}}
                    running = {}
                improved = improved_raw = False
                if validating:
                    if main:
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
                    if ctx.enabled:
                        stopped_early = bool(ddp.broadcast_object(stopped_early))
                if record is not None:
                    # wall seconds of training so far (validation included, resumes added up)
                    record["seconds"] = round(elapsed + (time.perf_counter() - t0), 3)
                    line = json.dumps(record) + "\n"
                    logged += line
                    if log is not None:
                        log.write(line)
                        log.flush()
                    if tb is not None:
                        tb.write(record)
                if validating:
                    finished = stopped_early or it == total
                    checkpoint(it)  # first the one atomic checkpoint, then the exports
                    if improved:
                        _save_best(best_path, ema.module if ema is not None else model, best)
                    if improved_raw:
                        _save_best(best_raw_path, model, best_raw)
                    if tb is not None:
                        tb.flush()
                elif stopping:
                    checkpoint(it)
                if progress is not None:
                    progress(it, total, logs)
                if stopped_early:
                    break
                if stopping and not finished:
                    raise TrainingInterrupted(
                        f"method '{method.name}': stopped by {_signal_name(stop.signum)} at iteration {it} of {total}; "
                        f"checkpoint written to {resume_path}; rerun the same command to resume from it",
                        signum=stop.signum, iteration=it,
                    )

    if ctx.enabled:
        best, best_raw = ddp.broadcast_object(best), ddp.broadcast_object(best_raw)
    seconds = elapsed + (time.perf_counter() - t0)
    engine = {
        "precision": precision,
        "channels_last": settings.channels_last,
        "compile": settings.compile,
        "threads": torch.get_num_threads() if device.type == "cpu" else None,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "unset"),
        "ema_decay": settings.ema_decay,
        "discriminator_start": d_start if disc is not None else None,
        "loader_workers": workers,
        "world_size": ctx.world_size,
        "deterministic": bool(deterministic),
        "cudnn_benchmark": device.type == "cuda" and not deterministic,
        "log": list(loggers),
    }
    return TrainResult(best["iteration"], best["psnr"], it, seconds, resumed_from, recipe.describe(),
                       stopped_early=stopped_early, notes=notes, engine=engine)


def _close_stream(batches) -> None:
    """Stop a batch stream: DataLoader workers are shut down, a generator closed."""
    shutdown = getattr(batches, "_shutdown_workers", None) or getattr(batches, "close", None)
    if shutdown is not None:
        shutdown()


def _diverged_message(name: str, what: str, bad: int, settings: TrainSettings, precision: str, last: int, resume_path: Path) -> str:
    fixes = [f"lower train.lr (now {settings.lr:g})"]
    fixes.append(f"lower train.grad_clip (now {settings.grad_clip:g})" if settings.grad_clip > 0 else "set train.grad_clip (e.g. 1.0)")
    if precision != "fp32":
        fixes.append(f"set train.precision fp32 (now {precision})")
    kept = f"the last good checkpoint (iteration {last}, {resume_path}) is kept" if last > 0 else "no checkpoint had been written yet"
    when = f"at iteration {bad}" if what == "loss" else f"by iteration {bad}"
    return (f"method '{name}': training diverged: the {what} became NaN/inf {when}; "
            f"{', '.join(fixes[:-1])} or {fixes[-1]}; {kept}")


def _backward_and_step(loss: torch.Tensor, opt: torch.optim.Optimizer, params: list[torch.Tensor], clip: float, scaler,
                       sync: list[torch.Tensor] | None = None) -> None:
    """Backward, (DDP: average the gradients of ``sync``, parameters outside the DDP module),
    clip, step; with a GradScaler for fp16 (fused Adam takes the scale: no host sync)."""
    if scaler is not None:
        scaler.scale(loss).backward()
        if sync:
            ddp.allreduce_grads(sync)
        if clip > 0:
            scaler.unscale_(opt)
            nn.utils.clip_grad_norm_(params, clip)
        scaler.step(opt)
        return
    loss.backward()
    if sync:
        ddp.allreduce_grads(sync)
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
