"""Every bad input or fault a user can cause gives one `error: ...` line (exit 2), never a
traceback, and nothing is written or moved before the checks pass.  docs/errors.md lists
these cases with their exact messages; each row names the test id here."""
from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
import yaml

from cli_helpers import run_main

REPO = Path(__file__).resolve().parents[1]
TEST_PROFILE = yaml.safe_load((REPO / "configs" / "profiles" / "test.yaml").read_text())


def profile_file(tmp_path: Path, **changes) -> str:
    """The test profile with top-level blocks replaced/added (a value of None removes one)."""
    data = json.loads(json.dumps(TEST_PROFILE))
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return str(path)


def merged(block: str, **values):
    return {**TEST_PROFILE[block], **values}


def bad_weights(tmp_path: Path) -> str:
    path = tmp_path / "corrupt.safetensors"
    path.write_bytes(b"this is not a safetensors file")
    return f"tiny={path}"


def wrong_weights(tmp_path: Path) -> str:
    from safetensors.torch import save_file
    import torch

    path = tmp_path / "other.safetensors"
    save_file({"not.a.layer": torch.zeros(3)}, str(path))
    return f"tiny={path}"


def a_file(tmp_path: Path) -> str:
    path = tmp_path / "plain-file"
    path.write_text("x")
    return str(path)


# id -> (extra args for `bench run` (callable of tmp_path allowed), message fragment)
RUN_CASES = {
    "unknown-method": (["--methods", "bicubc"], "unknown method 'bicubc'; did you mean bicubic"),
    "scale-zero": (["--scale", "0"], "--scale must be a positive integer, got 0"),
    "scale-too-large": (["--scale", "128"], "smaller than the scale x128"),
    "profile-unknown": (["--profile", "fast"], "--profile 'fast': no such profile"),
    "profile-missing-file": (["--profile", "nope.yaml"], "--profile nope.yaml: file not found"),
    "weights-no-equals": (["--weights", "bicubic"], "expected METHOD=PATH"),
    "weights-missing": (["--methods", "tiny", "--weights", "tiny=/no/file.safetensors"], "/no/file.safetensors not found"),
    "weights-corrupt": (lambda t: ["--methods", "tiny", "--weights", bad_weights(t)], "not a readable safetensors file"),
    "weights-wrong-network": (lambda t: ["--methods", "tiny", "--weights", wrong_weights(t)], "weights do not fit this network"),
    "weights-not-in-methods": (lambda t: ["--weights", bad_weights(t)], "--weights names tiny, which is not among --methods"),
    "ocr-unknown": (["--ocr", "tesseract"], "unknown OCR recogniser 'tesseract'"),
    "ocr-paddleocr-no-model": (["--ocr", "paddleocr"], "the paddleocr recogniser needs a local recognition model"),
    "device-unknown": (["--device", "tpu"], "--device 'tpu': use auto, cpu, cuda or cuda:N"),
    "hr-size-garbage": (["--hr-size", "big"], "--hr-size 'big': expected WIDTHxHEIGHT"),
    "hr-size-not-multiple": (["--hr-size", "193x64"], "--hr-size 193x64 is not a multiple of the scale x8; use sides that are multiples of 8, e.g. 192x64"),
    "hr-size-huge": (["--hr-size", "100000x100000"], "--hr-size 100000x100000: each side must be 8..1024 px"),
    "seed-negative": (["--seed", "-1"], "--seed -1: use an integer from 0 to 4294967295"),
    "seed-huge": (["--seed", str(2**70)], f"--seed {2**70}: use an integer from 0 to 4294967295"),
    "seed-not-int": (["--seed", "abc"], "Invalid value for '--seed': 'abc' is not a valid integer"),
    "limit-zero": (["--limit", "0"], "--limit must be >= 1, got 0"),
    "data-unknown-scheme": (["--data", "nonsense:x"], "unknown data spec 'nonsense:x'"),
    "data-missing-folder": (["--data", "ccpd:/no/such/folder"], "CCPD folder /no/such/folder does not exist"),
    "data-synthetic-negative-seed": (["--data", "synthetic:-1"], "synthetic seed -1 in data spec 'synthetic:-1' is out of range"),
    "data-synthetic-bad-seed": (["--data", "synthetic:x"], "synthetic seed 'x' in data spec 'synthetic:x' is not an integer"),
    "run-dir-is-file": (lambda t: ["--run-dir", a_file(t)], "is a file; pass a folder path"),
    "leaderboard-dir-is-file": (lambda t: ["--leaderboard-dir", a_file(t)], "--leaderboard-dir"),
    "unknown-option": (["--bogus"], "No such option '--bogus'."),
    # profile contents
    "profile-typo-block": (lambda t: ["--profile", profile_file(t, trian={"iterations": 5})], "p.yaml: trian: unknown key 'trian' (did you mean 'train'?)"),
    "profile-typo-eval": (lambda t: ["--profile", profile_file(t, evall={"crop_border": 4})], "p.yaml: evall: unknown key 'evall' (did you mean 'eval'?)"),
    "profile-seed-abc": (lambda t: ["--profile", profile_file(t, seed="abc")], "p.yaml: seed: expected an integer, got 'abc'"),
    "profile-train-not-mapping": (lambda t: ["--profile", profile_file(t, train=5)], "p.yaml: train: expected a mapping, got 5"),
    "profile-eval-batch-zero": (lambda t: ["--profile", profile_file(t, eval=merged("eval", batch_size=0))], "p.yaml: eval.batch_size: must be >= 1, got 0"),
    "profile-crop-border-negative": (lambda t: ["--profile", profile_file(t, eval=merged("eval", crop_border=-1))], "p.yaml: eval.crop_border: must be >= 0, got -1"),
    "profile-crop-border-too-large": (lambda t: ["--profile", profile_file(t, eval=merged("eval", crop_border=30))],
                                      "eval.crop_border 30 leaves 132x4 px of the 192x64 plates; SSIM needs at least 11x11, so use a crop border of at most 26"),
    "profile-per-method-typo": (lambda t: ["--profile", profile_file(t, per_method={"tinny": {"iterations": 2}})], "p.yaml: per_method.tinny: no method named 'tinny' (did you mean 'tiny'?)"),
    "profile-iterations-float": (lambda t: ["--profile", profile_file(t, train=merged("train", iterations=4.7))], "p.yaml: train.iterations: expected an integer, got 4.7"),
    "profile-iterations-bool": (lambda t: ["--profile", profile_file(t, train=merged("train", iterations=True))], "p.yaml: train.iterations: expected an integer, got True"),
    "profile-patch-not-multiple": (lambda t: ["--methods", "tiny", "--profile", profile_file(t, train=merged("train", patch_size=60))], "train.patch_size 60 is not a multiple of the scale x8"),
    "profile-patch-too-large": (lambda t: ["--methods", "tiny", "--profile", profile_file(t, train=merged("train", patch_size=128))], "train.patch_size 128 is larger than the 192x64 plates"),
    "profile-hr-size-huge": (lambda t: ["--profile", profile_file(t, data=merged("data", hr_size=[100000, 64]))], "data.hr_size: 100000x64: each side must be 8..1024 px"),
    "profile-not-yaml": (lambda t: ["--profile", str(_write(t / "bad.yaml", "train: [unclosed"))], "not valid YAML"),
    "profile-not-mapping": (lambda t: ["--profile", str(_write(t / "list.yaml", "- 1\n- 2\n"))], "top level must be a mapping"),
}


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("case", sorted(RUN_CASES))
def test_bad_run_input_is_one_line(case, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("LPSR_PADDLEOCR_REC_DIR", raising=False)
    args, message = RUN_CASES[case]
    if callable(args):
        args = args(tmp_path)
    run_dir, lb = tmp_path / "r", tmp_path / "lb"
    base = ["run", "--methods", "bicubic", "--profile", "test", "--ocr", "none", "--run-dir", str(run_dir), "--leaderboard-dir", str(lb)]
    code, out, err = run_main(capsys, *base, *args)
    lines = [l for l in err.strip().splitlines() if l.strip()]
    assert code == 2, (out, err)
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert message in lines[0], lines[0]
    assert "Traceback" not in out + err
    assert not lb.exists() and not run_dir.exists()  # checked before anything is written


def test_esrgan_discriminator_vs_patch_size_checked_before_any_training(tmp_path, capsys):
    """ESRGAN's own training check fires before the earlier method (tiny) trains."""
    prof = profile_file(tmp_path, train=merged("train", patch_size=32), per_method={"tiny": {"patch_size": 32}})
    code, out, err = run_main(capsys, "run", "--methods", "tiny,esrgan", "--profile", prof, "--ocr", "none",
                              "--run-dir", str(tmp_path / "r"), "--leaderboard-dir", str(tmp_path / "lb"))
    assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert "esrgan" in err.lower() and not (tmp_path / "r").exists()


def test_corrupt_config_and_result_in_run_dir_are_recovered(tmp_path, capsys):
    run_dir = tmp_path / "r"
    base = ["run", "--methods", "bicubic", "--profile", "test", "--ocr", "none", "--run-dir", str(run_dir), "--leaderboard-dir", str(tmp_path / "lb")]
    assert run_main(capsys, *base)[0] == 0
    (run_dir / "bicubic" / "result.json").write_text("{ not json", encoding="utf-8")
    code, out, err = run_main(capsys, *base)
    assert code == 0, err
    assert "result.json is unreadable (corrupt); it will be recomputed" in out
    assert json.loads((run_dir / "bicubic" / "result.json").read_text())["method"] == "bicubic"
    (run_dir / "bicubic" / "config.yaml").write_text("method: [unclosed", encoding="utf-8")
    (run_dir / "bicubic" / "result.json").write_text("[]", encoding="utf-8")
    code, out, err = run_main(capsys, *base)
    assert code == 0, err
    assert "[bicubic] its config.yaml is missing or unreadable: previous results and checkpoints moved to" in out
    moved = list((run_dir / "bicubic" / "superseded").glob("*/config.yaml"))
    assert moved and moved[0].read_text() == "method: [unclosed"


def test_disk_full_is_one_line_and_leaves_nothing_half_written(tmp_path, capsys, monkeypatch):
    run_dir = tmp_path / "r"
    real_fsync = os.fsync

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    # --isolation none: the patched fsync exists in this process only
    code, out, err = run_main(capsys, "run", "--methods", "bicubic", "--profile", "test", "--ocr", "none",
                              "--run-dir", str(run_dir), "--leaderboard-dir", str(tmp_path / "lb"), "--isolation", "none")
    monkeypatch.setattr(os, "fsync", real_fsync)
    lines = [l for l in err.strip().splitlines() if l.strip()]
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith("error: no space left on the device while writing ") and "free some space and rerun" in lines[0]
    leftovers = [p for p in run_dir.rglob("*") if p.is_file() and p.name != ".lock"]
    assert not [p for p in leftovers if p.name.endswith(".tmp")]
    assert not (run_dir / "bicubic" / "result.json").exists()
    assert not (run_dir / ".lock").exists()  # released on the way out


def test_status_lines_keep_method_prefix_and_skipped_files_are_named(tmp_path, capsys):
    import cv2
    import numpy as np

    root = tmp_path / "plates"
    root.mkdir()
    lines = ["filename,text,split"]
    for i, split in enumerate(["train"] * 4 + ["val", "test", "test"]):
        cv2.imwrite(str(root / f"p{i}.png"), np.full((48, 144, 3), 40 + 20 * i, np.uint8))
        lines.append(f"p{i}.png,皖A1234{i},{split}")
    cv2.imwrite(str(root / "tiny-crop.png"), np.full((1, 2, 3), 200, np.uint8))  # a 2x1 px crop
    lines.append("tiny-crop.png,皖A99999,test")
    (root / "labels.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    run_dir = tmp_path / "r"
    args = ["run", "--methods", "bicubic", "--profile", "test", "--ocr", "none", "--data", f"folder:{root}",
            "--run-dir", str(run_dir), "--leaderboard-dir", str(tmp_path / "lb")]
    code, out, err = run_main(capsys, *args)
    assert code == 0, err
    assert "(1 files skipped: tiny-crop.png)" in out  # the summary line names it
    assert "[bicubic] evaluated; 2 test plates scored (1 files skipped: tiny-crop.png)" in out
    result = json.loads((run_dir / "bicubic" / "result.json").read_text())
    assert result["data"]["skipped"] == ["tiny-crop.png"] and result["data"]["n_test"] == 2
    config = yaml.safe_load((run_dir / "bicubic" / "config.yaml").read_text())
    assert config["data"]["skipped"] == ["tiny-crop.png"]
    code, out, err = run_main(capsys, *args, "--strict")
    assert code == 2 and "degenerate plate" in err and "tiny-crop.png" in err, err


def test_stray_temp_files_are_removed_and_outputs_are_0644(tmp_path, capsys):
    run_dir = tmp_path / "r"
    (run_dir / "bicubic").mkdir(parents=True)
    stray = run_dir / "bicubic" / ".plates.csv.k2j4.tmp"
    stray.write_text("half")
    old = os.umask(0o022)
    try:
        code, out, err = run_main(capsys, "run", "--methods", "bicubic", "--profile", "test", "--ocr", "none",
                                  "--run-dir", str(run_dir), "--leaderboard-dir", str(tmp_path / "lb"))
    finally:
        os.umask(old)
    assert code == 0, err
    assert not stray.exists() and "removed 1 stray temporary file(s)" in out and "bicubic/.plates.csv.k2j4.tmp" in out
    for name in ("config.yaml", "plates.csv", "result.json"):
        assert (run_dir / "bicubic" / name).stat().st_mode & 0o777 == 0o644, name
    assert (tmp_path / "lb" / "synthetic-x8-test.md").stat().st_mode & 0o777 == 0o644


def test_profile_hr_size_that_does_not_fit_the_scale_is_labelled_with_the_size_used(tmp_path, capsys):
    run_dir = tmp_path / "r"
    code, out, err = run_main(capsys, "run", "--methods", "bicubic", "--scale", "3", "--profile", "test", "--ocr", "none", "--limit", "2",
                              "--run-dir", str(run_dir), "--leaderboard-dir", str(tmp_path / "lb"))
    assert code == 0, err
    assert "note: profile test: data.hr_size 192x64 is not a multiple of x3; plates are made at 192x63" in out
    result = json.loads((run_dir / "bicubic" / "result.json").read_text())
    assert result["data"]["hr_size"] == [192, 63]


def _corrupt_run(tmp_path: Path) -> str:
    (tmp_path / "corrupt" / "bicubic").mkdir(parents=True)
    (tmp_path / "corrupt" / "bicubic" / "result.json").write_text("{bad")
    (tmp_path / "corrupt" / "bicubic" / "plates.csv").write_text("id\n")
    return str(tmp_path / "corrupt")


OTHER_CASES = {
    "list-scale-not-int": (["list", "--scale", "abc"], "error: Invalid value for '--scale': 'abc' is not a valid integer. (see `bench list --help`)"),
    "list-scale-zero": (["list", "--scale", "0"], "error: --scale must be a positive integer, got 0"),
    "report-missing-dir": (lambda t: ["report", "--run-dir", str(t / "no-such")], "not a directory"),
    "report-empty-dir": (lambda t: ["report", "--run-dir", str(t), "--out", str(t / "o")], "no finished method results to report"),
    "report-corrupt-result": (lambda t: ["report", "--run-dir", _corrupt_run(t), "--out", str(t / "o")], "result.json: unreadable result file"),
    "add-method-group-name": (lambda t: ["add-method", "all", "--root", str(t)], "error: method name 'all' is a group name"),
    "add-method-bad-name": (lambda t: ["add-method", "Bad", "--root", str(t)], "error: method name 'Bad': use lower-case letters"),
    "unknown-command": (["nosuchcommand"], "error: No such command 'nosuchcommand'. (see `bench --help`)"),
}


@pytest.mark.parametrize("case", sorted(OTHER_CASES))
def test_other_commands_bad_input_is_one_line(case, tmp_path, capsys):
    args, message = OTHER_CASES[case]
    if callable(args):
        args = args(tmp_path)
    code, out, err = run_main(capsys, *args)
    lines = [l for l in err.strip().splitlines() if l.strip()]
    assert code == 2, (out, err)
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err
    assert "Traceback" not in out + err
