"""One process per method: a crash, an out-of-memory kill or a NaN in one method is a failed
row of the leaderboard, not the end of the run (the way timm's bulk runner runs one process
per model).

The parent (:meth:`bench.runner.Runner.run`) has planned and checked everything before the
first method starts.  For each method it spawns a child (``multiprocessing`` ``spawn``: a
fresh interpreter, no inherited CUDA context, threads or locks) that receives the runner
(plan, data, resolved settings) pickled, runs :meth:`Runner.run_method` for that one method
and sends its messages, progress and outcome back over a pipe.  The parent:

* forwards SIGINT / SIGTERM to the running child and waits for it: the training loop finishes
  the current iteration, writes a checkpoint and stops (``TrainingInterrupted``, a
  ``KeyboardInterrupt``); the child reports that and the parent stops with the resume message
  (a stop is never a failed row; the rerun resumes);
* records a failure -- ``result.json`` with ``status: failed``, the exception type and a
  one-line reason, a crash's traceback in ``failure.log`` -- when the child raises or dies
  (SIGKILL from the kernel's out-of-memory killer, a segfault), and goes on with the next
  method.

The child runs in its own process group, so a Ctrl-C in the terminal reaches it once (through
the parent), and it asks the kernel for SIGKILL when the parent dies (Linux), so a killed
``bench run`` never leaves a child writing into a run directory whose lock the next run takes
over (the last checkpoint is complete: every write is atomic).

Under ``torchrun`` (``WORLD_SIZE`` > 1) every rank runs its methods in-process instead (the
ranks of one method must meet in one process group; :mod:`lpsr.train.ddp`).
"""
from __future__ import annotations

import copy
import multiprocessing
import os
import signal
import sys
import threading
import time
import traceback
from typing import TYPE_CHECKING, Any, Callable

from lpsr.errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    from bench.runner import MethodOutcome, Runner
    from lpsr.method import Method

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


# --------------------------------------------------------------------------- failures
def one_line(text: str, limit: int = 300) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def describe_exception(exc: BaseException) -> dict[str, Any]:
    """``{type, reason, kind, traceback}`` of an exception that ended a method.

    kind: ``user`` (a :class:`UserError`: a setting or file to change; no traceback),
    ``diverged`` (NaN/inf loss: ``TrainingDiverged``; no traceback), ``oom`` (out of memory)
    or ``crash`` (anything else: a bug, with its traceback)."""
    from lpsr.errors import os_error_message

    name = type(exc).__name__
    info: dict[str, Any] = {"type": name, "reason": one_line(str(exc) or name), "kind": "crash", "traceback": None}
    if name == "TrainingDiverged":
        info["kind"] = "diverged"
    elif isinstance(exc, UserError):
        info["kind"] = "user"
    elif isinstance(exc, MemoryError) or name == "OutOfMemoryError" or "out of memory" in str(exc).lower():
        info["kind"] = "oom"
        info["reason"] = one_line(f"out of memory: {exc}" if str(exc) else "out of memory")
        info["traceback"] = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    elif isinstance(exc, OSError) and exc.errno is not None and exc.filename:
        info["kind"] = "user"
        info["reason"] = one_line(os_error_message(exc, "accessing"))
    else:
        info["traceback"] = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return info


def describe_exit(exitcode: int | None) -> dict[str, Any]:
    """A child that ended without saying why (killed by a signal or exited early)."""
    if exitcode is not None and exitcode < 0:
        try:
            sig = signal.Signals(-exitcode).name
        except ValueError:
            sig = f"signal {-exitcode}"
        why = f"the method's process was killed by {sig}"
        if -exitcode == signal.SIGKILL:
            why += " (out of memory? the kernel's OOM killer sends SIGKILL)"
        return {"type": "ProcessKilled", "reason": why, "kind": "oom" if -exitcode == signal.SIGKILL else "crash", "traceback": None}
    return {"type": "ProcessExit", "reason": f"the method's process exited with status {exitcode} without a result",
            "kind": "crash", "traceback": None}


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


def child_main(runner: "Runner", name: str, conn, parent_pid: int) -> None:
    """Entry point of a method's process (module level: ``spawn`` imports it by name)."""
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
    runner.report = lambda message: sender.send(("say", message))
    runner.progress_factory = sender.bar
    code = 0
    try:
        method = next(m for m in runner.methods if m.name == name)
        outcome = runner.run_method(method)
        sender.send(("done", outcome.status, outcome.result))
    except KeyboardInterrupt as exc:  # TrainingInterrupted (checkpoint written), Ctrl-C, SIGTERM
        signum = getattr(exc, "signum", None) or (signal.SIGTERM if isinstance(exc, _ChildStop) else signal.SIGINT)
        sender.send(("interrupted", type(exc).__name__, one_line(str(exc)), int(signum)))
        code = 130
    except BaseException as exc:  # noqa: BLE001 - every failure becomes a failed row
        if isinstance(exc, SystemExit):
            raise
        sender.send(("failed", describe_exception(exc)))
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


def run_isolated(runner: "Runner", method: "Method") -> "MethodOutcome":
    """Run ``method`` in a spawned child; return its outcome (``failed`` when it failed).
    Raises :class:`StoppedBySignal` (a ``KeyboardInterrupt``) when the run was stopped."""
    from bench.runner import MethodOutcome

    ctx = multiprocessing.get_context("spawn")
    recv, send = ctx.Pipe(duplex=False)
    child = copy.copy(runner)
    child.methods = [method]
    child.preloaded = {k: v for k, v in runner.preloaded.items() if k == method.name}
    child.report, child.progress_factory = None, None
    proc = ctx.Process(target=child_main, args=(child, method.name, send, os.getpid()), name=f"bench-{method.name}")
    bars: dict[int, Callable[[int], None]] = {}
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
                        runner.report(msg[1])
                    elif kind == "bar":
                        bars[msg[1]] = runner._bar(msg[2], msg[3])
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
        outcome = MethodOutcome(method.name, final[1], final[2])
        if stopped is not None:  # finished just as the stop came: keep it, then stop
            _raise_stop(stopped)
        return outcome
    if final is not None and final[0] == "interrupted" and final[2]:
        runner.report(final[2])  # e.g. "stopped by SIGTERM at iteration 17 of 300; checkpoint written to ..."
    if stopped is not None or (final is not None and final[0] == "interrupted"):
        _raise_stop(stopped if stopped is not None else (final[3] if final is not None and len(final) > 3 else signal.SIGINT))
    info = final[1] if final is not None and final[0] == "failed" else describe_exit(proc.exitcode)
    return runner.record_failure(method, info)


class StoppedBySignal(KeyboardInterrupt):
    """The run was stopped by a signal (``signum``) while a method's process ran; the CLI
    prints the resume message (exit 143 for SIGTERM, 130 for SIGINT)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_stop(sig: int) -> None:
    raise StoppedBySignal(sig)
