"""Stopping a training run: a NaN/inf loss is a one-line TrainingDiverged that keeps the last
good checkpoint; SIGTERM / SIGINT to a real training process write a checkpoint and stop with
TrainingInterrupted, and the rerun gives the same final weights and log as an uninterrupted run."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from lpsr import registry
from lpsr.errors import UserError
from lpsr.method import TrainRecipe
from lpsr.train.checkpoint import load_resume
from lpsr.train.errors import TrainingDiverged, TrainingInterrupted
from lpsr.train.loop import train
from lpsr.train.signals import stop_on_signals
from lpsr.train.settings import TrainSettings
from test_train_loop import SETTINGS, _plates, assert_same_weights, build, final_weights, log_records
from cli_helpers import timeless_log

HERE = Path(__file__).resolve().parent
CPU = torch.device("cpu")
Tiny = type(registry.get("tiny").create(4))


class NanFrom(Tiny):
    """tiny whose loss becomes NaN from iteration ``nan_at`` on."""

    nan_at = 7

    def recipe(self, model):
        return NanRecipe(self.nan_at)


class NanRecipe(TrainRecipe):
    def __init__(self, nan_at):
        super().__init__("l1")
        self.nan_at = nan_at

    def loss(self, sr, batch, iteration, total):
        value = self.pixel_loss(sr, batch.hr)
        if iteration >= self.nan_at:
            value = value * float("nan")
        return value, {"loss": value.detach()}


def _train(method, out, progress=None, **over):
    settings = TrainSettings(**{**SETTINGS, **over})
    return train(method, build(method), _plates(6, 0), _plates(3, 1), settings, out, CPU, seed=3, progress=progress)


def test_nan_loss_stops_with_one_line_naming_iteration_and_settings(tmp_path):
    method = NanFrom(4)
    with pytest.raises(TrainingDiverged) as err:
        _train(method, tmp_path)
    exc = err.value
    assert isinstance(exc, UserError) and exc.iteration == 7
    msg = str(exc)
    assert "\n" not in msg and "iteration 7" in msg and "train.lr" in msg and "train.grad_clip" in msg
    assert "last good checkpoint (iteration 4" in msg
    # the checkpoint of iteration 4 is kept, nothing later was written from non-finite weights
    state = load_resume(tmp_path / "ckpt" / "resume.pt")
    assert state["iteration"] == 4
    assert all(torch.isfinite(v).all() for v in state["model"].values())
    assert [r["iteration"] for r in log_records(tmp_path)] == [2, 4, 6]  # no NaN line


def test_nan_at_a_validation_iteration_writes_no_checkpoint(tmp_path):
    class NanAt4(NanFrom):
        nan_at = 4

    with pytest.raises(TrainingDiverged, match="at iteration 4; .*no checkpoint had been written yet"):
        _train(NanAt4(4), tmp_path)
    assert not (tmp_path / "ckpt" / "resume.pt").exists()


def test_non_finite_weights_are_never_checkpointed(tmp_path):
    class Poison(Tiny):
        def recipe(self, model):
            recipe = super().recipe(model)

            def after_step():
                poison["n"] += 1
                if poison["n"] == 8:  # the loss of step 8 was finite; the weights are not
                    next(model.parameters()).data.fill_(float("inf"))

            recipe.after_step = after_step
            return recipe

    poison = {"n": 0}
    with pytest.raises(TrainingDiverged, match="the weights became NaN/inf by iteration 8"):
        _train(Poison(4), tmp_path)
    assert load_resume(tmp_path / "ckpt" / "resume.pt")["iteration"] == 4


def test_fp16_hint_in_message():
    from lpsr.train.errors import diverged_message as _diverged_message

    msg = _diverged_message("m", "loss", 5, TrainSettings(grad_clip=1.0), "fp16", 0, Path("r.pt"))
    assert "lower train.grad_clip (now 1)" in msg and "train.precision fp32 (now fp16)" in msg


def test_signal_handlers_are_restored_after_training(tmp_path):
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    _train(registry.get("tiny").create(4), tmp_path, iterations=2, val_every=2)
    assert {s: signal.getsignal(s) for s in before} == before


def test_second_signal_stops_at_once():
    with stop_on_signals("m") as flag:
        flag(signal.SIGINT, None)
        assert flag.requested
        with pytest.raises(TrainingInterrupted) as err:
            flag(signal.SIGINT, None)
    assert err.value.checkpointed is False and "second SIGINT" in str(err.value)


def test_interrupted_pickles_across_processes():
    import pickle

    exc = pickle.loads(pickle.dumps(TrainingInterrupted("stopped", signal.SIGTERM, 7)))
    assert isinstance(exc, KeyboardInterrupt) and str(exc) == "stopped" and exc.signum == signal.SIGTERM and exc.iteration == 7
    div = pickle.loads(pickle.dumps(TrainingDiverged("nan at 3", 3)))
    assert str(div) == "nan at 3" and div.iteration == 3


CHILD = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, {here!r})
    import torch
    from lpsr import registry
    from lpsr.train import loop
    from lpsr.train.errors import TrainingInterrupted
    from lpsr.train.settings import TrainSettings
    from test_train_loop import _plates, build

    out, sig, at = sys.argv[1], getattr(signal, sys.argv[2]), int(sys.argv[3])

    def progress(it, total, logs):
        if it == at:
            os.kill(os.getpid(), sig)  # a real signal, delivered to this training process

    method = registry.get("tiny").create(4)
    try:
        loop.train(method, build(method), _plates(6, 0), _plates(3, 1), TrainSettings(**{settings!r}), out,
                   torch.device("cpu"), seed=3, progress=progress)
    except TrainingInterrupted as exc:
        print(exc)
        sys.exit(143 if exc.signum == signal.SIGTERM else 130)
    print("finished without being stopped")
    """
)

STOP_SETTINGS = {**SETTINGS, "ema_decay": 0.9, "log_every": 4}


@pytest.mark.parametrize("sig, at", [("SIGTERM", 6), ("SIGINT", 5)])
def test_signal_to_a_training_process_checkpoints_and_the_rerun_matches(tmp_path, sig, at):
    code = CHILD.format(here=str(HERE), settings=STOP_SETTINGS)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
    out = tmp_path / "stopped"
    proc = subprocess.run([sys.executable, "-c", code, str(out), sig, str(at)], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == (143 if sig == "SIGTERM" else 130), proc.stdout + proc.stderr
    # the signal arrived during iteration `at`; the loop stopped at the next boundary (at + 1)
    assert f"stopped by {sig} at iteration {at + 1} of 12" in proc.stdout and "rerun the same command to resume" in proc.stdout
    state = load_resume(out / "ckpt" / "resume.pt")
    assert state["iteration"] == at + 1 and state["running"]  # the partial log interval is kept

    method = registry.get("tiny").create(4)
    res = train(method, build(method), _plates(6, 0), _plates(3, 1), TrainSettings(**STOP_SETTINGS), out, CPU, seed=3)
    assert res.resumed_from == at + 1
    straight = tmp_path / "straight"
    train(method, build(method), _plates(6, 0), _plates(3, 1), TrainSettings(**STOP_SETTINGS), straight, CPU, seed=3)
    assert_same_weights(final_weights(straight), final_weights(out))
    assert_same_weights(load_resume(straight / "ckpt" / "resume.pt")["ema"], load_resume(out / "ckpt" / "resume.pt")["ema"])
    assert timeless_log(straight / "train.jsonl") == timeless_log(out / "train.jsonl")
