"""lpsr.train.runlog.RunLog: the interval's step logs become floats every READ_EVERY steps (a
long log interval no longer holds one tensor per step), with the same record as before."""
from __future__ import annotations

import numpy as np
import torch

from lpsr.train.runlog import READ_EVERY, RunLog


def _steps(n: int, offset: int = 0) -> list[dict]:
    g = torch.Generator().manual_seed(offset)
    return [{"loss": torch.rand((), generator=g), "pixel": torch.rand((), generator=g) * 2} for _ in range(n)]


def test_a_long_interval_holds_at_most_read_every_tensors_and_gives_the_exact_mean(tmp_path):
    log, steps = RunLog(tmp_path), _steps(3 * READ_EVERY + 17)
    for i, step in enumerate(steps, 1):
        log.add(step)
        tensors = sum(isinstance(v, torch.Tensor) for vals in log.running.values() for v in vals)
        assert tensors <= 2 * READ_EVERY  # two keys, at most READ_EVERY steps each
    record = log.interval(len(steps))
    for key in ("loss", "pixel"):  # the mean of the float32 values, as when read all at once
        assert record[key] == float(np.mean([float(s[key]) for s in steps]))
    assert log.running == {} and log.interval(len(steps) + 1) == {"iteration": len(steps) + 1}


def test_a_key_that_appears_mid_interval_and_a_resumed_interval(tmp_path):
    log = RunLog(tmp_path)
    first, later = _steps(READ_EVERY + 3), _steps(5, offset=1)
    for step in first:
        log.add({"loss": step["loss"]})
    for step in later:  # e.g. the discriminator's loss once the GAN stage starts
        log.add({"loss": step["loss"], "d_loss": step["pixel"]})
    state = log.state_dict()  # a checkpoint mid-interval: plain floats
    assert all(isinstance(v, float) for vals in state["running"].values() for v in vals)
    resumed = RunLog(tmp_path)
    resumed.load_state_dict(state)
    more = _steps(READ_EVERY, offset=2)
    for step in more:
        for target in (log, resumed):
            target.add({"loss": step["loss"], "d_loss": step["pixel"]})
    a, b = log.interval(99), resumed.interval(99)
    assert a == b
    assert a["d_loss"] == float(np.mean([float(s["pixel"]) for s in later + more]))
