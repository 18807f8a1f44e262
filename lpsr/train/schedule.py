"""Learning-rate schedules: linear warm-up, then cosine, constant or step -- a pure ``lr_at(n)``.

A schedule is a pure function of the number of optimiser steps already taken (nanoGPT's
``get_lr(it)``), so resume needs no scheduler state.  With ``n`` steps taken (``n =
iteration - 1`` for the generator), the lr of the next step is:

* warm-up (``warmup_iterations`` = W > 0), ``n < W``: ``n * (lr / W)`` (linear from 0);
* ``cosine``: ``lr * (1 + cos(pi * (n - W) / (span - W))) / 2`` -- the cosine spans the
  iterations after the warm-up (without warm-up this is exactly torch's
  ``CosineAnnealingLR(T_max=iterations)`` stepped once per iteration);
* ``constant``: ``lr``;
* ``step``: ``lr * lr_gamma ** k``, k = how many of ``lr_steps`` are <= the iteration
  (the lr drops AT each listed iteration); for a discriminator that starts at iteration
  S+1, only the milestones after S count, so it starts at its full ``lr_d``.

The discriminator of a GAN recipe counts its own steps: its schedule spans the iterations
in which it trains (see :func:`lpsr.train.state.discriminator_start`), so it is not decayed
while the generator pre-trains.

Hand-written rather than timm's ``CosineLRScheduler`` / ``MultiStepLRScheduler`` (which the
harness used before): those mutate an optimiser's ``param_groups`` and so cannot be asked
for the lr of an iteration.  The expressions are timm's, operation for operation, so the
values are bit-identical (``tests/test_train_loop.py`` checks them against timm).
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import torch

from lpsr.train.settings import TrainSettings


@dataclass(frozen=True)
class LrSchedule:
    base: float  #: the peak lr (``lr`` or ``lr_d``)
    span: int  #: how many steps this optimiser takes in the run
    kind: str = "cosine"  #: cosine | constant | step
    warmup: int = 0
    milestones: tuple[int, ...] = ()  #: step: drops, counted from this optimiser's first step
    gamma: float = 0.5

    @classmethod
    def of(cls, settings: TrainSettings, base: float, span: int, offset: int = 0) -> "LrSchedule":
        """``span``: how many steps this optimiser takes in the run; ``offset``: the
        iteration before its first step (``lr_steps`` are absolute iterations)."""
        span = max(int(span), 1)
        warm = settings.warmup_iterations if settings.warmup_iterations < span else 0
        # milestones at or before this optimiser's first step (a late discriminator) do not apply
        steps = tuple(m - offset for m in settings.lr_steps if m > offset) if settings.schedule == "step" else ()
        return cls(float(base), span, settings.schedule, warm, steps, float(settings.lr_gamma))

    def lr_at(self, n: int) -> float:
        """The lr of the next step after ``n`` steps taken."""
        if n < self.warmup:
            return n * (self.base / self.warmup)
        if self.kind == "cosine":
            t, t_i = n - self.warmup, self.span - self.warmup
            if t >= t_i:  # past the one cycle (never reached in a run: n <= span - 1)
                return 0.0
            return 0.5 * self.base * (1 + math.cos(math.pi * t / t_i))
        # constant and step (timm's MultiStepLRScheduler: milestone m applies from n = m - 1)
        return self.base * (self.gamma ** bisect.bisect_right(self.milestones, n + 1))

    def apply(self, opt: torch.optim.Optimizer, n: int) -> float:
        """Set ``opt``'s lr for its next step, after ``n`` steps taken; return it."""
        lr = self.lr_at(n)
        for group in opt.param_groups:
            group["lr"] = lr
        return lr
