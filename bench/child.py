"""What a method's process (:func:`bench.isolation.run_in_child`) is given and does: a
:class:`MethodJob` names the method and carries the run's resolved context, not its plates;
:func:`run_method_job` reloads the plates with the planner's arguments, checks that they are
the planned ones (same data fingerprint), rebuilds the method and runs it."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from bench.method_run import MethodRun
from bench.outcome import MethodOutcome
from bench.plan import RunContext
from bench.progress import BarFactory, Reporter
from lpsr import registry
from lpsr.data.sources import data_fingerprint
from lpsr.errors import UserError


@dataclass(frozen=True)
class MethodJob:
    ctx: RunContext
    method: str
    #: the --weights network, loaded and checked by the planner (its file may be moved aside later)
    preloaded: torch.nn.Module | None = None


def run_method_job(job: MethodJob, report: Reporter, make_bar: BarFactory) -> MethodOutcome:
    ctx = job.ctx
    # the planner checked the store's bytes as it opened it; this process checks the fingerprint
    splits = ctx.data.load(report, make_bar, verify=False)
    fingerprint = data_fingerprint(splits)
    if fingerprint != ctx.facts.fingerprint:
        raise UserError(f"--data {ctx.data.spec}: the plates loaded for {job.method} (fingerprint {fingerprint}) are not the ones "
                        f"the run planned ({ctx.facts.fingerprint}); did the data change during the run? Rerun the same command")
    method = registry.get(job.method).create(ctx.scale)
    return MethodRun(ctx, method, splits, report, make_bar, job.preloaded).run()
