"""The shared training loop: learns, keeps the best checkpoint, resumes exactly."""
from __future__ import annotations

import io
import json
import stat

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from lpsr import registry
from lpsr.data.record import PlateRecord
from lpsr.io import default_file_mode
from lpsr.train.checkpoint import CheckpointError, load_resume, load_weights, save_weights
from lpsr.train.loop import train
from lpsr.train.settings import TrainSettings
from cli_helpers import timeless_log


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


def build(method, seed=0):
    torch.manual_seed(seed)  # the runner seeds before building, as here
    return method.build()


def final_weights(run_dir):
    """Raw weights at the end of a run (from the one resume checkpoint)."""
    return load_resume(run_dir / "ckpt" / "resume.pt")["model"]


def assert_same_weights(a, b, atol=1e-6):
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=atol)


def log_records(run_dir):
    return [json.loads(line) for line in (run_dir / "train.jsonl").read_text().splitlines()]


def test_training_lowers_loss_and_keeps_best(tmp_path):
    method = registry.get("tiny").create(4)
    model = method.build()
    res = train(method, model, _plates(6, 0), _plates(3, 1), TrainSettings(**SETTINGS), tmp_path, torch.device("cpu"))
    log = log_records(tmp_path)
    losses = [r["loss"] for r in log if "loss" in r]
    assert losses[-1] < losses[0]
    vals = {r["iteration"]: r["val_psnr"] for r in log if "val_psnr" in r}
    assert sorted(vals) == [4, 8, 12]
    assert res.best_iteration == max(vals, key=vals.get)
    assert res.best_val_psnr == pytest.approx(max(vals.values()))
    ckpt = tmp_path / "ckpt"
    assert (ckpt / "best.safetensors").exists() and (ckpt / "resume.pt").exists()
    assert not (ckpt / "best_raw.safetensors").exists()  # only written with an EMA
    assert sorted(p.name for p in ckpt.iterdir()) == ["best.safetensors", "resume.pt"]


def test_validation_matches_the_evaluation_code(tmp_path):
    """The batched validator gives evaluate.mean_psnr's number."""
    from lpsr.evaluate import mean_psnr
    from lpsr.train.validate import Validator

    method = registry.get("tiny").create(4)
    model = build(method)
    plates = _plates(5, 2)
    v = Validator(method, plates, torch.device("cpu"), batch_size=2)
    # Not bit-equal: the evaluation feeds the network a channels-last-strided view (to_tensor's
    # permute), the validator a contiguous copy, so oneDNN may pick another float32 kernel and
    # an SR value next to x.5 can round to the other uint8 level (measured on an AMD EPYC: one
    # pixel of one plate, 3.6e-7 dB in the mean). A wrong metric would be off by far more.
    assert v.mean_psnr(model) == pytest.approx(mean_psnr(method, model, plates, torch.device("cpu")), abs=1e-5)


def crash_and_resume(tmp_path, settings: TrainSettings):
    """tiny x4 trained straight (``tmp_path/straight``), and crashed at iteration 6 then
    resumed (``tmp_path/resumed``); the resumed run's TrainResult."""
    method = registry.get("tiny").create(4)
    train(method, build(method), _plates(6, 0), _plates(3, 1), settings, tmp_path / "straight", torch.device("cpu"), seed=3)

    class Crash(Exception):
        pass

    def crash_at_6(it, total, logs):
        if it == 6:  # after the checkpoint at 4, before the one at 8
            raise Crash

    with pytest.raises(Crash):
        train(method, build(method), _plates(6, 0), _plates(3, 1), settings, tmp_path / "resumed", torch.device("cpu"), seed=3, progress=crash_at_6)
    return train(method, build(method), _plates(6, 0), _plates(3, 1), settings, tmp_path / "resumed", torch.device("cpu"), seed=3)


def test_resume_after_a_crash_gives_the_same_weights(tmp_path):
    res = crash_and_resume(tmp_path, TrainSettings(**SETTINGS))
    assert res.resumed_from == 4
    assert_same_weights(final_weights(tmp_path / "straight"), final_weights(tmp_path / "resumed"))
    assert timeless_log(tmp_path / "straight" / "train.jsonl") == timeless_log(tmp_path / "resumed" / "train.jsonl")


def test_finished_run_is_not_trained_again(tmp_path):
    method = registry.get("tiny").create(4)
    settings = TrainSettings(**{**SETTINGS, "iterations": 4})
    first = train(method, build(method), _plates(4, 0), _plates(2, 1), settings, tmp_path, torch.device("cpu"))
    again = train(method, build(method), _plates(4, 0), _plates(2, 1), settings, tmp_path, torch.device("cpu"))
    assert again.resumed_from == 4 and again.iterations == 4
    assert again.best_iteration == first.best_iteration and again.best_val_psnr == first.best_val_psnr


def test_same_seed_same_result(tmp_path):
    method = registry.get("tiny").create(2)
    outs = []
    for run in ("a", "b"):
        torch.manual_seed(123)  # the loop must not depend on outside RNG state
        train(method, method.build(), _plates(4, 0), _plates(2, 1), TrainSettings(**{**SETTINGS, "iterations": 4}), tmp_path / run, torch.device("cpu"), seed=5)
        outs.append(final_weights(tmp_path / run))
    for key in outs[0]:
        assert torch.equal(outs[0][key], outs[1][key])


def test_resume_refuses_another_runs_checkpoint(tmp_path):
    method = registry.get("tiny").create(4)
    settings = TrainSettings(**{**SETTINGS, "iterations": 4})
    train(method, build(method), _plates(4, 0), _plates(2, 1), settings, tmp_path, torch.device("cpu"), seed=1)
    with pytest.raises(CheckpointError, match="seed 1, this run has seed 2"):
        train(method, build(method), _plates(4, 0), _plates(2, 1), settings, tmp_path, torch.device("cpu"), seed=2)
    with pytest.raises(CheckpointError, match=r"other training settings \(lr"):
        train(method, build(method), _plates(4, 0), _plates(2, 1), TrainSettings(**{**SETTINGS, "iterations": 4, "lr": 1e-3}),
              tmp_path, torch.device("cpu"), seed=1)
    # threads does not change the maths: a resume with other threads is fine
    train(method, build(method), _plates(4, 0), _plates(2, 1), TrainSettings(**{**SETTINGS, "iterations": 4, "threads": 2}),
          tmp_path, torch.device("cpu"), seed=1)
    assert (tmp_path / "ckpt" / "resume.pt").exists()  # nothing was deleted


def test_old_two_file_checkpoint_is_refused_not_deleted(tmp_path):
    method = registry.get("tiny").create(4)
    (tmp_path / "ckpt").mkdir(parents=True)
    (tmp_path / "ckpt" / "state.pt").write_bytes(b"old")
    with pytest.raises(CheckpointError, match="old two-file format"):
        train(method, build(method), _plates(4, 0), _plates(2, 1), TrainSettings(**SETTINGS), tmp_path, torch.device("cpu"))
    assert (tmp_path / "ckpt" / "state.pt").read_bytes() == b"old"


def test_unreadable_resume_checkpoint_is_a_clear_error(tmp_path):
    method = registry.get("tiny").create(4)
    (tmp_path / "ckpt").mkdir(parents=True)
    (tmp_path / "ckpt" / "resume.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="resume checkpoint is unreadable"):
        train(method, build(method), _plates(4, 0), _plates(2, 1), TrainSettings(**SETTINGS), tmp_path, torch.device("cpu"))
    assert (tmp_path / "ckpt" / "resume.pt").read_bytes() == b"garbage"


def test_whole_plate_training(tmp_path):
    """A method with ``train_on_whole_plates`` gets batches of whole plates."""
    from lpsr.data.patches import PatchSampler

    plates = _plates(3, 0)
    batch = PatchSampler(plates, 4, 64, seed=0, whole_plates=True).sample(5)
    assert batch.hr.shape == (5, 3, 64, 192) and batch.lr.shape == (5, 3, 16, 48) and len(batch.texts) == 5

    base = registry.get("tiny").create(4)
    seen = []

    class WholePlates(type(base)):
        train_on_whole_plates = True

        def recipe(self, model):
            recipe = super().recipe(model)
            real = recipe.loss

            def loss(sr, b, it, total):
                seen.append(tuple(b.hr.shape))
                return real(sr, b, it, total)

            recipe.loss = loss
            return recipe

    method = WholePlates(4)
    train(method, build(method), plates, _plates(2, 1), TrainSettings(**{**SETTINGS, "iterations": 2, "val_every": 2}), tmp_path, torch.device("cpu"))
    assert seen == [(4, 3, 64, 192)] * 2


def test_patch_sampler_cuts_aligned_patches():
    from lpsr.data.degrade import make_pair
    from lpsr.data.patches import PatchSampler

    rng = np.random.default_rng(0)
    plates = [PlateRecord(f"p{i}", rng.integers(0, 255, (64 if i % 3 else 72, 192 if i % 2 else 200, 3), dtype=np.uint8), f"T{i}") for i in range(7)]
    sampler = PatchSampler(plates, 4, 32, seed=1)
    batch = sampler.sample(9)
    for k in range(9):  # each LR patch is the LR of its HR patch's area, in some plate
        hr = batch.hr[k].permute(1, 2, 0).mul(255).round().byte().numpy()
        lr = batch.lr[k].permute(1, 2, 0).mul(255).round().byte().numpy()
        i = int(batch.texts[k][1:])
        plate_lr, plate_hr = make_pair(plates[i].hr, 4)
        hits = [(y, x) for y in range(plate_lr.shape[0] - 7) for x in range(plate_lr.shape[1] - 7)
                if np.array_equal(plate_lr[y : y + 8, x : x + 8], lr)]
        assert any(np.array_equal(plate_hr[y * 4 : y * 4 + 32, x * 4 : x * 4 + 32], hr) for y, x in hits)


def test_weights_round_trip_and_mismatch(tmp_path):
    a = registry.get("tiny").create(4).build()
    save_weights(a, tmp_path / "w.safetensors")
    assert stat.S_IMODE((tmp_path / "w.safetensors").stat().st_mode) == default_file_mode()  # not safetensors' 0600
    b = registry.get("tiny").create(4).build()
    load_weights(b, tmp_path / "w.safetensors")
    x = torch.rand(1, 3, 8, 24)
    assert torch.equal(a(x), b(x))
    with pytest.raises(CheckpointError, match="do not fit this network|expects"):
        load_weights(registry.get("tiny").create(2).build(), tmp_path / "w.safetensors")
    with pytest.raises(CheckpointError, match="file not found"):
        load_weights(b, tmp_path / "missing.safetensors")
    assert load_file(str(tmp_path / "w.safetensors")).keys() == a.state_dict().keys()


@pytest.mark.parametrize(
    "over, span, offset",
    [({}, 12, 0), ({"warmup_iterations": 3}, 12, 0), ({"schedule": "constant", "warmup_iterations": 2}, 9, 0),
     ({"schedule": "step", "lr_steps": (3, 7, 10), "lr_gamma": 0.3}, 12, 0),
     ({"schedule": "step", "lr_steps": (3, 7, 10), "warmup_iterations": 2}, 8, 4),  # a discriminator starting at 5
     ({"warmup_iterations": 5}, 4, 8)],  # warm-up longer than the span: none
)
def test_lr_at_equals_timms_schedulers_exactly(over, span, offset):
    """lr_at(n) is bit-identical to timm's CosineLRScheduler / MultiStepLRScheduler stepped
    on an optimiser (what the loop used before; the oracle for every step of the span)."""
    from timm.scheduler import CosineLRScheduler, MultiStepLRScheduler

    from lpsr.train.schedule import LrSchedule

    settings = TrainSettings(**{**SETTINGS, **over})
    sched = LrSchedule.of(settings, 1.3e-3, span=span, offset=offset)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.3e-3)
    warm = settings.warmup_iterations if settings.warmup_iterations < span else 0
    if settings.schedule == "cosine":
        ref = CosineLRScheduler(opt, t_initial=span - warm, lr_min=0.0, warmup_t=warm, warmup_lr_init=0.0, warmup_prefix=True,
                                t_in_epochs=False)
    else:
        steps = [m - offset for m in settings.lr_steps if m > offset]
        ref = MultiStepLRScheduler(opt, decay_t=steps, decay_rate=settings.lr_gamma, warmup_t=warm, warmup_lr_init=0.0,
                                   warmup_prefix=False, t_in_epochs=False)
    for n in range(span):
        ref.step_update(n)
        assert sched.lr_at(n) == opt.param_groups[0]["lr"], n
    assert sched.lr_at(0) == (0.0 if warm else 1.3e-3)


def test_train_state_round_trips_through_its_state_dict():
    """A TrainState restored from its saved state_dict() continues with the same steps as the original."""
    from lpsr.data.patches import PatchSampler
    from lpsr.train.state import build_state
    from lpsr.train.step import train_step

    method = registry.get("tiny").create(4)
    settings = TrainSettings(**{**SETTINGS, "ema_decay": 0.9, "grad_clip": 0.5})
    batches = [PatchSampler(_plates(4, 0), 4, 32, seed=1).batch(k, 2) for k in range(4)]
    a, _ = build_state(method, build(method), settings, torch.device("cpu"), seed=3)
    for it in (1, 2):
        train_step(a, batches[it - 1], it)
    buffer = io.BytesIO()
    torch.save(a.state_dict(), buffer)  # as the checkpoint does (optimiser states are not copies)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    b, _ = build_state(method, build(method, seed=9), settings, torch.device("cpu"), seed=5)
    b.load_state_dict(saved)
    assert b.iteration == 2
    for it in (3, 4):
        la, lb = train_step(a, batches[it - 1], it), train_step(b, batches[it - 1], it)
        assert torch.equal(la["loss"], lb["loss"]) and la["lr"] == lb["lr"]
    assert_same_weights(a.state_dict()["model"], b.state_dict()["model"], atol=0)
    assert_same_weights(a.state_dict()["ema"], b.state_dict()["ema"], atol=0)
