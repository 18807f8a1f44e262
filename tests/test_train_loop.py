"""The shared training loop: learns, keeps the best checkpoint, resumes exactly."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from lpsr import registry
from lpsr.data.record import PlateRecord
from lpsr.train.checkpoint import CheckpointError, load_weights, save_weights
from lpsr.train.loop import train
from lpsr.train.settings import TrainSettings
from lpsr.config import ConfigError


def _plates(n, seed):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        img = np.zeros((64, 192, 3), np.uint8) + rng.integers(0, 200, 3).astype(np.uint8)
        for x in range(12, 180, 22):  # character-like vertical bars
            img[12:52, x : x + 6] = 255
        out.append(PlateRecord(f"s{seed}-{i}", img, "A12345"))
    return out


SETTINGS = dict(iterations=12, batch_size=4, patch_size=64, lr=2e-3, val_every=4, log_every=2, val_plates=3, threads=1)


def test_training_lowers_loss_and_keeps_best(tmp_path):
    method = registry.get("tiny").create(4)
    model = method.build()
    res = train(method, model, _plates(6, 0), _plates(3, 1), TrainSettings(**SETTINGS), tmp_path, torch.device("cpu"))
    log = [json.loads(line) for line in (tmp_path / "train.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in log if "loss" in r]
    assert losses[-1] < losses[0]
    vals = {r["iteration"]: r["val_psnr"] for r in log if "val_psnr" in r}
    assert sorted(vals) == [4, 8, 12]
    assert res.best_iteration == max(vals, key=vals.get)
    assert res.best_val_psnr == pytest.approx(max(vals.values()))
    assert (tmp_path / "ckpt" / "best.safetensors").exists() and (tmp_path / "ckpt" / "state.pt").exists()


def test_resume_after_a_crash_gives_the_same_weights(tmp_path):
    method = registry.get("tiny").create(4)
    settings = TrainSettings(**SETTINGS)

    def build():
        torch.manual_seed(0)  # the runner seeds before building, as here
        return method.build()

    train(method, build(), _plates(6, 0), _plates(3, 1), settings, tmp_path / "straight", torch.device("cpu"), seed=3)

    class Crash(Exception):
        pass

    def crash_at_6(it, total, logs):
        if it == 6:  # after the checkpoint at 4, before the one at 8
            raise Crash

    with pytest.raises(Crash):
        train(method, build(), _plates(6, 0), _plates(3, 1), settings, tmp_path / "resumed", torch.device("cpu"), seed=3, progress=crash_at_6)
    res = train(method, build(), _plates(6, 0), _plates(3, 1), settings, tmp_path / "resumed", torch.device("cpu"), seed=3)
    assert res.resumed_from == 4
    a = load_file(str(tmp_path / "straight" / "ckpt" / "last.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "ckpt" / "last.safetensors"))
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6)
    iters = [json.loads(l)["iteration"] for l in (tmp_path / "resumed" / "train.jsonl").read_text().splitlines()]
    assert iters == sorted(iters) and len(iters) == len(set(iters))  # no duplicated log lines


def test_same_seed_same_result(tmp_path):
    method = registry.get("tiny").create(2)
    outs = []
    for run in ("a", "b"):
        torch.manual_seed(123)  # the loop must not depend on outside RNG state
        train(method, method.build(), _plates(4, 0), _plates(2, 1), TrainSettings(**{**SETTINGS, "iterations": 4}), tmp_path / run, torch.device("cpu"), seed=5)
        outs.append(load_file(str(tmp_path / run / "ckpt" / "last.safetensors")))
    for key in outs[0]:
        assert torch.equal(outs[0][key], outs[1][key])


def test_settings_errors_are_one_line():
    with pytest.raises(ConfigError, match="unknown training setting.*itterations"):
        TrainSettings.from_dict({"itterations": 5})
    with pytest.raises(ConfigError, match="train.lr: expected float"):
        TrainSettings.from_dict({"lr": "fast"})
    with pytest.raises(ConfigError, match="batch_size must be >= 1"):
        TrainSettings.from_dict({"batch_size": 0})


def test_weights_round_trip_and_mismatch(tmp_path):
    a = registry.get("tiny").create(4).build()
    save_weights(a, tmp_path / "w.safetensors")
    b = registry.get("tiny").create(4).build()
    load_weights(b, tmp_path / "w.safetensors")
    x = torch.rand(1, 3, 8, 24)
    assert torch.equal(a(x), b(x))
    with pytest.raises(CheckpointError, match="do not fit this network|expects"):
        load_weights(registry.get("tiny").create(2).build(), tmp_path / "w.safetensors")
    with pytest.raises(CheckpointError, match="file not found"):
        load_weights(b, tmp_path / "missing.safetensors")
