"""``bench sweep``: methods x seeds as a job array through submitit (Slurm, or local processes).

Each job trains and evaluates ONE method with ONE seed into ``<run_dir>/seed-<s>/<method>/``
(the same files ``bench run`` writes; ``bench report <run_dir>`` collects every seed into one
leaderboard with mean ± std over seeds).  The submitting process plans and checks everything
first (options, profile, data, each method's settings: the same checks as ``bench run``), pins
the data (``--data synthetic`` becomes ``synthetic:<profile seed>``, so every seed is scored on
the same test plates; the seeds vary initialisation and patch sampling), writes each seed's HR
reference and then submits.

Resumable: a job is a submitit checkpointable callable.  On a time-out or preemption signal
(submitit's ``--signal USR2@90``) its ``checkpoint`` asks the method's process to write the
harness checkpoint and stop, and submitit requeues the job, which resumes from that checkpoint
(``ckpt/resume.pt``); a job that finds its method finished skips it.  Jobs of one seed share
the seed's folder and lock only their own method folder.
"""
from __future__ import annotations

import signal
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Callable

from lpsr.errors import UserError

EXECUTORS = ("local", "slurm")

try:  # the optional extra `cluster`; without it `bench sweep` says how to install it
    from submitit.helpers import Checkpointable as _Checkpointable
except ModuleNotFoundError:  # pragma: no cover
    _Checkpointable = object  # type: ignore[assignment,misc]


def parse_seeds(text: str) -> list[int]:
    """``0,1,2`` or ``0-4`` (or a mix: ``0-2,7``) -> unique seeds in order."""
    from bench.options import check_seed

    seeds: list[int] = []
    for part in [p.strip() for p in str(text).split(",") if p.strip()]:
        try:
            if "-" in part[1:]:
                lo, hi = (int(v) for v in part.split("-", 1))
                if hi < lo:
                    raise ValueError
                values = list(range(lo, hi + 1))
            else:
                values = [int(part)]
        except ValueError:
            raise UserError(f"--seeds {text!r}: expected seeds like 0,1,2 or 0-4") from None
        for s in values:
            check_seed(s, "--seeds")
            if s not in seeds:
                seeds.append(s)
    if not seeds:
        raise UserError("--seeds is empty; give seeds like 0,1,2 or 0-4")
    return seeds


def seed_dir(run_dir: Path, seed: int) -> Path:
    return Path(run_dir) / f"seed-{seed}"


def pinned_data(spec: str, seed: int) -> str:
    """Synthetic data drawn from the run seed would differ per seed: pin it."""
    return f"synthetic:{seed}" if spec.strip().lower() == "synthetic" else spec


class SweepJob(_Checkpointable):
    """One method x one seed: a :class:`submitit.helpers.Checkpointable` whose ``checkpoint``
    makes the method write its own checkpoint first (requeued, the job resumes from it)."""

    def __init__(self, plan: dict[str, Any], method: str, seed: int, run_dir: str, fingerprint: str) -> None:
        self.plan = plan
        self.method = method
        self.seed = seed
        self.run_dir = run_dir
        self.fingerprint = fingerprint

    def __call__(self) -> dict[str, Any]:
        from bench.runner import Runner, RunPlan

        plan = RunPlan(**{**self.plan, "methods": [self.method], "seed": self.seed, "run_dir": Path(self.run_dir)})
        runner = Runner(plan, report=lambda message: print(message, flush=True))
        if runner.fingerprint != self.fingerprint:
            raise UserError(f"data fingerprint on this node is {runner.fingerprint}, the sweep planned {self.fingerprint}: "
                            f"the data ({plan.data}) differs between the submitting machine and the node")
        outcome = runner.run_single(self.method)
        return {"method": self.method, "seed": self.seed, "status": outcome.status, "error": outcome.result.get("error")}

    def checkpoint(self, *args: Any, **kwargs: Any):
        """Time-out / preemption: the method's process writes its checkpoint and stops, then
        submitit requeues this same job, which resumes from it."""
        import submitit

        from bench.isolation import stop_current_child

        stop_current_child(signal.SIGTERM, timeout=75)
        return submitit.helpers.DelayedSubmission(SweepJob(self.plan, self.method, self.seed, self.run_dir, self.fingerprint))

    def __repr__(self) -> str:
        return f"SweepJob({self.method}, seed {self.seed})"


def require_submitit():
    try:
        import submitit
    except ModuleNotFoundError:
        raise UserError("bench sweep needs submitit: pip install 'lpsr-bench[cluster]'") from None
    return submitit


def make_executor(kind: str, folder: Path, *, partition: str | None, gpus: int, cpus: int | None, mem_gb: float | None,
                  time_min: int, array_parallelism: int | None, account: str | None, qos: str | None,
                  constraint: str | None, name: str):
    submitit = require_submitit()
    if kind not in EXECUTORS:
        raise UserError(f"--executor {kind!r}: use local or slurm")
    if kind == "slurm" and not partition:
        raise UserError("--executor slurm needs --partition NAME (the Slurm partition to submit to)")
    try:
        executor = submitit.AutoExecutor(folder=str(folder), cluster=kind)
    except Exception as exc:  # e.g. no sbatch on this machine
        raise UserError(f"--executor {kind}: submitit cannot submit from here ({exc})") from None
    params: dict[str, Any] = {"timeout_min": int(time_min), "name": name, "tasks_per_node": 1, "nodes": 1,
                              "gpus_per_node": int(gpus)}
    if cpus:
        params["cpus_per_task"] = int(cpus)
    if mem_gb:
        params["mem_gb"] = float(mem_gb)
    if kind == "slurm":
        params["slurm_partition"] = partition
        for key, value in (("array_parallelism", array_parallelism), ("account", account), ("qos", qos), ("constraint", constraint)):
            if value:
                params[f"slurm_{key}"] = value
    executor.update_parameters(**params)
    if kind == "local" and array_parallelism:  # submitit's local executor has no limit of its own
        from bench.local_throttle import ThrottledExecutor
        return ThrottledExecutor(executor, array_parallelism)
    return executor


def plan_sweep(plan, seeds: list[int], report: Callable[[str], None]):
    """Check everything once (as ``bench run`` does) and return one runner per seed."""
    from bench.runner import Runner

    first = Runner(replace(plan, seed=seeds[0], run_dir=seed_dir(plan.run_dir, seeds[0])), report=report)
    runners = {seeds[0]: first}
    for s in seeds[1:]:
        runners[s] = first.for_seed(s, seed_dir(plan.run_dir, s))
    return runners


def submit(plan, seeds: list[int], executor, report: Callable[[str], None]) -> tuple[list[Any], list[tuple[str, int]], dict]:
    """Plan, write each seed's HR reference, submit methods x seeds as one job array."""
    runners = plan_sweep(plan, seeds, report)
    fingerprint = runners[seeds[0]].fingerprint
    for s, r in runners.items():
        r.run_reference()
    base = {k: v for k, v in asdict(plan).items() if k not in ("methods", "seed", "run_dir")}
    pairs = [(m, s) for s in seeds for m in plan.methods]
    jobs_in = [SweepJob(base, m, s, str(seed_dir(plan.run_dir, s)), fingerprint) for m, s in pairs]
    try:
        with executor.batch():
            jobs = [executor.submit(job) for job in jobs_in]
    except Exception as exc:  # no sbatch here, the partition refused the array, ...
        text = " ".join(str(exc).split())[-400:] or type(exc).__name__
        raise UserError(f"submitting the sweep failed ({type(exc).__name__}: {text}); nothing was submitted") from None
    return jobs, pairs, runners


def wait(jobs: list[Any], pairs: list[tuple[str, int]], report: Callable[[str], None], poll_s: float = 2.0) -> list[dict[str, Any]]:
    """Wait for every job; one line per job as it ends."""
    pending = dict(enumerate(jobs))
    out: dict[int, dict[str, Any]] = {}
    while pending:
        for i, job in list(pending.items()):
            if not job.done():
                continue
            m, s = pairs[i]
            try:
                res = job.result()
            except Exception as exc:  # the job itself failed (e.g. the node lacks the data)
                text = " ".join(str(exc).split())
                res = {"method": m, "seed": s, "status": "failed", "error": {"type": type(exc).__name__, "reason": text[-400:], "kind": "job"}}
            out[i] = res
            what = res.get("status")
            if what == "failed":
                err = res.get("error") or {}
                what = f"FAILED ({err.get('type')}: {err.get('reason')})"
            report(f"[{m} seed {s}] job {job.job_id}: {what}")
            del pending[i]
        if pending:
            time.sleep(poll_s)
    return [out[i] for i in range(len(jobs))]


def describe_submission(jobs: list[Any], pairs: list[tuple[str, int]], folder: Path) -> list[str]:
    lines = [f"submitted {len(jobs)} jobs ({len({m for m, _ in pairs})} methods x {len({s for _, s in pairs})} seeds); logs in {folder}"]
    lines += [f"  job {job.job_id}: {m} seed {s}" for job, (m, s) in zip(jobs, pairs)]
    return lines


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use `bench sweep`")
