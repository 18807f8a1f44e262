"""The run log: ``train.jsonl`` (one JSON line per log interval and per validation) and,
with ``log=("tensorboard",)``, the same records as TensorBoard scalars under ``<out_dir>/tb/``.

:class:`RunLog` is the one object the loop writes records to.  It also keeps the step logs
of the current interval (tensors, read with ONE device-to-host copy when the interval ends),
the text of the log so far (it goes into the resume checkpoint, so log and checkpoint
cannot disagree), and the wall seconds of training (resumes added up).  On resume,
:func:`reconcile_log` makes ``train.jsonl`` equal the checkpoint's copy (lines past it,
including a torn last line, are dropped).  Only rank 0 writes files.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from lpsr.errors import UserError
from lpsr.io import write_text

#: what ``log=`` accepts
LOGGERS = ("tensorboard",)


def check_loggers(loggers: tuple[str, ...]) -> None:
    for name in loggers:
        if name not in LOGGERS:
            raise UserError(f"--log {name}: unknown logger; use one of: {', '.join(LOGGERS)}")


def materialise(running: dict[str, list]) -> dict[str, list[float]]:
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


#: at most this many steps' logs are held as tensors: each one costs far more memory than
#: its float (about 19 KB a step for tiny on the CPU), so a long ``log_every`` grew without
#: bound; reading them costs one device-to-host copy per this many steps
READ_EVERY = 256


class RunLog:
    def __init__(self, out_dir: Path, loggers: tuple[str, ...] = (), main: bool = True) -> None:
        self.path, self.tb_dir = Path(out_dir) / "train.jsonl", Path(out_dir) / "tb"
        self.loggers, self.main = tuple(loggers), main
        self.text = ""  #: the log so far (what the checkpoint holds)
        self.running: dict[str, list] = {}  #: step logs of the current interval
        self._read: dict[str, int] = {}  #: how many of each key's values are floats already
        self._unread = 0  #: steps added since the last read
        self.elapsed, self.t0 = 0.0, time.perf_counter()
        self._file, self._tb = None, None

    # -- the checkpoint's part ------------------------------------------------------
    def state_dict(self) -> dict:
        self.read()
        return {"log": self.text, "running": {k: list(v) for k, v in self.running.items()}, "seconds": self.seconds()}

    def load_state_dict(self, state: dict) -> None:
        self.text, self.elapsed = state["log"], float(state["seconds"])
        self.running = {k: list(v) for k, v in (state.get("running") or {}).items()}
        self._read, self._unread = {k: len(v) for k, v in self.running.items()}, 0

    # -- writing ----------------------------------------------------------------------
    def open(self, start: int) -> "RunLog":
        """Open the files for appending (rank 0); the clock restarts here."""
        self.t0 = time.perf_counter()
        if self.main:
            self._file = open(self.path, "a", encoding="utf-8")
            if "tensorboard" in self.loggers:
                self._tb = TensorBoardLog(self.tb_dir, purge_step=start + 1 if start else None)
        return self

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        if self._tb is not None:
            self._tb.close()
        self._file = self._tb = None

    def __enter__(self) -> "RunLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def seconds(self) -> float:
        """Wall seconds of training so far (validation included, resumes added up)."""
        return self.elapsed + (time.perf_counter() - self.t0)

    def add(self, logs: dict) -> None:
        for k, v in logs.items():
            self.running.setdefault(k, []).append(v)
        self._unread += 1
        if self._unread >= READ_EVERY:
            self.read()

    def read(self) -> None:
        """Turn the step logs added since the last read into floats (one device-to-host copy)."""
        tail = {k: vals[self._read.get(k, 0):] for k, vals in self.running.items()}
        for k, floats in materialise(tail).items():
            self.running[k][self._read.get(k, 0):] = floats
            self._read[k] = len(self.running[k])
        self._unread = 0

    def interval(self, it: int) -> dict:
        """The record of the interval that ends at ``it``: the mean of each logged value."""
        self.read()
        record = {"iteration": it, **{k: float(np.mean(v)) for k, v in self.running.items()}}
        self.running, self._read = {}, {}
        return record

    def write(self, record: dict) -> None:
        record["seconds"] = round(self.seconds(), 3)
        line = json.dumps(record) + "\n"
        self.text += line
        if self._file is not None:
            self._file.write(line)
            self._file.flush()
        if self._tb is not None:
            self._tb.write(record)

    def flush(self) -> None:
        if self._tb is not None:
            self._tb.flush()


def reconcile_log(log_path: Path, logged: str, iteration: int, notes: list[str]) -> None:
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
