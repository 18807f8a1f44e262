"""Decode plates over the cores: an ordered, lazy, chunked map a loader iterates like ``map``.

A loader's ``decode`` argument is a :data:`Mapper`: ``decode(fn, items, label, want)`` yields
``fn(item)`` for each item, in order, where ``fn`` either returns a plate or raises
:class:`~lpsr.data.record.DataError` (yielded as the exception object, so the loader skips
or raises it exactly as it would have in its own loop).  :func:`serial_map` is today's loop;
:class:`ProcessMap` runs chunks in worker processes (``concurrent.futures``
ProcessPoolExecutor, ``spawn``: a fresh interpreter, none of the parent's threads or OpenMP
state) with a bounded window of chunks in flight, so a loader that stops early (``--limit``)
cancels what it no longer needs, and shows a progress bar (plates/s).

The results are the ones the serial loop gives: the same function on the same files, read
back in the same order (the worker's OpenCV runs one thread; its warps and resizes compute
each pixel on its own, so the thread count does not change a byte).
"""
from __future__ import annotations

import math
import multiprocessing
import os
import sys
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, Callable, Iterator, Protocol, Sequence

from lpsr.data.record import DataError

#: ``update(completed)`` of one progress bar; ``make_bar(label, total) -> update``
#: (the same protocol as bench.progress.BarFactory, which lpsr does not import)
Bar = Callable[[int], None]
BarFactory = Callable[[str, int], Bar]

#: the most plates one worker decodes per task
CHUNK_MAX = 64
#: chunks in flight per worker (a small lookahead keeps every worker busy)
WINDOW_PER_WORKER = 2
#: fewer plates than this are decoded in this process: starting workers (a fresh interpreter
#: importing OpenCV each) costs about as much as decoding a few hundred photos
PARALLEL_MIN = 256


class Mapper(Protocol):
    def __call__(self, fn: Callable[[Any], Any], items: Sequence[Any], label: str, want: int | None = None) -> Iterator[Any]: ...


def _attempt(fn: Callable[[Any], Any], item: Any) -> Any:
    """``fn(item)``, or the DataError it raised (the loader decides: skip or raise)."""
    try:
        return fn(item)
    except DataError as exc:
        return exc


def _run_chunk(fn: Callable[[Any], Any], chunk: list[Any]) -> list[Any]:
    return [_attempt(fn, item) for item in chunk]


def _init_worker() -> None:
    import cv2

    cv2.setNumThreads(1)  # one process per core already


def serial_map(fn: Callable[[Any], Any], items: Sequence[Any], label: str = "", want: int | None = None) -> Iterator[Any]:
    """The loader's own loop: one item after the other in this process."""
    for item in items:
        yield _attempt(fn, item)


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def no_bar(label: str, total: int) -> Bar:
    return lambda completed: None


def terminal_bar(label: str, total: int) -> Bar:
    """A rich bar on stderr with plates/s when stderr is a terminal (a library call outside
    ``bench run``, which passes its own bars); nothing otherwise."""
    if not sys.stderr.isatty():
        return lambda completed: None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), console=Console(stderr=True), transient=True)
    task = progress.add_task(label, total=total, rate="")
    progress.start()

    def update(completed: int) -> None:
        speed = progress.tasks[0].speed
        progress.update(task, completed=completed, rate=f"{speed:.0f} plates/s" if speed else "")
        if completed >= total:
            progress.stop()

    return update


class ProcessMap:
    """:data:`Mapper` over ``workers`` processes (fewer than ``parallel_min`` plates wanted:
    in this process).  The workers start on the first parallel call and serve every split
    until :meth:`close` (``with ProcessMap() as decode: ...``)."""

    def __init__(self, workers: int | None = None, make_bar: BarFactory | None = None, chunk: int = CHUNK_MAX,
                 parallel_min: int = PARALLEL_MIN) -> None:
        self.workers = max(1, workers if workers is not None else available_cores())
        self.make_bar = make_bar or no_bar
        self.chunk = max(1, chunk)
        self.parallel_min = parallel_min
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> "ProcessMap":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _workers(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker)
        return self._pool

    def __call__(self, fn: Callable[[Any], Any], items: Sequence[Any], label: str = "decode plates", want: int | None = None) -> Iterator[Any]:
        items = list(items)
        total = len(items) if want is None else min(len(items), want)
        if total == 0:
            return
        update = self.make_bar(label, total)
        # about four chunks per worker over what is wanted: even shares, and a --limit stops soon
        size = max(1, min(self.chunk, math.ceil(total / (self.workers * 2 * WINDOW_PER_WORKER))))
        chunks = [items[i : i + size] for i in range(0, len(items), size)]
        done = 0
        if self.workers == 1 or len(chunks) < 2 or total < self.parallel_min:
            try:
                for item in items:
                    yield _attempt(fn, item)
                    done += 1
                    update(min(done, total))
            finally:
                update(total)
            return
        pool = self._workers()
        pending: deque[Future] = deque()
        try:
            queued = iter(chunks)
            for chunk in queued:
                pending.append(pool.submit(_run_chunk, fn, chunk))
                if len(pending) >= self.workers * WINDOW_PER_WORKER:
                    break
            while pending:
                results = pending.popleft().result()
                nxt = next(queued, None)
                if nxt is not None:
                    pending.append(pool.submit(_run_chunk, fn, nxt))
                for result in results:
                    yield result
                    done += 1
                    update(min(done, total))
        finally:  # also when the loader stops early: what it no longer needs is cancelled
            for future in pending:
                future.cancel()
            update(total)
