"""Crash consistency: a training process SIGKILLed at chosen moments (real subprocesses)
resumes to the same final weights, best weights and log as an uninterrupted run.

Kill points (iterations 1..12, validation + checkpoint at 4, 8, 12):
* ``step-6``: between two checkpoints (log lines past the checkpoint are on disk);
* ``before-rename-8``: the new resume checkpoint is fully written to its temporary file,
  the rename has not happened (a stray ``.resume.pt.*.tmp`` is left behind);
* ``after-rename-8``: the checkpoint is in place, ``best.safetensors`` not yet exported --
  the moment that used to sit between ``last.safetensors`` and ``state.pt``;
* ``best-tmp-8``: killed while ``best.safetensors`` is being written;
plus a torn last line of ``train.jsonl``.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from lpsr import registry
from lpsr.train.checkpoint import load_resume
from lpsr.train.loop import train
from lpsr.train.settings import TrainSettings
from test_train_loop import SETTINGS, _plates, assert_same_weights, build
from cli_helpers import timeless_log

HERE = Path(__file__).resolve().parent
KILL_SETTINGS = {**SETTINGS, "ema_decay": 0.9}

CHILD = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, {here!r})
    import torch
    import lpsr.io
    from lpsr import registry
    from lpsr.train import loop
    from lpsr.train.settings import TrainSettings
    from test_train_loop import _plates, build

    out, point = sys.argv[1], sys.argv[2]
    kind, at = point.rsplit("-", 1)
    at = int(at)
    seen = {{"resume": 0, "best": 0}}
    real_replace = os.replace

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    def replace(src, dst):
        name = os.path.basename(str(dst))
        if name == "resume.pt":
            seen["resume"] += 1
            if kind == "before-rename" and seen["resume"] * 4 == at:
                die()
            real_replace(src, dst)
            if kind == "after-rename" and seen["resume"] * 4 == at:
                die()
            return
        if name == "best.safetensors" and kind == "best-tmp" and seen["resume"] * 4 == at:
            die()
        real_replace(src, dst)

    os.replace = replace

    def progress(it, total, logs):
        if kind == "step" and it == at:
            die()

    method = registry.get("tiny").create(4)
    settings = TrainSettings(**{settings!r})
    loop.train(method, build(method), _plates(6, 0), _plates(3, 1), settings, out, torch.device("cpu"), seed=3, progress=progress)
    print("finished without being killed")
    """
)


def _killed_run(out: Path, point: str) -> None:
    code = CHILD.format(here=str(HERE), settings=KILL_SETTINGS)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", code, str(out), point], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == -signal.SIGKILL, f"child was not killed at {point}: rc {proc.returncode}\n{proc.stdout}\n{proc.stderr}"


def _resume(out: Path):
    method = registry.get("tiny").create(4)
    return train(method, build(method), _plates(6, 0), _plates(3, 1), TrainSettings(**KILL_SETTINGS), out, torch.device("cpu"), seed=3)


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    out = tmp_path_factory.mktemp("straight")
    res = _resume(out)
    return out, res


def _assert_same_run(a: Path, b: Path) -> None:
    sa, sb = load_resume(a / "ckpt" / "resume.pt"), load_resume(b / "ckpt" / "resume.pt")
    assert sb["iteration"] == sa["iteration"] == 12
    assert_same_weights(sa["model"], sb["model"])
    assert_same_weights(sa["ema"], sb["ema"])
    for name in ("best.safetensors", "best_raw.safetensors"):
        assert_same_weights(load_file(str(a / "ckpt" / name)), load_file(str(b / "ckpt" / name)))
    assert timeless_log(a / "train.jsonl") == timeless_log(b / "train.jsonl")
    leftovers = sorted(p.name for p in (b / "ckpt").iterdir())
    assert leftovers == ["best.safetensors", "best_raw.safetensors", "resume.pt"]


@pytest.mark.parametrize(
    "point, resumed_from",
    [("step-6", 4), ("before-rename-8", 4), ("after-rename-8", 8), ("best-tmp-8", 8)],
)
def test_sigkill_then_resume_gives_the_uninterrupted_result(tmp_path, straight, point, resumed_from):
    out = tmp_path / "run"
    _killed_run(out, point)
    if point == "before-rename-8":
        assert list((out / "ckpt").glob(".resume.pt.*.tmp")), "the kill should leave the unfinished temporary file"
    res = _resume(out)
    assert res.resumed_from == resumed_from
    if point == "before-rename-8":
        assert any("temporary file" in n for n in res.notes)
    if point in ("after-rename-8", "best-tmp-8"):
        # the EMA val PSNR improves at 8 in this run, so best.safetensors was due at the kill
        assert any("re-exported from the checkpoint at iteration 8" in n for n in res.notes), res.notes
    _assert_same_run(straight[0], out)
    assert res.best_iteration == straight[1].best_iteration and res.best_val_psnr == straight[1].best_val_psnr


def test_torn_last_log_line_does_not_break_resume(tmp_path, straight):
    out = tmp_path / "run"
    _killed_run(out, "step-6")
    with open(out / "train.jsonl", "a", encoding="utf-8") as fh:
        fh.write('{"iteration": 7, "lo')  # a write cut short by the kill
    res = _resume(out)
    assert res.resumed_from == 4
    _assert_same_run(straight[0], out)


def test_damaged_log_is_restored_from_the_checkpoint_and_kept_aside(tmp_path, straight):
    out = tmp_path / "run"
    _killed_run(out, "after-rename-8")
    (out / "train.jsonl").write_text('{"iteration": 2, "loss": 1.0}\n')  # lost lines
    res = _resume(out)
    assert any("restored from the checkpoint" in n for n in res.notes)
    assert list(out.glob("train.jsonl.mismatch-*"))
    _assert_same_run(straight[0], out)
