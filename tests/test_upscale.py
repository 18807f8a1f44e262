"""`bench upscale`: the run's own SR pixels from its checkpoint, odd inputs, and its outputs."""
from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from PIL import Image

from cli_helpers import run_main
from lpsr.data.degrade import make_pair
from lpsr.evaluate import load_images


def _bench(*args: str) -> None:
    done = subprocess.run([sys.executable, "-c", "from bench.cli import main; main()", *args], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """`tiny` trained on the test profile (6 plates per split) next to bicubic."""
    out = tmp_path_factory.mktemp("upscale")
    _bench("run", "--methods", "bicubic,tiny", "--profile", "test", "--limit", "6", "--ocr", "none", "--isolation", "none",
           "--run-dir", str(out / "run"), "--leaderboard-dir", str(out / "lb"))
    return out / "run"


@pytest.fixture(scope="module")
def lr_folder(tiny_run) -> Path:
    """The run's test plates as the LR PNGs `bench run` fed the networks."""
    folder = tiny_run.parent / "lr"
    folder.mkdir()
    for pid, hr in load_images(tiny_run / "_hr" / "hr_test.npz").items():
        Image.fromarray(make_pair(hr, 8, pid)[0]).save(folder / f"{pid}.png")
    return folder


def _png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def test_upscale_gives_the_run_s_own_sr_pixels(tiny_run, lr_folder, tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, err = run_main(capsys, "upscale", str(lr_folder), "--method", "tiny", "--compare", "bicubic", "--from", str(tiny_run),
                                 "--out", str(out), "--ocr", "none")
    assert code == 0, err
    for name in ("tiny", "bicubic"):
        saved = load_images(tiny_run / name / "sr_test.npz")
        assert len(saved) == 6
        for pid, sr in saved.items():
            assert np.array_equal(_png(out / name / f"{pid}.png"), sr), (name, pid)
    assert "plates/s" in stdout
    rows = list(csv.DictReader((out / "reads.csv").open(encoding="utf-8")))
    assert {r["method"] for r in rows} == {"tiny", "bicubic"} and len(rows) == 12
    sheet = _png(out / "contact_sheet.png")
    assert sheet.shape[1] >= 3 * 192 and sheet.shape[0] >= 6 * 64  # LR | Bicubic | tiny, six rows
    assert 'src="contact_sheet.png"' in (out / "index.html").read_text(encoding="utf-8")
    # nothing is overwritten without --force
    code, _, err = run_main(capsys, "upscale", str(lr_folder), "--method", "tiny", "--from", str(tiny_run), "--out", str(out), "--ocr", "none")
    assert code == 2 and "--force" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_main(capsys, "upscale", str(lr_folder), "--method", "tiny", "--from", str(tiny_run), "--out", str(out), "--ocr", "none",
                            "--force")
    assert code == 0, err


def test_odd_inputs_give_a_result_or_a_named_skip(tiny_run, tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(0)
    grey8 = rng.integers(0, 256, (9, 20), dtype=np.uint8)
    rgb = rng.integers(0, 256, (8, 24, 3), dtype=np.uint8)
    Image.fromarray(rng.integers(0, 256, (1, 1, 3), dtype=np.uint8)).save(src / "one.png")
    Image.fromarray(rng.integers(0, 256, (3, 7, 3), dtype=np.uint8)).save(src / "seven_by_three.bmp")
    Image.fromarray(grey8).save(src / "grey.png")
    cv2.imwrite(str(src / "grey16.png"), grey8.astype(np.uint16) * 257)  # the same grey levels at 16 bits
    Image.fromarray(rgb).save(src / "rgb.png")
    Image.fromarray(np.dstack([rgb, np.full((8, 24), 255, np.uint8)])).save(src / "rgba_opaque.png")
    Image.fromarray(np.zeros((8, 24, 4), np.uint8)).save(src / "rgba_clear.png")
    Image.fromarray(np.full((8, 24, 3), 255, np.uint8)).save(src / "white.png")
    Image.fromarray(rgb).save(src / "rgb.webp", lossless=True)
    Image.fromarray(np.zeros((1500, 4000, 3), np.uint8)).save(src / "huge.png")
    Image.fromarray(rgb).save(tmp_path / "full.jpg", quality=95)
    (src / "truncated.jpg").write_bytes((tmp_path / "full.jpg").read_bytes()[:300])
    (src / "notes.png").write_text("not an image", encoding="utf-8")
    out = tmp_path / "out"
    code, stdout, err = run_main(capsys, "upscale", str(src), "--method", "tiny", "--from", str(tiny_run), "--out", str(out), "--ocr", "none")
    assert code == 0, err
    for name in ("huge.png", "truncated.jpg", "notes.png"):
        assert f"skipped: {src / name}: " in stdout
    assert "4000x1500 px is too large" in stdout and "9 inputs upscaled x8, 3 skipped" in stdout
    sr = {p.stem: _png(p) for p in (out / "tiny").glob("*.png")}
    assert sr["one"].shape == (8, 8, 3) and sr["seven_by_three"].shape == (24, 56, 3)
    assert np.array_equal(sr["grey16"], sr["grey"])  # 16-bit input read at full precision, not truncated
    assert np.array_equal(sr["rgba_opaque"], sr["rgb"]) and np.array_equal(sr["rgb"], sr["rgb-2"])  # the webp twin
    assert np.array_equal(sr["rgba_clear"], sr["white"])  # a transparent image is composited over white
    # --strict: the first bad file is an error naming it
    code, _, err = run_main(capsys, "upscale", str(src), "--method", "tiny", "--from", str(tiny_run), "--out", str(tmp_path / "o2"),
                            "--ocr", "none", "--strict")
    assert code == 2 and f"{src / 'huge.png'}: 4000x1500 px is too large" in err


@pytest.mark.parametrize("args, message", [
    (["--precision", "fp16", "--device", "cpu"], "--precision fp16 needs a CUDA device"),
    (["--method", "tiny"], "method 'tiny' is learned: give --from RUN_DIR"),
])
def test_one_line_errors(args, message, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    Image.fromarray(np.zeros((8, 24, 3), np.uint8)).save(tmp_path / "a.png")
    code, _, err = run_main(capsys, "upscale", str(tmp_path / "a.png"), "--method", "bicubic", *args, "--out", str(tmp_path / "o"),
                            "--ocr", "none")
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    code, _, err = run_main(capsys, "upscale", str(tmp_path / "empty"), "--method", "bicubic", "--out", str(tmp_path / "o"), "--ocr", "none")
    assert code == 2 and "holds no images" in err


def test_settings_changed_since_training_is_an_error_naming_the_key(tiny_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_run / "tiny", run / "tiny")
    cfg_path = run / "tiny" / "config.yaml"
    cfg = yaml.safe_load(cfg_path.read_text(encoding="utf-8"))
    cfg["settings"]["channels"] = 32
    cfg_path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    Image.fromarray(np.zeros((8, 24, 3), np.uint8)).save(tmp_path / "a.png")
    code, _, err = run_main(capsys, "upscale", str(tmp_path / "a.png"), "--method", "tiny", "--from", str(run), "--out", str(tmp_path / "o"),
                            "--ocr", "none")
    assert code == 2 and "trained with channels = 32" in err and "now gives 16" in err


def test_ccpd_photo_is_cut_and_degraded_as_the_benchmark_does(tiny_run, tmp_path, capsys):
    """A CCPD-named photo: the plate comes out at the run's HR size with its true text."""
    photo = np.full((120, 300, 3), 90, np.uint8)
    photo[40:80, 60:240] = (200, 60, 30)
    name = "0033-0_1-60&40_239&79-239&79_60&79_60&40_239&40-0_0_22_12_31_29_33-91-16.jpg"
    src = tmp_path / "photos"
    src.mkdir()
    cv2.imwrite(str(src / name), photo)
    out = tmp_path / "out"
    code, stdout, err = run_main(capsys, "upscale", str(src), "--ccpd", "--method", "tiny", "--from", str(tiny_run), "--out", str(out),
                                 "--ocr", "none")
    assert code == 0, err
    assert _png(out / "tiny" / (Path(name).stem + ".png")).shape == (64, 192, 3)
    rows = list(csv.DictReader((out / "reads.csv").open(encoding="utf-8")))
    assert {r["truth"] for r in rows} == {"皖AYN759"} and {r["method"] for r in rows} == {"bicubic", "tiny", "HR"}


def test_ccpd_photo_under_a_degradation_gets_the_runs_lr(tiny_run, tmp_path, capsys):
    """`--ccpd --degradation camera`: the plate's LR is the camera preset's, keyed by the plate
    id as `bench run --degradation camera` makes it; without --ccpd the option is refused."""
    from lpsr.data.ccpd import load_ccpd_image
    from lpsr.degradations import get_degradation
    from lpsr.infer import ccpd_lr

    photo = np.full((120, 300, 3), 90, np.uint8)
    photo[40:80, 60:240] = (200, 60, 30)
    photo[50:70, 80:220:12] = 250
    name = "0033-0_1-60&40_239&79-239&79_60&79_60&40_239&40-0_0_22_12_31_29_33-91-16.jpg"
    src = tmp_path / "photos"
    src.mkdir()
    cv2.imwrite(str(src / name), photo)
    camera = get_degradation("camera")
    record = load_ccpd_image(src / name, size=(192, 64), crop="perspective", scale=8)
    lr, _hr, _ = ccpd_lr(src / name, 8, (192, 64), "perspective", camera)
    assert np.array_equal((lr * 255).round().astype(np.uint8), camera.apply(record.hr, 8, key=record.id))
    assert not np.array_equal(lr, ccpd_lr(src / name, 8, (192, 64), "perspective")[0])
    sr = {}
    for deg in ("bicubic", "camera"):
        out = tmp_path / f"out-{deg}"
        code, _, err = run_main(capsys, "upscale", str(src), "--ccpd", "--degradation", deg, "--method", "tiny", "--from", str(tiny_run),
                                "--out", str(out), "--ocr", "none")
        assert code == 0, err
        sr[deg] = _png(out / "tiny" / (Path(name).stem + ".png"))
    assert not np.array_equal(sr["bicubic"], sr["camera"])
    code, _, err = run_main(capsys, "upscale", str(src / name), "--degradation", "camera", "--method", "tiny", "--from", str(tiny_run),
                            "--out", str(tmp_path / "o"), "--ocr", "none")
    assert code == 2 and err.strip() == "error: --degradation needs --ccpd: a plate crop is already the LR (only a CCPD photo's HR plate is degraded)"
