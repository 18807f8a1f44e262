"""`bench run --degradation` (issue 21, test-time wiring): the default stays today's run,
a preset changes every method's test LR (seeded per plate), is recorded, names the run
directory and the leaderboard, and re-evaluates a finished run without retraining."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from lpsr.degradations import get_degradation, known_degradations

BASE = ["run", "--methods", "bicubic,tiny", "--scale", "8", "--profile", "test", "--ocr", "none", "--isolation", "none"]
CAMERA_DIR = "synthetic-x8-test-camera"  # the default run directory (and leaderboard stem) under --degradation camera


def bench(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The real console entry point in a subprocess (exit codes and stderr as a user sees them)."""
    return subprocess.run([sys.executable, "-c", "from bench.cli import main; main()", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


def ok(res: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert res.returncode == 0, res.stderr
    return res


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two default runs (without the option, with ``--degradation bicubic``) and two camera
    runs, each in its own folder; the camera runs use the default run directory name."""
    out = tmp_path_factory.mktemp("deg")
    for name, extra in (("plain", []), ("bicubic", ["--degradation", "bicubic"])):
        ok(bench(*BASE, "--run-dir", str(out / name), "--leaderboard-dir", str(out / f"lb-{name}"), *extra))
    for name in ("cam1", "cam2"):
        (out / name).mkdir()
        ok(bench(*BASE, "--degradation", "camera", "--leaderboard-dir", "lb", cwd=out / name))
    return out


def plates(run_dir: Path, method: str) -> pd.DataFrame:
    return pd.read_csv(run_dir / method / "plates.csv")


def result(run_dir: Path, method: str) -> dict:
    return json.loads((run_dir / method / "result.json").read_text())


def test_default_is_bicubic_and_unchanged(runs):
    for method in ("bicubic", "tiny"):
        a, b = runs / "plain" / method, runs / "bicubic" / method
        assert (a / "plates.csv").read_bytes() == (b / "plates.csv").read_bytes()
        ra, rb = result(runs / "plain", method), result(runs / "bicubic", method)
        assert ra["config_hash"] == rb["config_hash"] and ra["eval_key"] == rb["eval_key"]
        assert ra["degradation"] == get_degradation("bicubic").describe()
        assert "degradation" not in (a / "config.yaml").read_text()  # the default leaves config.yaml as it was
    for name in ("plain", "bicubic"):  # the default leaderboard keeps its name and provenance line
        md = (runs / f"lb-{name}" / "synthetic-x8-test.md").read_text()
        assert "LR = antialiased bicubic downscale of the HR plate" in md
        assert "degradation" not in pd.read_csv(runs / f"lb-{name}" / "synthetic-x8-test.csv").columns


def test_camera_changes_lr_and_scores_deterministically(runs):
    cam1, cam2 = runs / "cam1" / "runs" / CAMERA_DIR, runs / "cam2" / "runs" / CAMERA_DIR
    for method in ("bicubic", "tiny"):
        assert (cam1 / method / "plates.csv").read_bytes() == (cam2 / method / "plates.csv").read_bytes()
        base, cam = plates(runs / "plain", method), plates(cam1, method)
        assert list(base["id"]) == list(cam["id"])
        # same HR, same network: every plate scores differently only because its LR did
        assert (base["psnr"] != cam["psnr"]).all()
    # the untrained bicubic upscaler is a fixed function of the LR: worse on camera LR
    assert plates(cam1, "bicubic")["psnr"].mean() < plates(runs / "plain", "bicubic")["psnr"].mean()
    camera = get_degradation("camera").describe()
    res = result(cam1, "tiny")
    assert res["degradation"] == camera and res["eval_key"] != result(runs / "plain", "tiny")["eval_key"]
    assert res["train_key"] == result(runs / "plain", "tiny")["train_key"]  # training is not affected


def test_camera_is_named_in_the_leaderboard(runs):
    lb = runs / "cam1" / "lb"
    md = (lb / f"{CAMERA_DIR}.md").read_text()
    fp = get_degradation("camera").fingerprint
    assert "LR = degradation **`camera`** (camera: blur_sigma 1.2, jpeg_quality 75, noise_sigma 3.0; " \
           f"fingerprint `{fp}`)" in md
    board = pd.read_csv(lb / f"{CAMERA_DIR}.csv")
    assert set(board["degradation"]) == {"camera"} and set(board["degradation_fingerprint"]) == {fp}
    meta = json.loads((lb / f"{CAMERA_DIR}.json").read_text())["meta"]
    assert meta["provenance"]["degradation"]["params"]["jpeg_quality"] == 75


def test_camera_reevaluates_a_bicubic_run_without_retraining(runs, tmp_path):
    run_dir = tmp_path / "r"
    shutil.copytree(runs / "plain", run_dir)
    tiny = run_dir / "tiny"
    log, best = (tiny / "train.jsonl").read_bytes(), (tiny / "ckpt" / "best.safetensors").read_bytes()
    res = ok(bench(*BASE, "--degradation", "camera", "--run-dir", str(run_dir), "--leaderboard-dir", str(tmp_path / "lb")))
    assert "already in" not in res.stdout  # the cached bicubic results are not reused
    assert "[tiny] evaluation settings changed; re-evaluating from the existing checkpoint (no retraining)" in res.stdout
    assert (tiny / "train.jsonl").read_bytes() == log and (tiny / "ckpt" / "best.safetensors").read_bytes() == best
    assert result(run_dir, "tiny")["degradation"]["name"] == "camera"
    # the same weights on the same camera LR: the scores of the camera run that trained its own
    cam = runs / "cam1" / "runs" / CAMERA_DIR
    for method in ("bicubic", "tiny"):
        assert (run_dir / method / "plates.csv").read_bytes() == (cam / method / "plates.csv").read_bytes()
    assert (tmp_path / "lb" / "r-camera.md").exists() is False and (tmp_path / "lb" / "synthetic-x8-test-camera.md").exists()


def test_unknown_degradation_is_one_line_listing_the_presets(tmp_path):
    res = bench(*BASE, "--degradation", "fog", "--run-dir", str(tmp_path / "r"))
    assert res.returncode == 2
    line = res.stderr.strip()
    assert "\n" not in line
    assert line == f"error: --degradation: unknown degradation 'fog'; known: {', '.join(known_degradations())} (or the path of a preset YAML)"
    assert not (tmp_path / "r").exists()


def test_a_recorded_degradation_rebuilds_the_same_lr():
    """What a report rebuilds from result.json's ``degradation`` (the qualitative grid's
    floor LR) makes the run's LR bytes; a result from before degradations is bicubic."""
    import numpy as np

    from lpsr.degradations import degradation_from_record

    hr = np.random.default_rng(0).integers(0, 256, (64, 192, 3), dtype=np.uint8)
    for name in ("camera", "motion", "camera-random"):
        deg = get_degradation(name)
        again = degradation_from_record(json.loads(json.dumps(deg.describe())))
        assert again.fingerprint == deg.fingerprint
        assert np.array_equal(again.apply(hr, 8, key="p1"), deg.apply(hr, 8, key="p1"))
    old = degradation_from_record(None)
    assert old.is_default and np.array_equal(old.apply(hr, 8, key="p1"), get_degradation("bicubic").apply(hr, 8, key="p1"))
