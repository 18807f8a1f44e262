"""Issue 20: what a 217-case probe still found, one test per case (docs/errors.md rows 51-)."""
from __future__ import annotations

import hashlib
import json
import os
import socket
import struct
import warnings
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml
from safetensors import safe_open
from safetensors.torch import load_file

from cli_helpers import run_main
from lpsr.config import ConfigError, read_yaml
from lpsr.data.folder import load_folder
from lpsr.data.images import read_rgb
from lpsr.data.record import DataError
from lpsr.errors import RunLockedError, UserError
from lpsr.lock import RunLock
from lpsr.paths import check_not_file
from lpsr.train.checkpoint import save_weights
from lpsr.train.settings import TrainSettings

REPO = Path(__file__).resolve().parents[1]
TEST_PROFILE = yaml.safe_load((REPO / "configs" / "profiles" / "test.yaml").read_text())


def one_error_line(capsys, tmp_path: Path, *args: str) -> str:
    """`bench run --methods bicubic ...ARGS` must stop with one `error:` line, exit 2, before writing."""
    run_dir, lb = tmp_path / "r", tmp_path / "lb"
    base = ["run", "--methods", "bicubic", "--profile", "test", "--ocr", "none", "--run-dir", str(run_dir), "--leaderboard-dir", str(lb)]
    code, out, err = run_main(capsys, *base, *args)
    lines = [l for l in err.strip().splitlines() if l.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (code, out, err)
    assert "Traceback" not in out + err and not lb.exists()
    return lines[0]


def profile(tmp_path: Path, text: str | None = None, **blocks) -> str:
    data = json.loads(json.dumps(TEST_PROFILE))
    for key, value in blocks.items():
        data[key] = {**data[key], **value}
    path = tmp_path / "p.yaml"
    path.write_text(text if text is not None else yaml.safe_dump(data), encoding="utf-8")
    return str(path)


def crops(root: Path, n: int = 3) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        cv2.imwrite(str(root / f"p{i}.png"), np.full((64, 192, 3), 40 * i, np.uint8))
    return root


def write_labels(root: Path, *rows: str) -> None:
    (root / "labels.csv").write_text("filename,text,split\np0.png,A10000,train\np1.png,A20000,val\n" + "".join(r + "\n" for r in rows), encoding="utf-8")


# ------------------------------------------------------------------ folder: paths
@pytest.mark.parametrize("name", ["../outside/secret.png", "sub/../../outside/secret.png", "/etc/passwd", "//etc/passwd"])
def test_folder_rows_that_leave_the_folder_are_refused_naming_the_row(tmp_path, name):
    root = crops(tmp_path / "data" / "f")
    crops(tmp_path / "data" / "outside")
    write_labels(root, f"{name},SECRET1,test")
    with pytest.raises(DataError) as info:
        load_folder(root)
    assert str(info.value) == (f"{root / 'labels.csv'} line 4: filename {name!r} leaves the data folder (absolute paths and '..' "
                               "are refused); list each image relative to the folder that holds labels.csv")


def test_folder_symlink_out_is_refused_and_one_inside_is_followed(tmp_path):
    root = crops(tmp_path / "f")
    secret = crops(tmp_path / "outside", 1) / "p0.png"
    (root / "out.png").symlink_to(secret)
    (root / "in.png").symlink_to("p2.png")
    write_labels(root, "in.png,B20000,test")
    assert [r.id for r in load_folder(root).test] == ["in.png"]
    write_labels(root, "out.png,SECRET1,test")
    with pytest.raises(DataError, match=r"line 4: filename 'out.png' is a symbolic link leading out of the data folder"):
        load_folder(root, strict=False)


def test_folder_traversal_is_one_error_line_from_bench_run(tmp_path, capsys):
    root = crops(tmp_path / "f")
    write_labels(root, "../../outside/secret.png,SECRET1,test")
    line = one_error_line(capsys, tmp_path, "--data", f"folder:{root}")
    assert line.startswith(f"error: {root / 'labels.csv'} line 4: filename '../../outside/secret.png' leaves the data folder")


def test_folder_names_too_long_or_missing_are_skipped_and_named(tmp_path):
    root = crops(tmp_path / "f")
    long_name = "a" * 300 + ".png"
    write_labels(root, f"{long_name},B20000,test", "p2.png,B30000,test")
    s = load_folder(root)
    assert [r.id for r in s.test] == ["p2.png"] and s.info["skipped"] == [long_name]
    assert "cannot be read" in s.info["skip_reasons"][long_name]


# ------------------------------------------------------------------ decompression bombs
def png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


def test_image_over_the_pixel_limit_is_refused_before_decoding(tmp_path, monkeypatch):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header_only(100000, 100000))  # cv2 used to end in a CV_IO_MAX_IMAGE_PIXELS traceback
    with pytest.raises(DataError, match=r"bomb.png is 100000x100000 px, more than the 40000000 px limit \(set \$LPSR_MAX_IMAGE_PIXELS"):
        read_rgb(bomb)
    big = tmp_path / "big.png"
    big.write_bytes(png_header_only(8000, 6000))  # 48 MP: under Pillow's limits, over ours
    with pytest.raises(DataError, match="big.png is 8000x6000 px, more than the 40000000 px limit"):
        read_rgb(big)
    small = tmp_path / "small.png"
    cv2.imwrite(str(small), np.zeros((30, 90, 3), np.uint8))
    assert read_rgb(small).shape == (30, 90, 3)
    monkeypatch.setenv("LPSR_MAX_IMAGE_PIXELS", "2000")
    with pytest.raises(DataError, match="small.png is 90x30 px, more than the 2000 px limit"):
        read_rgb(small)
    monkeypatch.setenv("LPSR_MAX_IMAGE_PIXELS", "lots")
    with pytest.raises(UserError, match=r"\$LPSR_MAX_IMAGE_PIXELS='lots': expected a positive number of pixels"):
        read_rgb(small)


def test_bomb_in_folder_data_is_skipped_and_named_or_strict_error(tmp_path):
    root = crops(tmp_path / "f")
    (root / "bomb.png").write_bytes(png_header_only(20000, 20000))
    write_labels(root, "bomb.png,B10000,test", "p2.png,B20000,test")
    s = load_folder(root)
    assert [r.id for r in s.test] == ["p2.png"] and s.info["skipped"] == ["bomb.png"]
    assert "20000x20000 px, more than the" in s.info["skip_reasons"]["bomb.png"]
    with pytest.raises(DataError, match="bomb.png is 20000x20000 px"):
        load_folder(root, strict=True)


def test_bomb_in_ccpd_data_is_skipped_and_named(tmp_path):
    from lpsr.data.ccpd import load_ccpd
    from test_data_ccpd import PLATES, ccpd_name, write_photo

    good, bomb = ccpd_name(PLATES[0]), ccpd_name(PLATES[1])
    write_photo(tmp_path / good)
    (tmp_path / bomb).write_bytes(png_header_only(30000, 30000))
    s = load_ccpd(tmp_path, hr_size=(48, 16), fractions=(1, 0, 0))
    assert s.info["skipped"] == [bomb] and [r.id for r in s.train] == [good]
    with pytest.raises(DataError, match=f"{bomb} is 30000x30000 px, more than the 40000000 px limit"):
        load_ccpd(tmp_path, hr_size=(48, 16), fractions=(1, 0, 0), strict=True)


# ------------------------------------------------------------------ checks before training
def test_empty_val_split_is_refused_before_training(tmp_path, capsys):
    prof = profile(tmp_path, data={"synthetic": {"train": 12, "val": 0, "test": 6}})
    line = one_error_line(capsys, tmp_path, "--methods", "bicubic,tiny", "--profile", prof)
    assert line == ("error: --data synthetic: the val split is empty (12/0/6 plates in train/val/test), but tiny must pick its "
                    "best checkpoint on val; give it plates (profile data.synthetic.val, the split column of labels.csv, "
                    "more images, or a larger --limit)")
    assert not (tmp_path / "r").exists()


def test_empty_val_split_is_fine_for_methods_that_do_not_train(tmp_path, capsys):
    prof = profile(tmp_path, data={"synthetic": {"train": 12, "val": 0, "test": 6}})
    code, out, err = run_main(capsys, "run", "--methods", "bicubic", "--profile", prof, "--ocr", "none",
                              "--run-dir", str(tmp_path / "r"), "--leaderboard-dir", str(tmp_path / "lb"))
    assert code == 0, err


def test_threads_over_the_cap_is_a_config_error(tmp_path, capsys):
    with pytest.raises(ConfigError, match=r"^train.threads: must be at most 256 \(this machine has \d+ CPU cores"):
        TrainSettings.from_dict({"threads": 100000})
    assert TrainSettings.from_dict({"threads": 256}).threads == 256
    line = one_error_line(capsys, tmp_path, "--methods", "tiny", "--profile", profile(tmp_path, train={"threads": 100000}))
    assert "train.threads: must be at most 256" in line and "got 100000" in line


@pytest.mark.parametrize("text, key, lines", [
    ("seed: 1\nseed: 2\n", "seed", (1, 2)),
    ("train:\n  lr: 0.001\n  iterations: 4\n  lr: 0.01\n", "lr", (2, 4)),
    ("eval: {crop_border: 0, crop_border: 1}\n", "crop_border", (1, 1)),
])
def test_duplicate_yaml_keys_are_refused_naming_key_and_lines(tmp_path, capsys, text, key, lines):
    path = tmp_path / "p.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        read_yaml(path)
    assert str(info.value) == f"{path}: key {key!r} appears twice (lines {lines[0]} and {lines[1]}); keep one"
    line = one_error_line(capsys, tmp_path, "--profile", str(path))
    assert line == f"error: profile {path}: key {key!r} appears twice (lines {lines[0]} and {lines[1]}); keep one"


def test_yaml_merge_keys_may_still_be_overridden(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("a: &a {x: 1, y: 2}\nb:\n  <<: *a\n  x: 3\n", encoding="utf-8")
    assert read_yaml(path) == {"a": {"x": 1, "y": 2}, "b": {"x": 3, "y": 2}}


def test_duplicate_key_in_a_method_yaml_is_refused(tmp_path, monkeypatch):
    from lpsr.config import method_yamls

    (tmp_path / "profiles").mkdir()
    (tmp_path / "methods").mkdir()
    (tmp_path / "methods" / "tiny.yaml").write_text("channels: 4\nchannels: 8\n", encoding="utf-8")
    monkeypatch.setenv("LPSR_CONFIGS", str(tmp_path))
    with pytest.raises(ConfigError, match=r"tiny.yaml: key 'channels' appears twice \(lines 1 and 2\)"):
        method_yamls()


# ------------------------------------------------------------------ run dir and lock
def test_run_dir_symlink_loop_and_dangling_link_are_named_as_such(tmp_path, capsys):
    loop = tmp_path / "loop"
    loop.symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(loop)
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    with pytest.raises(UserError, match="is a symbolic link that loops back on itself"):
        check_not_file(loop, "--run-dir")
    with pytest.raises(UserError, match=rf"lies under {loop}, which is a symbolic link that loops"):
        check_not_file(loop / "x", "--run-dir")
    code, out, err = run_main(capsys, "run", "--methods", "bicubic", "--profile", "test", "--ocr", "none",
                              "--run-dir", str(dangling), "--leaderboard-dir", str(tmp_path / "lb"))
    assert code == 2 and err.strip() == (f"error: --run-dir {dangling} is a symbolic link to {tmp_path / 'nowhere'}, which does "
                                         "not exist; create that folder or pass a folder path")


@pytest.mark.parametrize("content", ['{"pid": "1", "host": HOST}', '{"pid": true, "host": HOST}', "not json", "", "dir"])
def test_a_lock_that_cannot_be_parsed_is_held_and_named(tmp_path, content):
    lock = tmp_path / ".lock"
    if content == "dir":
        lock.mkdir()
    else:
        lock.write_text(content.replace("HOST", json.dumps(socket.gethostname())), encoding="utf-8")
        os.utime(lock, (0, 0))  # old: not "being written right now"
    with pytest.raises(RunLockedError) as info:
        RunLock(tmp_path, report=lambda s: None).acquire()
    assert str(info.value) == (f"run directory {tmp_path} is locked by {lock}, which is not a readable lock file "
                               "(JSON with an integer pid); if no bench run uses this folder, delete it and rerun")
    assert lock.exists() and not list(tmp_path.glob(".lock.stale.*"))  # left as it was


def test_a_stale_lock_with_an_integer_pid_is_still_taken_over(tmp_path):
    lock = tmp_path / ".lock"
    lock.write_text(json.dumps({"pid": 2**22 + 12345, "host": socket.gethostname()}), encoding="utf-8")
    notes: list[str] = []
    with RunLock(tmp_path, report=notes.append):
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert notes and "took over a stale lock" in notes[0]


def test_hr_size_below_ssim_window_names_the_plate_size(tmp_path, capsys):
    line = one_error_line(capsys, tmp_path, "--hr-size", "8x8")
    assert line == ("error: plates of 8x8 px (--hr-size or profile test data.hr_size) are smaller than the 11x11 px SSIM needs, "
                    "even with no crop border; use sides of at least 16 px at x8, e.g. --hr-size 192x64")


# ------------------------------------------------------------------ bytes and console
def test_weights_files_are_canonical_bytes(tmp_path):
    state = {"b.weight": torch.arange(6.0).reshape(2, 3), "a.bias": torch.ones(2, dtype=torch.float16)}
    meta = {"val_psnr": "21.5", "iteration": "8", "kind": "ema", "z": "ü"}
    digests = set()
    for i in range(6):  # safetensors orders metadata by a per-process-random hash: vary the insertion order too
        path = tmp_path / f"w{i}.safetensors"
        save_weights(state, path, dict(sorted(meta.items(), reverse=bool(i % 2))))
        digests.add(hashlib.sha256(path.read_bytes()).hexdigest())
        loaded = load_file(str(path))
        assert all(torch.equal(loaded[k], v) for k, v in state.items())
        with safe_open(str(path), framework="pt") as fh:
            assert fh.metadata() == meta
    assert len(digests) == 1
    raw = (tmp_path / "w0.safetensors").read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    assert n % 8 == 0 and list(json.loads(raw[8:8 + n])["__metadata__"]) == sorted(meta)


def test_differentiable_recogniser_does_not_print_onnx2torch_indexing_warning():
    from lpsr.ocr.onnx_to_torch import load_torch_recognizer, recognizer_input

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        net = load_torch_recognizer("plate")
        with torch.no_grad():
            net(recognizer_input(torch.rand(1, 3, 64, 192), "plate"))
        warnings.warn("Using a non-tuple sequence for multidimensional indexing elsewhere", UserWarning)  # not silenced
    texts = [str(w.message) for w in caught]
    assert texts == ["Using a non-tuple sequence for multidimensional indexing elsewhere"], texts


# ------------------------------------------------------------------ add-method / check-method
def test_scaffolded_method_with_a_misspelt_key_fails_check_method_and_is_not_built_in(tmp_path):
    import shutil
    import subprocess
    import sys

    for part in ("lpsr", "methods", "bench", "configs"):
        shutil.copytree(REPO / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "LPSR_CONFIGS": str(tmp_path / "configs")}

    def bench(*args):
        return subprocess.run([sys.executable, "-c", "from bench.cli import main; main()", *args], capture_output=True,
                              text=True, cwd=tmp_path, env=env, timeout=600)

    assert bench("add-method", "probenet", "--root", str(tmp_path)).returncode == 0
    again = bench("add-method", "probenet", "--root", str(tmp_path))
    assert again.returncode == 2 and again.stderr.strip() == (
        f"error: method 'probenet' already exists (class Probenet in {tmp_path / 'methods' / 'probenet.py'}); pick another name")
    yaml_path = tmp_path / "configs" / "methods" / "probenet.yaml"
    yaml_path.write_text(yaml_path.read_text() + "net: {widht: 3}\n")
    checked = bench("check-method", "probenet")
    assert checked.returncode != 0 and "Traceback" not in checked.stderr
    assert "net: unknown key 'net'" in checked.stdout + checked.stderr, checked.stdout + checked.stderr


@pytest.mark.parametrize("name", ["nl\n", "ok\n", "tab\t", "end-\n"])
def test_add_method_name_with_a_trailing_newline_is_refused_as_a_bad_name(tmp_path, name):
    from bench.scaffold.new_method import check_name

    with pytest.raises(UserError, match=r"use lower-case letters, digits, '-' or '_', starting with a letter"):
        check_name(name)
