"""Training under a degradation (issue 21, ``train.degradation``): the default stays today's
training bit for bit; another preset makes each sample's LR from its whole HR plate, seeded
by (seed, rank, sample position), so training is deterministic and resumes exactly; the val
LR uses it too (keyed per plate); it is part of the training key; a bad value is one line."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from lpsr import registry
from lpsr.config import ConfigError
from lpsr.data.patches import PatchSampler
from lpsr.data.record import PlateRecord
from lpsr.degradations import get_degradation, known_degradations, training_generator
from lpsr.profile import validate_profile
from lpsr.train.loop import train
from lpsr.train.settings import TrainSettings
from lpsr.train.validate import Validator
from cli_helpers import timeless_log
from test_train_loop import SETTINGS, _plates, assert_same_weights, build, crash_and_resume, final_weights

CPU = torch.device("cpu")


def run(tmp_path, name, **extra):
    """tiny x4 on 6 train / 3 val plates, seed 3; the run folder."""
    method = registry.get("tiny").create(4)
    out = tmp_path / name
    train(method, build(method), _plates(6, 0), _plates(3, 1), TrainSettings(**{**SETTINGS, **extra}), out, CPU, seed=3)
    return out


def test_default_is_todays_training(tmp_path):
    plain, bicubic = run(tmp_path, "plain"), run(tmp_path, "bicubic", degradation="bicubic")
    assert timeless_log(plain / "train.jsonl") == timeless_log(bicubic / "train.jsonl")
    assert_same_weights(final_weights(plain), final_weights(bicubic), atol=0)
    # the default is not written: config.yaml, training keys and resume checkpoints stay as they were
    assert TrainSettings(degradation="bicubic").to_dict() == TrainSettings().to_dict()
    assert "degradation" not in TrainSettings().to_dict()
    assert TrainSettings(degradation="camera").to_dict()["degradation"] == "camera"


def test_camera_training_differs_and_is_deterministic(tmp_path):
    a, b = run(tmp_path, "a", degradation="camera"), run(tmp_path, "b", degradation="camera")
    assert timeless_log(a / "train.jsonl") == timeless_log(b / "train.jsonl")
    assert_same_weights(final_weights(a), final_weights(b), atol=0)
    plain = run(tmp_path, "plain")
    assert timeless_log(a / "train.jsonl") != timeless_log(plain / "train.jsonl")
    wa, wp = final_weights(a), final_weights(plain)
    assert any(not torch.equal(wa[k], wp[k]) for k in wa)


def test_resume_under_camera_is_bit_identical(tmp_path):
    res = crash_and_resume(tmp_path, TrainSettings(**{**SETTINGS, "degradation": "camera"}))
    assert res.resumed_from == 4
    assert_same_weights(final_weights(tmp_path / "straight"), final_weights(tmp_path / "resumed"), atol=0)
    assert timeless_log(tmp_path / "straight" / "train.jsonl") == timeless_log(tmp_path / "resumed" / "train.jsonl")


def test_a_checkpoint_of_another_training_degradation_is_refused(tmp_path):
    from lpsr.train.checkpoint import CheckpointError

    method = registry.get("tiny").create(4)
    settings = TrainSettings(**{**SETTINGS, "iterations": 4})
    train(method, build(method), _plates(4, 0), _plates(2, 1), settings, tmp_path, CPU, seed=1)
    with pytest.raises(CheckpointError, match=r"other training settings \(degradation None -> 'camera'\)"):
        train(method, build(method), _plates(4, 0), _plates(2, 1), TrainSettings(**{**settings.to_dict(), "degradation": "camera"}),
              tmp_path, CPU, seed=1)


def _noise_plates(n):
    """Plates of random pixels: every HR patch is found at one place only."""
    rng = np.random.default_rng(0)
    return [PlateRecord(f"n{i}", rng.integers(0, 256, (64, 192, 3), dtype=np.uint8), "A12345") for i in range(n)]


def _u8(t):
    return (t * 255).round().byte().permute(0, 2, 3, 1).numpy()


@pytest.mark.parametrize("whole", [False, True])
def test_each_sample_is_its_whole_plate_degraded_then_cut(whole):
    """Oracle: the preset applied to the sample's whole HR plate with the generator of its
    stream position (batch k, sample i: n = k * batch_size + i), then the LR patch cut where
    the sample's HR patch lies; plates and positions are those of the bicubic stream."""
    plates, deg, s, bs = _noise_plates(3), get_degradation("camera"), 4, 5
    plain = PatchSampler(plates, s, 32, seed=7, whole_plates=whole, rank=1)
    cam = PatchSampler(plates, s, 32, seed=7, whole_plates=whole, rank=1, degradation=deg)
    for k in (0, 3):
        a, b = plain.batch(k, bs), cam.batch(k, bs)
        assert torch.equal(a.hr, b.hr) and a.texts == b.texts
        assert not torch.equal(a.lr, b.lr)
        hr_b, lr_b = _u8(b.hr), _u8(b.lr)
        ph, pw = hr_b.shape[1:3]
        for i in range(bs):
            hits = [(p, y, x) for p in plates for y in range(0, 64 - ph + 1, s) for x in range(0, 192 - pw + 1, s)
                    if np.array_equal(p.hr[y : y + ph, x : x + pw], hr_b[i])]
            assert len(hits) == 1
            p, y, x = hits[0]
            want = deg.apply(p.hr, s, key=training_generator(7, 1, k * bs + i))
            assert np.array_equal(want[y // s : (y + ph) // s, x // s : (x + pw) // s], lr_b[i])


def test_training_lr_differs_per_step():
    """The same plate at the same position in two batches gets two different draws."""
    plates, deg = _plates(1, 0), get_degradation("camera")
    cam = PatchSampler(plates, 4, 64, seed=0, whole_plates=True, degradation=deg)
    first, again = cam.batch(0, 2), cam.batch(1, 2)
    assert torch.equal(first.hr, again.hr)
    lrs = [first.lr[0], first.lr[1], again.lr[0], again.lr[1]]
    assert all(not torch.equal(lrs[i], lrs[j]) for i in range(4) for j in range(i + 1, 4))
    assert torch.equal(cam.batch(1, 2).lr, again.lr)  # and a batch is a pure function of k


def test_loader_workers_make_the_same_degraded_stream():
    """On CUDA DataLoader workers make the batches (a pickled sampler): the same stream."""
    from lpsr.data.patches import batch_stream

    sampler = PatchSampler(_plates(5, 0), 4, 32, seed=1, degradation=get_degradation("camera-random"))
    inline = list(batch_stream(sampler, 3, 2, 7, workers=0))
    loaded = list(batch_stream(sampler, 3, 2, 7, workers=2))
    assert len(inline) == len(loaded) == 5
    for x, y in zip(inline, loaded):
        assert torch.equal(x.lr, y.lr) and torch.equal(x.hr, y.hr)


def test_validation_lr_is_the_training_degradation_keyed_per_plate():
    method, plates, deg = registry.get("tiny").create(4), _plates(3, 1), get_degradation("camera")
    val = Validator(method, plates, CPU, degradation=deg)
    (lr_u8, hr_u8), = val.groups
    for i, p in enumerate(plates):
        assert np.array_equal(lr_u8[i].numpy(), deg.apply(p.hr, 4, key=p.id))
    assert not torch.equal(lr_u8, Validator(method, plates, CPU).groups[0][0])
    assert torch.equal(lr_u8, Validator(method, plates, CPU, degradation=deg).groups[0][0])  # deterministic


def test_val_psnr_of_camera_training_is_scored_on_camera_lr(tmp_path):
    """The logged val PSNR is the one the saved network reaches on camera val LR."""
    from safetensors.torch import load_file
    out = run(tmp_path, "cam", degradation="camera")
    method = registry.get("tiny").create(4)
    model = build(method)
    model.load_state_dict(load_file(out / "ckpt" / "best.safetensors"))
    best = max(r["val_psnr"] for r in timeless_log(out / "train.jsonl") if "val_psnr" in r)
    deg = get_degradation("camera")
    assert Validator(method, _plates(3, 1), CPU, degradation=deg).mean_psnr(model) == pytest.approx(best, abs=1e-9)
    assert Validator(method, _plates(3, 1), CPU).mean_psnr(model) != pytest.approx(best, abs=1e-6)


@pytest.mark.parametrize("value, message", [
    ("nope", r"^profile p.yaml: train.degradation: unknown degradation 'nope'; known: bicubic, camera, .*$"),
    ("missing/x.yaml", r"^profile p.yaml: train.degradation: degradation file missing/x.yaml does not exist"),
    (3, r"^profile p.yaml: train.degradation: expected a string, got 3$"),
])
def test_a_bad_training_degradation_is_one_line_naming_the_key(value, message):
    with pytest.raises(ConfigError, match=message) as info:
        validate_profile({"train": {"degradation": value}}, "profile p.yaml")
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match=r"^profile p.yaml: per_method.tiny.degradation: unknown degradation"):
        validate_profile({"per_method": {"tiny": {"degradation": "nope"}}}, "profile p.yaml", known_methods=["tiny"])


# -- bench run: the training key, result.json, names and provenance ----------------------------
TRAIN_DIR = "synthetic-x8-test-train-camera"  # the default run directory (and leaderboard stem) under --train-degradation camera


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A bicubic run, then the same run directory (a copy, at the default name of a
    ``--train-degradation camera`` run) rerun with ``--train-degradation camera``."""
    from test_degradations_run import BASE, bench, ok

    out = tmp_path_factory.mktemp("train-deg")
    ok(bench(*BASE, "--run-dir", str(out / "plain"), "--leaderboard-dir", str(out / "lb-plain")))
    shutil.copytree(out / "plain", out / "cam" / "runs" / TRAIN_DIR)
    res = ok(bench(*BASE, "--train-degradation", "camera", "--leaderboard-dir", "lb", cwd=out / "cam"))
    return out, res.stdout


def _result(run_dir, method):
    return json.loads((run_dir / method / "result.json").read_text())


def test_the_training_degradation_is_in_the_training_key_and_retrains(runs):
    out, stdout = runs
    plain, cam = out / "plain", out / "cam" / "runs" / TRAIN_DIR
    camera = get_degradation("camera").describe()
    a, b = _result(plain, "tiny"), _result(cam, "tiny")
    assert b["train_degradation"] == camera and a["train_degradation"] == get_degradation("bicubic").describe()
    assert a["train_key"] != b["train_key"] and a["eval_key"] == b["eval_key"]
    assert "[tiny] training settings changed (train.degradation, train_degradation): previous results and checkpoints moved to" in stdout
    assert list((cam / "tiny" / "superseded").iterdir())  # retrained, the bicubic training kept aside
    cfg = yaml.safe_load((cam / "tiny" / "config.yaml").read_text())
    assert cfg["train"]["degradation"] == "camera" and cfg["train_degradation"] == camera
    assert "degradation" not in (plain / "tiny" / "config.yaml").read_text()  # the default leaves config.yaml as it was
    # its val PSNR was measured on camera val LR: the untrained floor's too (re-evaluated, not reused)
    assert "train_degradation" not in _result(cam, "bicubic")
    assert _result(cam, "bicubic")["val_psnr"] < _result(plain, "bicubic")["val_psnr"]
    assert (cam / "bicubic" / "plates.csv").read_bytes() == (plain / "bicubic" / "plates.csv").read_bytes()  # same test LR


def test_the_training_degradation_is_named_in_the_leaderboard(runs):
    out, _ = runs
    lb = out / "cam" / "lb"
    md = (lb / f"{TRAIN_DIR}.md").read_text()
    fp = get_degradation("camera").fingerprint
    assert ("- training LR: degradation **`camera`** (camera: blur_sigma 1.2, jpeg_quality 75, noise_sigma 3.0; "
            f"fingerprint `{fp}`) for tiny;") in md
    assert "LR = antialiased bicubic downscale of the HR plate" in md  # the test LR is still bicubic
    board = pd.read_csv(lb / f"{TRAIN_DIR}.csv", keep_default_na=False).set_index("method")
    assert board.loc["tiny", "train_degradation"] == "camera" and board.loc["tiny", "train_degradation_fingerprint"] == fp
    assert board.loc["bicubic", "train_degradation"] == ""  # not trained here
    assert "train_degradation" not in pd.read_csv(out / "lb-plain" / "synthetic-x8-test.csv").columns
    meta = json.loads((lb / f"{TRAIN_DIR}.json").read_text())["meta"]
    assert meta["provenance"]["train_degradation"]["tiny"]["params"]["jpeg_quality"] == 75


def test_an_unknown_train_degradation_is_one_line_naming_the_option(tmp_path):
    from test_degradations_run import BASE, bench

    res = bench(*BASE, "--train-degradation", "fog", "--run-dir", str(tmp_path / "r"))
    assert res.returncode == 2
    line = res.stderr.strip()
    assert line == f"error: --train-degradation: unknown degradation 'fog'; known: {', '.join(known_degradations())} (or the path of a preset YAML)"
    assert not (tmp_path / "r").exists()
