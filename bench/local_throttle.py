"""``--array-parallelism`` for submitit's local executor, which has no such parameter and
starts every job of a batch at once (2 methods x 5 seeds = 10 trainings on 2 cores).

:class:`ThrottledExecutor` queues the submissions and starts the next one whenever a job
polled through :meth:`QueuedJob.done` / :meth:`QueuedJob.result` has ended, so at most
``limit`` jobs run at a time.  The submitting process starts the queued jobs, so it must
wait for them (``bench sweep --executor local`` waits by default).  Hand-written: submitit
offers a job-array limit only for Slurm.
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable


class QueuedJob:
    """A submitit job that may not have started yet (same ``done``/``result``/``job_id``)."""

    def __init__(self, owner: "ThrottledExecutor", fn: Callable[..., Any]) -> None:
        self.owner, self.fn, self.job = owner, fn, None

    @property
    def job_id(self) -> str:
        return self.job.job_id if self.job is not None else "(queued)"

    def done(self) -> bool:
        self.owner.pump()
        return self.job is not None and self.job.done()

    def result(self) -> Any:
        while self.job is None:
            self.owner.pump(block_on=True)
        return self.job.result()


class ThrottledExecutor:
    """Wraps a submitit executor: ``submit`` queues, at most ``limit`` jobs run at once."""

    def __init__(self, executor: Any, limit: int) -> None:
        self.executor, self.limit = executor, max(1, int(limit))
        self.queue: list[QueuedJob] = []
        self.started: list[QueuedJob] = []

    def update_parameters(self, **params: Any) -> None:
        self.executor.update_parameters(**params)

    def batch(self):
        return contextlib.nullcontext()

    def submit(self, fn: Callable[..., Any]) -> QueuedJob:
        job = QueuedJob(self, fn)
        self.queue.append(job)
        self.pump()
        return job

    def running(self) -> int:
        return sum(1 for j in self.started if not j.job.done())

    def pump(self, block_on: bool = False) -> None:
        """Start queued jobs while fewer than ``limit`` run; ``block_on``: if none could
        start, wait for the oldest running job to end first."""
        if block_on and self.queue and self.running() >= self.limit:
            oldest = next((j for j in self.started if not j.job.done()), None)  # None: it just ended
            if oldest is not None:
                with contextlib.suppress(Exception):  # its own failure is reported by its result()
                    oldest.job.wait()
        while self.queue and self.running() < self.limit:
            job = self.queue.pop(0)
            job.job = self.executor.submit(job.fn)
            self.started.append(job)
