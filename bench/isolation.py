"""Run a function in a spawned child process and get its return value, or a failure record,
back: a crash, an out-of-memory kill or a NaN in one method is a failed row of the
leaderboard, not the end of the run (the way timm's bulk runner runs one process per model).

:func:`run_in_child` knows nothing of methods or runs.  It spawns a child (``multiprocessing``
``spawn``: a fresh interpreter, no inherited CUDA context, threads or locks) that calls
``target(job, report, make_bar)`` -- ``target`` a module-level function, ``job`` a small
picklable description from which the child rebuilds its inputs -- and sends the messages,
progress and return value back over a pipe.  The parent:

* forwards SIGINT / SIGTERM to the running child and waits for it (a training loop finishes
  the current iteration, writes a checkpoint and stops with ``TrainingInterrupted``, a
  ``KeyboardInterrupt``); the child reports that and the parent raises
  :class:`~bench.outcome.StoppedBySignal` (a stop is never a failure; the rerun resumes);
* returns a :class:`~bench.outcome.Failure` (exception type, one-line reason, a crash's
  traceback) when the child raises or dies (SIGKILL from the kernel's out-of-memory killer,
  a segfault); the caller records it and goes on.

The child runs in its own process group, so a Ctrl-C in the terminal reaches it once (through
the parent), and it asks the kernel for SIGKILL when the parent dies (Linux), so a killed
parent never leaves a child writing into a run directory whose lock the next run takes over.

Under ``torchrun`` (``WORLD_SIZE`` > 1) every rank runs its methods in-process instead (the
ranks of one method must meet in one process group; :mod:`lpsr.train.ddp`).
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
from typing import Any, Callable

from bench.outcome import Failure, StoppedBySignal, one_line
from bench.progress import Bar, BarFactory, Reporter
from lpsr.errors import UserError

#: ``--isolation`` values
MODES = ("process", "none")
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: at most one progress message per bar this often (the pipe never fills)
PROGRESS_EVERY_S = 0.25


def use_processes(mode: str) -> bool:
    """Whether each method runs in its own process (``process``), unless torchrun started us."""
    if mode not in MODES:
        raise UserError(f"--isolation {mode!r}: use process (each method in its own process) or none (in this process)")
    if mode == "none":
        return False
    from lpsr.train.ddp import distributed_context

    return not distributed_context().enabled


# --------------------------------------------------------------------------- the child
class _Sender:
    """The child's end of the pipe: messages, throttled progress bars, the outcome."""

    def __init__(self, conn) -> None:
        self.conn = conn
        self.lock = threading.Lock()
        self.next_bar = 0
        self.broken = False

    def send(self, msg: tuple) -> None:
        with self.lock:
            if self.broken:
                return
            try:
                self.conn.send(msg)
            except (BrokenPipeError, OSError):
                # the parent is gone: stop the way a SIGTERM would (checkpoint, then stop)
                self.broken = True
                os.kill(os.getpid(), signal.SIGTERM)

    def bar(self, label: str, total: int) -> Callable[[int], None]:
        self.next_bar += 1
        bar_id, last = self.next_bar, [0.0]
        self.send(("bar", bar_id, label, total))

        def update(completed: int) -> None:
            now = time.monotonic()
            if completed >= total or now - last[0] >= PROGRESS_EVERY_S:
                last[0] = now
                self.send(("update", bar_id, completed))

        return update


def _parent_death_signal(sig: int) -> None:
    """Linux: the kernel sends ``sig`` to this process when its parent dies."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(sig), 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:  # pragma: no cover - exotic libc
        pass


class _ChildStop(KeyboardInterrupt):
    """SIGTERM in the child before the training loop takes the signals over."""


def _on_child_sigterm(signum, frame) -> None:
    raise _ChildStop()


def child_main(target: Callable[[Any, Reporter, BarFactory], Any], job: Any, conn, parent_pid: int) -> None:
    """Entry point of the child process (module level: ``spawn`` imports it by name)."""
    try:
        os.setpgid(0, 0)  # Ctrl-C reaches the parent only; it forwards one signal
    except OSError:
        pass
    _parent_death_signal(signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        sys.exit(130)
    signal.signal(signal.SIGTERM, _on_child_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    preempt = getattr(signal, os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "SIGUSR2"), None)
    if preempt is not None and preempt not in STOP_SIGNALS:
        # submitit's timeout / preemption signal is meant for the job process, which asks
        # this one to checkpoint (SIGTERM); its default action would kill us mid-write
        signal.signal(preempt, signal.SIG_IGN)
    sender = _Sender(conn)
    code = 0
    try:
        value = target(job, lambda message: sender.send(("say", message)), sender.bar)
        sender.send(("done", value))
    except KeyboardInterrupt as exc:  # TrainingInterrupted (checkpoint written), Ctrl-C, SIGTERM
        signum = getattr(exc, "signum", None) or (signal.SIGTERM if isinstance(exc, _ChildStop) else signal.SIGINT)
        sender.send(("interrupted", type(exc).__name__, one_line(str(exc)), int(signum)))
        code = 130
    except BaseException as exc:  # noqa: BLE001 - every failure becomes a failure record
        if isinstance(exc, SystemExit):
            raise
        sender.send(("failed", Failure.from_exception(exc)))
        code = 2 if isinstance(exc, UserError) else 1
    finally:
        try:
            conn.close()
        except OSError:
            pass
    sys.exit(code)


# --------------------------------------------------------------------------- the parent
#: under Slurm a SIGTERM reaches every process of the job, the method's process too: the parent
#: forwards it only if the method is still running this many seconds later
SLURM_TERM_GRACE_S = 20.0


class _Forwarder:
    """While a child runs: SIGINT / SIGTERM to the parent are forwarded to it (once each)."""

    def __init__(self) -> None:
        self.proc = None
        self.received: int | None = None
        self.old: dict[int, Any] = {}
        #: Slurm (scancel, time limit, preemption) signals every process of the job: do not
        #: send the method's process a second SIGTERM (a second signal means "stop at once")
        self.term_reaches_child = bool(os.environ.get("SLURM_JOB_ID"))
        self.deferred_at: float | None = None

    def _handle(self, signum, frame) -> None:
        if self.received is None or signum == signal.SIGTERM:
            self.received = signum
        if signum == signal.SIGTERM and self.term_reaches_child and self.deferred_at is None:
            self.deferred_at = time.monotonic()
            return
        self.forward(signum)

    def forward(self, signum: int) -> None:
        proc = self.proc
        if proc is not None and proc.pid is not None and proc.exitcode is None:
            try:
                os.kill(proc.pid, signum)
            except ProcessLookupError:
                pass

    def check_deferred(self) -> None:
        """A SIGTERM kept back under Slurm: forward it when the method did not stop by itself."""
        if self.deferred_at is not None and time.monotonic() - self.deferred_at > SLURM_TERM_GRACE_S:
            self.deferred_at = float("inf")
            self.forward(signal.SIGTERM)

    def __enter__(self) -> "_Forwarder":
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self.old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, old in self.old.items():
            signal.signal(sig, old)


#: the process running a method now (for a submitit job's checkpoint: see bench.sweep)
CURRENT: dict[str, Any] = {}


def stop_current_child(sig: int = signal.SIGTERM, timeout: float = 120.0) -> bool:
    """Ask the running method's process to checkpoint and stop; wait up to ``timeout`` s."""
    proc = CURRENT.get("proc")
    if proc is None or proc.exitcode is not None:
        return False
    forwarder = CURRENT.get("forwarder")
    if forwarder is not None and forwarder.received is None:
        forwarder.received = sig
    try:
        os.kill(proc.pid, sig)
    except ProcessLookupError:
        return False
    proc.join(timeout)
    return proc.exitcode is not None


def run_in_child(target: Callable[[Any, Reporter, BarFactory], Any], job: Any, *, name: str, report: Reporter,
                 make_bar: BarFactory) -> Any:
    """``target(job, report, make_bar)`` in a spawned child: its return value, or a
    :class:`Failure` when it raised or died.  Messages and progress bars it sends go to
    ``report`` and ``make_bar`` here.  Raises :class:`StoppedBySignal` (a
    ``KeyboardInterrupt``) when the run was stopped."""
    ctx = multiprocessing.get_context("spawn")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=child_main, args=(target, job, send, os.getpid()), name=name)
    bars: dict[int, Bar] = {}
    final: tuple | None = None
    with _Forwarder() as forwarder:
        forwarder.proc = proc
        CURRENT.update(proc=proc, forwarder=forwarder)
        try:
            proc.start()
            send.close()
            exited_at: float | None = None
            while True:
                forwarder.check_deferred()
                try:
                    ready = recv.poll(0.2)
                except (EOFError, OSError):
                    break
                if ready:
                    try:
                        msg = recv.recv()
                    except (EOFError, OSError):
                        break
                    kind = msg[0]
                    if kind == "say":
                        report(msg[1])
                    elif kind == "bar":
                        bars[msg[1]] = make_bar(msg[2], msg[3])
                    elif kind == "update":
                        bars.get(msg[1], lambda c: None)(msg[2])
                    else:
                        final = msg
                    continue
                if proc.exitcode is not None:
                    # exited; a worker that inherited the pipe may keep it open: drain briefly
                    exited_at = exited_at or time.monotonic()
                    if time.monotonic() - exited_at > 1.0:
                        break
            proc.join(30)
            if proc.exitcode is None:
                proc.terminate()
                proc.join(10)
        finally:
            CURRENT.clear()
            recv.close()
    stopped = forwarder.received
    if final is not None and final[0] == "done":
        if stopped is not None:  # finished just as the stop came: the caller keeps nothing more
            raise StoppedBySignal(stopped)
        return final[1]
    if final is not None and final[0] == "interrupted" and final[2]:
        report(final[2])  # e.g. "stopped by SIGTERM at iteration 17 of 300; checkpoint written to ..."
    if stopped is not None or (final is not None and final[0] == "interrupted"):
        raise StoppedBySignal(stopped if stopped is not None else (final[3] if final is not None and len(final) > 3 else signal.SIGINT))
    return final[1] if final is not None and final[0] == "failed" else Failure.from_exit(proc.exitcode)
