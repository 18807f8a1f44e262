"""A lock on a run directory: one ``bench run`` at a time per directory.

``<run_dir>/.lock`` holds the owner's PID, host name, start time and command line.  It is
created with ``O_CREAT | O_EXCL`` (atomic); a second live run gets a one-line
:class:`RunLockedError` naming the lock file and the PID.  A lock whose process is gone
(same host, PID no longer alive) is stale: it is taken over, and the caller is told so.
A lock written by another host cannot be checked and is never taken over; nor is a lock
that cannot be parsed (not JSON, no integer ``pid``, a folder): it counts as held, and the
error names the file to delete.
"""
from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Callable

from lpsr.errors import RunLockedError, UserError

LOCK_NAME = ".lock"


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    except OSError:
        return False
    return True


def _is_pid(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _read(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class RunLock:
    """``with RunLock(run_dir, report): ...`` holds the lock for the block."""

    def __init__(self, run_dir: str | Path, report: Callable[[str], None] = print) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self.report = report
        self.held = False

    def _create(self) -> bool:
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "argv": sys.argv}
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(info) + "\n")
        return True

    def acquire(self) -> None:
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise UserError(f"--run-dir {self.run_dir} is a file, not a folder; pass a folder path") from None
        for _ in range(3):
            if self._create():
                self.held = True
                return
            owner = _read(self.path)
            if owner is None:  # being written right now? look again in a moment
                time.sleep(0.2)
                if not self.path.exists() and not self.path.is_symlink():
                    continue
                owner = _read(self.path)
            if owner is None or not _is_pid(owner.get("pid")):
                # cannot tell whose it is, so it may be live: never take it over
                raise RunLockedError(
                    f"run directory {self.run_dir} is locked by {self.path}, which is not a readable lock file "
                    "(JSON with an integer pid); if no bench run uses this folder, delete it and rerun"
                )
            pid, host = owner.get("pid"), owner.get("host")
            if host != socket.gethostname():
                raise RunLockedError(
                    f"run directory {self.run_dir} is locked by {self.path} (PID {pid} on host {host}); "
                    "if that run is no longer running, delete the lock file"
                )
            if _pid_alive(pid) and pid != os.getpid():
                raise RunLockedError(
                    f"run directory {self.run_dir} is in use by another bench run (PID {pid}, lock {self.path}); "
                    "wait for it to finish or use another --run-dir"
                )
            self._take_over(f"a stale lock of PID {pid}, which is no longer running", owner)
        raise RunLockedError(f"could not take the lock {self.path}; another bench run keeps creating it")

    def _take_over(self, what: str, expected: dict | None) -> None:
        """Move the stale lock aside (one rename: only one taker gets it), then check it was
        the stale one and not a lock another taker created meanwhile (put that one back)."""
        aside = self.path.with_name(f"{LOCK_NAME}.stale.{os.getpid()}")
        try:
            os.replace(self.path, aside)
        except FileNotFoundError:
            return
        if _read(aside) != expected:
            try:
                os.link(aside, self.path)  # restore the live lock unless a new one exists
            except OSError:
                pass
            aside.unlink(missing_ok=True)
            owner = _read(self.path) or {}
            raise RunLockedError(
                f"run directory {self.run_dir} is in use by another bench run (PID {owner.get('pid', '?')}, lock {self.path}); "
                "wait for it to finish or use another --run-dir"
            )
        aside.unlink(missing_ok=True)
        self.report(f"run dir {self.run_dir}: took over {what} ({self.path})")

    def release(self) -> None:
        if not self.held:
            return
        owner = _read(self.path)
        if owner is not None and owner.get("pid") == os.getpid():
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
        self.held = False

    def __enter__(self) -> "RunLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
