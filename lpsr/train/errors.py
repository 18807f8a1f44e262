"""How training stops when it cannot finish: diverged, interrupted, or set up wrongly."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from lpsr.errors import UserError


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


def diverged_message(name: str, what: str, bad: int, settings: Any, precision: str, last: int, resume_path: Path) -> str:
    """``what`` (loss | weights) became non-finite at/by iteration ``bad``: what to change."""
    fixes = [f"lower train.lr (now {settings.lr:g})"]
    fixes.append(f"lower train.grad_clip (now {settings.grad_clip:g})" if settings.grad_clip > 0 else "set train.grad_clip (e.g. 1.0)")
    if precision != "fp32":
        fixes.append(f"set train.precision fp32 (now {precision})")
    kept = f"the last good checkpoint (iteration {last}, {resume_path}) is kept" if last > 0 else "no checkpoint had been written yet"
    when = f"at iteration {bad}" if what == "loss" else f"by iteration {bad}"
    return (f"method '{name}': training diverged: the {what} became NaN/inf {when}; "
            f"{', '.join(fixes[:-1])} or {fixes[-1]}; {kept}")


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]
