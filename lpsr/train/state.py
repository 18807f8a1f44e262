"""Everything a training run changes as it goes, in one object with ``state_dict()``.

:class:`TrainState` holds the network and its recipe, the optimisers and their lr
schedules, the GradScaler, the EMA of the weights, the discriminator, the step counters,
the best validation scores and whether the run has finished.  :func:`build_state` makes it
the one way the loop, the benchmarks and ``bench check-method`` do, so all of them run the
same :func:`lpsr.train.step.train_step`.

``state_dict()`` is the body of the resume checkpoint (:mod:`lpsr.train.checkpoint` adds
the run's identity and the log); the RNG state is in it, and the sampler position is the
iteration (the patch stream is keyed by the batch index).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from lpsr.method import Method, TrainRecipe
from lpsr.train import ddp
from lpsr.train.errors import TrainingSetupError, first_line
from lpsr.train.precision import grad_scaler, resolve_precision
from lpsr.train.schedule import LrSchedule
from lpsr.train.settings import TrainSettings
from lpsr.train.validate import Scores


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


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _cpu(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


@dataclass(eq=False)
class TrainState:
    method: Method
    model: nn.Module
    recipe: TrainRecipe
    settings: TrainSettings
    device: torch.device
    precision: str
    opt_g: torch.optim.Optimizer
    sched_g: LrSchedule
    params_g: list[torch.Tensor]  #: every parameter the generator's optimiser steps (clipped together)
    disc: nn.Module | None = None
    opt_d: torch.optim.Optimizer | None = None
    sched_d: LrSchedule | None = None
    d_start: int = 0
    scaler: torch.amp.GradScaler | None = None
    ema: Any = None  #: timm ModelEmaV3
    fwd: nn.Module | None = None  #: what the step calls: the model, DDP-wrapped / compiled
    sync_g: list[torch.Tensor] | None = None  #: DDP: parameters outside the DDP module, averaged by the step
    sync_d: list[torch.Tensor] | None = None
    iteration: int = 0  #: iterations done (= batches drawn)
    d_steps: int = 0  #: discriminator steps done
    scores: Scores = field(default_factory=Scores)
    finished: bool = False
    stopped_early: bool = False
    first_bad: torch.Tensor | None = None  #: device-side: first iteration with a non-finite loss (0: none)

    @property
    def total(self) -> int:
        return self.settings.iterations

    @property
    def eval_model(self) -> nn.Module:
        """The weights that are validated and exported as best (the EMA when there is one)."""
        return self.ema.module if self.ema is not None else self.model

    def weights_finite(self) -> bool:
        params = [p.detach() for p in self.params_g] + ([p.detach() for p in self.disc.parameters()] if self.disc is not None else [])
        return not params or bool(torch.stack([p.isfinite().all() for p in params]).all())

    def state_dict(self) -> dict[str, Any]:
        return {
            "iteration": self.iteration,
            "model": _cpu(self.model),
            "ema": _cpu(self.ema.module) if self.ema is not None else None,
            "recipe": self.recipe.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict() if self.opt_d is not None else None,
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "sampler": self.iteration,  # batches drawn = iterations done (the stream is keyed by k)
            "rng": rng_state(),
            "d_steps": self.d_steps,
            **self.scores.state_dict(),
            "finished": self.finished,
            "stopped_early": self.stopped_early,
        }

    def load_state_dict(self, state: dict[str, Any], rng: dict | None = None) -> None:
        """Restore from :meth:`state_dict` (``rng``: this rank's RNG state under DDP)."""
        self.model.load_state_dict(state["model"])
        if self.ema is not None:
            self.ema.module.load_state_dict(state["ema"])
        self.recipe.load_state_dict(state["recipe"])
        self.opt_g.load_state_dict(state["opt_g"])
        if self.opt_d is not None:
            self.opt_d.load_state_dict(state["opt_d"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        set_rng_state(rng if rng is not None else state["rng"])
        self.iteration, self.d_steps = int(state["sampler"]), int(state["d_steps"])
        self.scores.load_state_dict(state)
        self.finished, self.stopped_early = bool(state["finished"]), bool(state["stopped_early"])


def build_state(method: Method, model: nn.Module, settings: TrainSettings, device: torch.device, seed: int = 0,
                rank: int = 0) -> tuple[TrainState, str | None]:
    """Seed torch (rank ``r`` > 0: ``seed + RANK_SEED_STRIDE * r``), move the network to
    ``device``, build its recipe, optimisers, schedules, scaler, EMA and discriminator.
    Returns the state and a note when the precision asked for cannot be honoured here.

    The order of construction is the order of RNG use (a recipe's discriminator and loss
    networks are initialised from the seeded RNG): changing it changes every result."""
    torch.manual_seed(seed + RANK_SEED_STRIDE * rank)
    precision, note = resolve_precision(settings.precision, device, method.bf16_quality)
    model.to(device)
    recipe: TrainRecipe = method.recipe(model).to(device)
    if settings.channels_last:
        model.to(memory_format=torch.channels_last)
        recipe.to(memory_format=torch.channels_last)
    total = settings.iterations
    params_g = list(model.parameters()) + recipe.generator_parameters()
    opt_g = make_adam(params_g, settings.lr, settings.betas, device)
    disc = recipe.discriminator()
    d_start = discriminator_start(recipe, total)
    opt_d = make_adam(list(disc.parameters()), settings.lr_for_discriminator(), settings.betas, device) if disc is not None else None
    ema = None
    if settings.ema_decay > 0:
        from timm.utils import ModelEmaV3

        ema = ModelEmaV3(model, decay=settings.ema_decay, use_warmup=True)
    state = TrainState(
        method=method, model=model, recipe=recipe, settings=settings, device=device, precision=precision,
        opt_g=opt_g, sched_g=LrSchedule.of(settings, settings.lr, span=total), params_g=params_g,
        disc=disc, opt_d=opt_d, d_start=d_start,
        sched_d=LrSchedule.of(settings, settings.lr_for_discriminator(), span=total - d_start, offset=d_start) if disc is not None else None,
        scaler=grad_scaler(precision, device), ema=ema, fwd=_forward(model, settings, device),
        sync_g=recipe.generator_parameters() if ddp.is_initialized() else None,
        sync_d=list(disc.parameters()) if ddp.is_initialized() and disc is not None else None,
        first_bad=torch.zeros((), dtype=torch.long, device=device),
    )
    return state, note


def _forward(model: nn.Module, settings: TrainSettings, device: torch.device) -> nn.Module:
    """What the step calls: the network, DDP-wrapped under torchrun, compiled with ``compile``."""
    fwd = ddp.wrap(model, device)
    if settings.compile:
        try:
            fwd = torch.compile(fwd)
        except Exception as exc:  # pragma: no cover - depends on the installation
            raise TrainingSetupError(f"train.compile: torch.compile is unavailable here ({first_line(exc)}); set train.compile: false") from None
    return fwd


#: rank r > 0 seeds torch with ``seed + RANK_SEED_STRIDE * r`` (rank 0: the single-process seed)
RANK_SEED_STRIDE = 1_000_003
