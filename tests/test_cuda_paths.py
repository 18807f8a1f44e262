"""The GPU code paths of the training loop, exercised device-agnostically on the CPU:
fp16 with a GradScaler (state in the resume checkpoint), cudnn.benchmark / deterministic
settings, DataLoader workers cutting the keyed patch stream, and no host-device sync per step
(logs are tensors read at log intervals only)."""
from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from lpsr import registry
from lpsr.data.patches import PatchSampler, PatchStream, batch_stream
from lpsr.train import state as state_module
from lpsr.train.checkpoint import load_resume
from lpsr.train.device import device_settings
from lpsr.train.loop import train
from lpsr.train.settings import TrainSettings
from test_train_loop import SETTINGS, _plates, assert_same_weights, build, final_weights, log_records

CPU = torch.device("cpu")


def _train(out, progress=None, **over):
    method = registry.get("tiny").create(4)
    return train(method, build(method), _plates(6, 0), _plates(3, 1), TrainSettings(**{**SETTINGS, **over}), out, CPU, seed=3,
                 progress=progress)


# ------------------------------------------------------------------ keyed patch stream
def test_batch_k_is_a_pure_function_of_seed_rank_k():
    plates = _plates(5, 0)
    a, b = PatchSampler(plates, 4, 32, seed=7), PatchSampler(plates, 4, 32, seed=7)
    seq = [a.sample(3) for _ in range(4)]
    assert a.state() == 4
    assert torch.equal(b.batch(2, 3).hr, seq[2].hr) and torch.equal(b.batch(0, 3).lr, seq[0].lr)
    b.set_state(3)
    assert torch.equal(b.sample(3).hr, seq[3].hr)  # resume = restart at k
    other_rank = PatchSampler(plates, 4, 32, seed=7, rank=1)
    assert not torch.equal(other_rank.batch(2, 3).hr, seq[2].hr)


def test_dataloader_workers_give_the_same_stream_in_order():
    sampler = PatchSampler(_plates(5, 0), 4, 32, seed=1)
    inline = list(batch_stream(sampler, 3, 2, 9, workers=0))
    loaded = list(batch_stream(sampler, 3, 2, 9, workers=2))
    assert len(inline) == len(loaded) == 7
    for x, y in zip(inline, loaded):
        assert torch.equal(x.lr, y.lr) and torch.equal(x.hr, y.hr) and x.texts == y.texts
    assert len(list(PatchStream(sampler, 3, 0, 4))) == 4


def test_sampler_pickles_without_its_window_views():
    import pickle

    sampler = PatchSampler(_plates(5, 0), 4, 32, seed=1)
    first = sampler.batch(0, 2)
    copy = pickle.loads(pickle.dumps(sampler))
    assert copy._window_cache == {} and torch.equal(copy.batch(0, 2).hr, first.hr)


def test_training_with_loader_workers_gives_the_same_weights(tmp_path):
    _train(tmp_path / "inline", iterations=6, val_every=3)
    res = _train(tmp_path / "workers", iterations=6, val_every=3, loader_workers=2)
    assert res.engine["loader_workers"] == 2
    assert_same_weights(final_weights(tmp_path / "inline"), final_weights(tmp_path / "workers"), atol=0)


def test_loader_workers_default_by_device():
    s = TrainSettings()
    assert s.workers_for("cpu") == 0 and s.workers_for("cuda") == 4
    assert TrainSettings(loader_workers=2).workers_for("cpu") == 2


# ------------------------------------------------------------------ fp16 + GradScaler
def _fp16_everywhere(monkeypatch):
    """Take the fp16 + GradScaler path on the CPU (as on a GPU)."""
    monkeypatch.setattr(state_module, "resolve_precision", lambda requested, device, quality=None: (requested, None))


def test_fp16_uses_a_grad_scaler_whose_state_is_checkpointed_and_resumed(tmp_path, monkeypatch):
    _fp16_everywhere(monkeypatch)
    over = dict(precision="fp16", iterations=8, val_every=4, log_every=2)
    res = _train(tmp_path / "straight", **over)
    assert res.engine["precision"] == "fp16"
    scaler = load_resume(tmp_path / "straight" / "ckpt" / "resume.pt")["scaler"]
    assert scaler and scaler["scale"] > 0
    losses = [r["loss"] for r in log_records(tmp_path / "straight") if "loss" in r]
    assert all(np.isfinite(losses))

    class Crash(Exception):
        pass

    def crash(it, total, logs):
        if it == 6:
            raise Crash

    with pytest.raises(Crash):
        _train(tmp_path / "resumed", progress=crash, **over)
    saved = load_resume(tmp_path / "resumed" / "ckpt" / "resume.pt")["scaler"]
    assert saved is not None and saved["scale"] > 0
    _train(tmp_path / "resumed", **over)
    assert_same_weights(final_weights(tmp_path / "straight"), final_weights(tmp_path / "resumed"))
    assert load_resume(tmp_path / "resumed" / "ckpt" / "resume.pt")["scaler"] == scaler


def test_grad_scaler_skips_overflowing_steps_and_backs_off():
    """The scaler logic the loop relies on: an inf gradient skips the step and halves the scale."""
    from lpsr.train.state import make_adam
    from lpsr.train.step import backward_and_step

    p = torch.nn.Parameter(torch.ones(3))
    opt = make_adam([p], 0.1, (0.9, 0.999), CPU)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**16)
    loss = (p * torch.tensor([1.0, float("inf"), 1.0])).sum()
    backward_and_step(loss, opt, [p], 1.0, scaler)
    scaler.update()
    assert torch.equal(p.detach(), torch.ones(3)) and scaler.get_scale() == 2.0**15
    opt.zero_grad(set_to_none=True)
    backward_and_step((p * 2).sum(), opt, [p], 1.0, scaler)
    scaler.update()
    assert not torch.equal(p.detach(), torch.ones(3))


# ------------------------------------------------------------------ cudnn / determinism
def test_deterministic_settings_take_effect_inside_and_are_undone_after(monkeypatch):
    """What ``deterministic=True`` causes, observable on the CPU: a nondeterministic-only op
    raises, and uninitialised memory is filled (NaN) so it cannot leak into results; after the
    block both effects are gone.  (cudnn.benchmark on CUDA changes only kernel choice: it has
    no effect to observe without a GPU, so no test reads that flag back.)"""
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    with device_settings(CPU, deterministic=True):
        assert torch.isnan(torch.empty(64)).all()  # deterministic mode fills uninitialised memory
        with pytest.raises(RuntimeError, match="deterministic"):
            torch.empty(8).put_(torch.tensor([0, 0]), torch.tensor([1.0, 2.0]), accumulate=False)
        import os

        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"  # read by cuBLAS when it loads
    torch.empty(8).put_(torch.tensor([0, 0]), torch.tensor([1.0, 2.0]), accumulate=False)  # allowed again


def test_deterministic_training_runs_and_reports_it(tmp_path):
    method = registry.get("tiny").create(4)
    res = train(method, build(method), _plates(4, 0), _plates(2, 1), TrainSettings(**{**SETTINGS, "iterations": 2, "val_every": 2}),
                tmp_path, CPU, deterministic=True)
    assert res.engine["deterministic"] is True and res.engine["cudnn_benchmark"] is False
    assert not torch.are_deterministic_algorithms_enabled()  # restored


# ------------------------------------------------------------------ no host sync per step
def test_recipe_logs_are_tensors_not_floats():
    method = registry.get("tiny").create(4)
    model = build(method)
    recipe = method.recipe(model)
    batch = PatchSampler(_plates(3, 0), 4, 32, seed=0).sample(2)
    _, logs = recipe.loss(model(batch.lr), batch, 1, 10)
    assert isinstance(logs["loss"], torch.Tensor) and not logs["loss"].requires_grad


def _count_host_reads(monkeypatch):
    """Count device-to-host reads (item, float, bool, tolist) made from the harness's code."""
    calls = {"n": 0}

    def wrap(name):
        real = getattr(torch.Tensor, name)

        def counted(self, *a, **k):
            frame = sys._getframe(1)
            if "/lpsr/" in frame.f_code.co_filename or "/methods/" in frame.f_code.co_filename:
                calls["n"] += 1
            return real(self, *a, **k)

        monkeypatch.setattr(torch.Tensor, name, counted)

    for name in ("item", "__float__", "__bool__", "tolist", "__int__"):
        wrap(name)
    return calls


@pytest.mark.parametrize("method_name", ["tiny", "pecl"])
def test_no_host_sync_per_step(tmp_path, monkeypatch, method_name):
    """Host reads do not grow with the number of steps between two log/validation points."""
    counts = []
    for iterations in (4, 12):
        calls = _count_host_reads(monkeypatch)
        method = registry.get(method_name).create(4)
        model = build(method)
        calls["n"] = 0
        settings = TrainSettings(**{**SETTINGS, "iterations": iterations, "log_every": iterations, "val_every": iterations, "patch_size": 32})
        train(method, model, _plates(6, 0), _plates(3, 1), settings, tmp_path / str(iterations), CPU)
        counts.append(calls["n"])
        monkeypatch.undo()
    assert counts[0] == counts[1], counts
