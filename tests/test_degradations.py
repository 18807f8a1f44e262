"""Named degradations (issue 21, lpsr/degradations): the presets are what they say, test LR
is a pure function of (plate, preset), training LR of (seed, rank, k), errors are one line.

Oracles: the issue's definition of the camera chain written here with PIL/numpy, today's LR
(``lpsr.data.degrade.make_pair``), the preset YAML files themselves, a subprocess, moments of
the motion kernel, and basicsr's own JPEG function.
"""
from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image, ImageDraw, ImageFilter

from lpsr.config import ConfigError
from lpsr.data.degrade import make_pair
from lpsr.degradations import get_degradation, known_degradations, plate_generator, training_generator
from lpsr.degradations.camera import motion_kernel
from lpsr.degradations.degradation import Degradation
from lpsr.degradations.lookup import presets_dir
from lpsr.degradations.presets import CameraPreset, MotionPreset

REPO = Path(__file__).resolve().parents[1]
RANDOM_PRESETS = ["camera-mild", "camera", "camera-hard", "motion", "camera-random"]


def plate(seed: int = 0, size: tuple[int, int] = (192, 64)) -> np.ndarray:
    """A known plate-like image: a coloured background with dark glyph-like strokes."""
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", size, tuple(int(v) for v in rng.integers(40, 220, 3)))
    draw = ImageDraw.Draw(img)
    for i in range(7):
        x = 8 + i * (size[0] - 16) // 7
        draw.rectangle([x, 12, x + 14, size[1] - 12], outline=(250, 250, 250), width=4)
        draw.line([x, 12, x + 14, size[1] - 12], fill=tuple(int(v) for v in rng.integers(0, 80, 3)), width=3)
    return np.asarray(img)


def lr_digest(name: str, plate_id: str) -> str:
    return hashlib.sha256(get_degradation(name).apply(plate(), 8, key=plate_id).tobytes()).hexdigest()


def test_the_issue_presets_are_built_in():
    assert set(known_degradations()) >= {"bicubic", "camera-mild", "camera", "camera-hard", "motion", "camera-random", "realesrgan"}


@pytest.mark.parametrize("name", ["bicubic", "camera-mild", "camera", "camera-hard", "motion", "camera-random", "realesrgan"])
def test_describe_records_every_parameter_of_the_yaml(name):
    deg = get_degradation(name)
    described = deg.describe()
    written = yaml.safe_load((presets_dir() / f"{name}.yaml").read_text())
    assert described["name"] == name
    assert described["params"] == written  # every key of the file, same values (ints == floats)
    assert len(described["fingerprint"]) == 12 and described["fingerprint"] == get_degradation(name).fingerprint


def test_the_camera_presets_have_the_issue_values():
    values = {n: (get_degradation(n).params["blur_sigma"], get_degradation(n).params["noise_sigma"],
                  get_degradation(n).params["jpeg_quality"]) for n in ("camera-mild", "camera", "camera-hard")}
    assert values == {"camera-mild": (0.8, 2, 90), "camera": (1.2, 3, 75), "camera-hard": (1.6, 4, 60)}


def test_fingerprints_differ_between_presets():
    fps = [get_degradation(n).fingerprint for n in known_degradations()]
    assert len(set(fps)) == len(fps)


def issue_camera_chain(hr: np.ndarray, blur: float, noise: float, quality: int, rng: np.random.Generator) -> np.ndarray:
    """Issue 21's definition, written out: PIL GaussianBlur(radius=sigma) on the HR, x8
    antialiased bicubic (PIL), Gaussian noise sigma on 0-255 per channel added to the LR,
    clipped and rounded, PIL JPEG at that quality with the default 4:2:0 subsampling."""
    img = Image.fromarray(hr).filter(ImageFilter.GaussianBlur(radius=blur))
    img = img.resize((hr.shape[1] // 8, hr.shape[0] // 8), Image.BICUBIC)
    lr = np.asarray(img).astype(np.float64) + rng.normal(0.0, noise, (hr.shape[0] // 8, hr.shape[1] // 8, 3))
    lr = np.clip(np.round(lr), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(lr).save(buf, format="JPEG", quality=quality, subsampling="4:2:0")
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


@pytest.mark.parametrize("name", ["camera-mild", "camera", "camera-hard"])
def test_camera_chain_matches_its_definition(name):
    deg = get_degradation(name)
    p = deg.params
    hr = plate(3)
    expected = issue_camera_chain(hr, p["blur_sigma"], p["noise_sigma"], p["jpeg_quality"], plate_generator("known", name, p))
    assert np.array_equal(deg.apply(hr, 8, key="known"), expected)


def test_camera_noise_is_per_channel_with_the_stated_sigma():
    from lpsr.degradations.camera import add_noise
    flat = np.full((256, 256, 3), 128, np.uint8)
    diff = add_noise(flat, 3.0, np.random.default_rng(0)).astype(float) - 128
    assert abs(diff.std() - 3.0) < 0.05 and abs(diff.mean()) < 0.05
    assert abs(np.corrcoef(diff[..., 0].ravel(), diff[..., 1].ravel())[0, 1]) < 0.02  # independent channels


def test_bicubic_preset_is_todays_lr_exactly():
    hr = plate(1, (197, 67))  # not a multiple of 8: both mod-crop the same way
    lr, cropped = make_pair(hr, 8, "p")
    assert np.array_equal(get_degradation("bicubic").apply(hr, 8, key="p"), lr)
    got_lr, got_hr = get_degradation("bicubic").pair(hr, 8, key="p")
    assert np.array_equal(got_lr, lr) and np.array_equal(got_hr, cropped)


@pytest.mark.parametrize("name", RANDOM_PRESETS)
def test_test_lr_is_the_same_per_plate_and_differs_between_plates(name):
    deg = get_degradation(name)
    a, again, b = (deg.apply(plate(), 8, key=k) for k in ("plate-a", "plate-a", "plate-b"))
    assert a.shape == (8, 24, 3) and a.dtype == np.uint8
    assert np.array_equal(a, again)
    assert not np.array_equal(a, b)


def test_test_lr_bytes_are_the_same_in_another_process():
    code = ("import sys; sys.path.insert(0, %r); import tests.test_degradations as t; "
            "print(' '.join(t.lr_digest(n, 'plate-a') for n in %r))") % (str(REPO), RANDOM_PRESETS)
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO, check=True)
    assert out.stdout.split() == [lr_digest(n, "plate-a") for n in RANDOM_PRESETS]


def test_training_lr_differs_per_k_and_repeats_for_the_same_seed_rank_k():
    deg = get_degradation("camera-random")
    hr = plate()
    by_key = {key: deg.apply(hr, 8, key=key) for key in [(0, 0, 0), (0, 0, 1), (0, 0, 2), (0, 1, 0), (1, 0, 0)]}
    digests = {k: v.tobytes() for k, v in by_key.items()}
    assert len(set(digests.values())) == len(digests)
    assert np.array_equal(deg.apply(hr, 8, key=(0, 0, 1)), by_key[(0, 0, 1)])
    # a batch draws its samples in order from the batch's generator: the samples differ, the batch repeats
    batch = lambda: [deg.apply(hr, 8, key=g) for g in [training_generator(0, 0, 5)] for _ in range(4)]  # noqa: E731
    first, second = batch(), batch()
    assert all(np.array_equal(x, y) for x, y in zip(first, second))
    assert len({x.tobytes() for x in first}) == 4


def test_training_and_test_streams_are_apart():
    deg = get_degradation("camera")
    assert not np.array_equal(deg.apply(plate(), 8, key=(0, 0, 0)), deg.apply(plate(), 8, key="0"))
    # the patch sampler seeds default_rng([seed, rank, k]); the degradation's stream is another one
    assert training_generator(0, 0, 0).random() != np.random.default_rng([0, 0, 0]).random()


def test_motion_kernel_is_a_segment_of_the_stated_length_and_angle():
    for length in (5.0, 9.0, 6.0):
        k = motion_kernel(length, 0.0)
        ys, xs = np.mgrid[: k.shape[0], : k.shape[1]]
        c = k.shape[0] // 2
        assert k.sum() == pytest.approx(1.0)
        assert (k * xs).sum() == pytest.approx(c) and (k * ys).sum() == pytest.approx(c)
        # a uniform segment of length L, splatted bilinearly: variance L^2/12 + 1/6 (the hat's)
        assert (k * (xs - c) ** 2).sum() == pytest.approx(length ** 2 / 12 + 1 / 6, rel=1e-3)
        assert (k * (ys - c) ** 2).sum() == pytest.approx(0.0, abs=1e-12)
    v = motion_kernel(9.0, 90.0)
    assert np.allclose(v, motion_kernel(9.0, 0.0).T)
    d = motion_kernel(9.0, 45.0)
    ys, xs = np.mgrid[: d.shape[0], : d.shape[1]] - d.shape[0] // 2
    assert (d * xs * ys).sum() < -1  # up-right in the image: y grows downwards


def test_motion_preset_is_motion_blur_then_the_camera_chain():
    hr = plate(2)
    cam = dict(blur_sigma=1.2, noise_sigma=3.0, jpeg_quality=75)
    still = Degradation("m", MotionPreset(kind="motion", length=0.0, angle=0.0, **cam))
    camera = Degradation("m", CameraPreset(kind="camera", **cam))
    same_draws = lambda d: d.apply(hr, 8, key=np.random.default_rng(4))  # noqa: E731
    assert np.array_equal(same_draws(still), same_draws(camera))
    assert not np.array_equal(same_draws(get_degradation("motion")), same_draws(get_degradation("camera")))


# --- realesrgan: Real-ESRGAN's pipeline through basicsr -------------------------------

@pytest.fixture(scope="module")
def basicsr_degradations():
    from lpsr.degradations.realesrgan import basicsr_parts
    from lpsr.errors import UserError
    try:
        return basicsr_parts()[0]
    except UserError:
        pytest.skip("basicsr is in the test extra: pip install -e '.[test]'")


def test_realesrgan_output_and_determinism(basicsr_degradations):
    deg = get_degradation("realesrgan")
    hr = plate(5)
    outs = [deg.apply(hr, 8, key=f"plate-{i}") for i in range(12)]
    for lr in outs:
        assert lr.shape == (8, 24, 3) and lr.dtype == np.uint8
    assert np.array_equal(deg.apply(hr, 8, key="plate-3"), outs[3])
    assert len({lr.tobytes() for lr in outs}) == 12
    assert np.array_equal(deg.apply(hr, 8, key=(0, 0, 7)), deg.apply(hr, 8, key=(0, 0, 7)))
    # random, yet an LR of this plate: closer to its own bicubic LR than to another plate's
    own, other = make_pair(hr, 8)[0].astype(float), make_pair(plate(9), 8)[0].astype(float)
    mean = np.mean(outs, axis=0)
    assert np.abs(mean - own).mean() < np.abs(mean - other).mean()


def test_realesrgan_other_scales_and_odd_sizes(basicsr_degradations):
    deg = get_degradation("realesrgan")
    assert deg.apply(plate(6, (197, 67)), 8, key="odd").shape == (8, 24, 3)
    assert deg.apply(plate(6), 4, key="x4").shape == (16, 48, 3)


def test_realesrgan_kernel_cap():
    from lpsr.degradations.realesrgan import kernel_cap
    # the recipe's 21 px stays on the 64-px HR; a 9-px intermediate and the 8-px LR get 3 px
    assert [kernel_cap(s, 0.35) for s in (64, 60, 32, 9, 8, 1)] == [21, 21, 11, 3, 3, 3]


def test_realesrgan_jpeg_is_basicsr_add_jpg_compression(basicsr_degradations):
    from lpsr.degradations.realesrgan import jpeg_cv2
    img = np.random.default_rng(1).random((10, 30, 3)).astype(np.float32)
    for q in (30, 62, 95):
        ours = jpeg_cv2(img, q)
        theirs = basicsr_degradations.add_jpg_compression(np.ascontiguousarray(img[..., ::-1]), q)[..., ::-1]
        assert np.array_equal(ours, theirs)


# --- errors: one line naming the preset or file --------------------------------------

def _preset(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "my-camera.yaml"
    path.write_text(text)
    return path


def test_unknown_preset_names_the_known_ones():
    with pytest.raises(ConfigError) as err:
        get_degradation("camra")
    msg = str(err.value)
    assert "\n" not in msg and "'camra'" in msg and "camera-hard" in msg and "realesrgan" in msg


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"degradation file .*nope\.yaml does not exist"):
        get_degradation(tmp_path / "nope.yaml")


@pytest.mark.parametrize("text, expected", [
    ("kind: camera\nblur_sigma: -1\nnoise_sigma: 3\njpeg_quality: 75\n", "my-camera.yaml: blur_sigma: must be >= 0, got -1"),
    ("kind: camera\nblur_sigam: 1\nnoise_sigma: 3\njpeg_quality: 75\n", "my-camera.yaml: blur_sigam: unknown key 'blur_sigam' (did you mean 'blur_sigma'?)"),
    ("kind: camera\nblur_sigma: 1\nnoise_sigma: 3\n", "my-camera.yaml: jpeg_quality: required"),
    ("kind: camera\nblur_sigma: 1\nnoise_sigma: 3\njpeg_quality: 7.5\n", "my-camera.yaml: jpeg_quality: expected an integer, got 7.5"),
    ("kind: camera-random\nblur_sigma: [2, 1]\nnoise_sigma: [0, 5]\njpeg_quality: [45, 95]\n", "my-camera.yaml: blur_sigma: expected [low, high] with low <= high"),
    ("kind: blurry\n", "my-camera.yaml: kind: unknown kind 'blurry'; known kinds: bicubic, camera, motion, camera-random, realesrgan"),
    ("blur_sigma: 1\n", "my-camera.yaml: kind: missing; known kinds:"),
])
def test_bad_parameters_are_one_line_with_the_key_path(tmp_path, text, expected):
    with pytest.raises(ConfigError) as err:
        get_degradation(_preset(tmp_path, text))
    msg = str(err.value)
    assert "\n" not in msg and expected in msg


def test_nested_realesrgan_key_path(tmp_path):
    text = (presets_dir() / "realesrgan.yaml").read_text().replace("  blur_sigma: [0.2, 1.5]", "  blur_sigma: [0.2, -1.5]")
    with pytest.raises(ConfigError) as err:
        get_degradation(_preset(tmp_path, text))
    assert "my-camera.yaml: second.blur_sigma.1: must be >= 0, got -1.5" in str(err.value)


def test_a_preset_file_is_named_after_its_stem_and_seeds_by_it(tmp_path):
    path = _preset(tmp_path, (presets_dir() / "camera.yaml").read_text())
    mine = get_degradation(str(path))
    assert mine.name == "my-camera" and mine.params == get_degradation("camera").params
    assert mine.fingerprint != get_degradation("camera").fingerprint
    assert not np.array_equal(mine.apply(plate(), 8, key="p"), get_degradation("camera").apply(plate(), 8, key="p"))


def test_realesrgan_without_basicsr_is_one_line_naming_the_preset_and_the_install(monkeypatch):
    """basicsr is only in the ``test`` extra: without it, the preset says how to get it."""
    from lpsr.degradations.realesrgan import basicsr_parts
    from lpsr.errors import UserError

    basicsr_parts.cache_clear()
    monkeypatch.setitem(sys.modules, "basicsr.data.degradations", None)  # import -> ImportError
    try:
        with pytest.raises(UserError) as err:
            get_degradation("realesrgan").apply(plate(), 8, key="p")
    finally:
        basicsr_parts.cache_clear()
    msg = str(err.value)
    assert "\n" not in msg and "'realesrgan'" in msg and "pip install" in msg and "basicsr" in msg
    assert get_degradation("camera").apply(plate(), 8, key="p").shape == (8, 24, 3)  # the others need nothing
