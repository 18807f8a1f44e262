"""SIGINT / SIGTERM while training: a flag the loop reads at iteration boundaries.

The handlers are installed only while training and the previous ones restored after.  The
first signal sets the flag (the loop then writes a checkpoint and raises
:class:`TrainingInterrupted`); a second one raises it at once (the last checkpoint is kept).
"""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any

from lpsr.train.errors import TrainingInterrupted


def signal_name(signum: int | None) -> str:
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
            f"method '{self.method}': stopped at once by a second {signal_name(signum)}; the last checkpoint is kept; "
            "rerun the same command to resume from it",
            signum=signum, checkpointed=False,
        )

    def interrupted(self, iteration: int, total: int, resume_path: Any) -> TrainingInterrupted:
        """The exception the loop raises once it has checkpointed after the first signal."""
        return TrainingInterrupted(
            f"method '{self.method}': stopped by {signal_name(self.signum)} at iteration {iteration} of {total}; "
            f"checkpoint written to {resume_path}; rerun the same command to resume from it",
            signum=self.signum, iteration=iteration,
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
