"""What running one method ends with: a :class:`MethodOutcome` (finished, cached or failed),
a :class:`Failure` record (why a method failed, in one line) or :class:`StoppedBySignal`
(the run was stopped; the rerun resumes).

These are plain picklable values: a method's process (:mod:`bench.isolation`) sends them
back to the parent over a pipe.
"""
from __future__ import annotations

import signal
import traceback
from dataclasses import dataclass
from typing import Any

from lpsr.errors import UserError, os_error_message


@dataclass
class MethodOutcome:
    name: str
    status: str  # trained | loaded | evaluated | cached | failed
    result: dict[str, Any]

    @property
    def failed(self) -> bool:
        return self.status == "failed"


def one_line(text: str, limit: int = 300) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


@dataclass(frozen=True)
class Failure:
    """Why a method ended without a result.

    kind: ``user`` (a :class:`UserError`: a setting or file to change; no traceback),
    ``diverged`` (NaN/inf loss: ``TrainingDiverged``; no traceback), ``oom`` (out of memory,
    or SIGKILL, which is what the kernel's out-of-memory killer sends) or ``crash`` (anything
    else: a bug, with its traceback)."""

    type: str
    reason: str
    kind: str = "crash"
    traceback: str | None = None

    @classmethod
    def from_exception(cls, exc: BaseException) -> "Failure":
        name = type(exc).__name__
        reason = one_line(str(exc) or name)
        if name == "TrainingDiverged":
            return cls(name, reason, "diverged")
        if isinstance(exc, UserError):
            return cls(name, reason, "user")
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        if isinstance(exc, MemoryError) or name == "OutOfMemoryError" or "out of memory" in str(exc).lower():
            return cls(name, one_line(f"out of memory: {exc}" if str(exc) else "out of memory"), "oom", tb)
        if isinstance(exc, OSError) and exc.errno is not None and exc.filename:
            return cls(name, one_line(os_error_message(exc, "accessing")), "user")
        return cls(name, reason, "crash", tb)

    @classmethod
    def from_exit(cls, exitcode: int | None) -> "Failure":
        """A process that ended without saying why (killed by a signal or exited early)."""
        if exitcode is not None and exitcode < 0:
            try:
                sig = signal.Signals(-exitcode).name
            except ValueError:
                sig = f"signal {-exitcode}"
            why = f"the method's process was killed by {sig}"
            if -exitcode == signal.SIGKILL:
                why += " (out of memory? the kernel's OOM killer sends SIGKILL)"
            return cls("ProcessKilled", why, "oom" if -exitcode == signal.SIGKILL else "crash")
        return cls("ProcessExit", f"the method's process exited with status {exitcode} without a result")


class StoppedBySignal(KeyboardInterrupt):
    """The run was stopped by a signal (``signum``) while a method's process ran; the CLI
    prints the resume message (exit 143 for SIGTERM, 130 for SIGINT)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
