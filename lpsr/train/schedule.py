"""Learning-rate schedules (timm's schedulers): linear warm-up, then cosine, constant or step.

A schedule is a pure function of the number of optimiser steps already taken, so resume
needs no scheduler state.  With ``n`` steps taken (``n = iteration - 1`` for the
generator), the lr of the next step is:

* warm-up (``warmup_iterations`` = W > 0), ``n < W``: ``lr * n / W`` (timm's linear
  warm-up from 0);
* ``cosine``: ``lr * (1 + cos(pi * (n - W) / (span - W))) / 2`` -- the cosine spans the
  iterations after the warm-up (without warm-up this is exactly torch's
  ``CosineAnnealingLR(T_max=iterations)`` stepped once per iteration);
* ``constant``: ``lr``;
* ``step``: ``lr * lr_gamma ** k``, k = how many of ``lr_steps`` are <= the iteration
  (the lr drops AT each listed iteration); for a discriminator that starts at iteration
  S+1, only the milestones after S count, so it starts at its full ``lr_d``.

The discriminator of a GAN recipe counts its own steps: its schedule spans the iterations
in which it trains (see :func:`lpsr.train.loop.discriminator_start`), so it is not decayed
while the generator pre-trains.
"""
from __future__ import annotations

import torch
from timm.scheduler import CosineLRScheduler, MultiStepLRScheduler
from timm.scheduler.scheduler import Scheduler

from lpsr.train.settings import TrainSettings


class Schedule:
    def __init__(self, opt: torch.optim.Optimizer, settings: TrainSettings, span: int, offset: int = 0) -> None:
        """``span``: how many steps this optimiser takes in the run; ``offset``: the
        iteration before its first step (``lr_steps`` are absolute iterations)."""
        self.opt, self.offset = opt, offset
        span = max(int(span), 1)
        warm = settings.warmup_iterations if settings.warmup_iterations < span else 0
        self.sched: Scheduler
        if settings.schedule == "cosine":
            self.sched = CosineLRScheduler(
                opt, t_initial=span - warm, lr_min=0.0, warmup_t=warm, warmup_lr_init=0.0, warmup_prefix=True, t_in_epochs=False
            )
        else:
            # milestones are absolute iterations; ones at or before this optimiser's first
            # step (a discriminator starting late) do not apply to it
            steps = [m - offset for m in settings.lr_steps if m > offset] if settings.schedule == "step" else []
            self.sched = MultiStepLRScheduler(
                opt, decay_t=steps, decay_rate=settings.lr_gamma, warmup_t=warm, warmup_lr_init=0.0, warmup_prefix=False, t_in_epochs=False
            )

    def set(self, steps_taken: int) -> float:
        """Set the lr for the next optimiser step, after ``steps_taken`` steps; return it."""
        self.sched.step_update(steps_taken)
        return float(self.opt.param_groups[0]["lr"])

    def lr(self) -> float:
        return float(self.opt.param_groups[0]["lr"])
