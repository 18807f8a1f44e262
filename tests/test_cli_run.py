"""End to end through the `bench` CLI: run, rerun (cached), report, list, and bad input."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from bench.cli import cli
from cli_helpers import has_row, run_main

REPO = Path(__file__).resolve().parents[1]


def bench(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the real console entry point in a subprocess (exit codes and stderr as a user sees them)."""
    return subprocess.run([sys.executable, "-c", "from bench.cli import main; main()", *args], capture_output=True, text=True, cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    args = ["run", "--methods", "bicubic,tiny", "--scale", "8", "--profile", "test", "--ocr", "none",
            "--run-dir", str(out / "runs"), "--leaderboard-dir", str(out / "lb")]
    first = bench(*args)
    assert first.returncode == 0, first.stderr
    second = bench(*args)
    return out, first, second


def test_run_writes_results_and_leaderboard(synthetic_run):
    out, first, _ = synthetic_run
    md = out / "lb" / "synthetic-x8-test.md"
    assert md.exists(), first.stdout
    text = md.read_text()
    assert has_row(text, "bicubic") and has_row(text, "tiny")
    assert "BT.601 studio-range" in text and "crop border 0" in text
    for name in ("bicubic", "tiny"):
        plates = pd.read_csv(out / "runs" / name / "plates.csv")
        assert len(plates) == 6 and plates["psnr"].between(5, 60).all()
        result = json.loads((out / "runs" / name / "result.json").read_text())
        assert result["scale"] == 8 and len(result["config_hash"]) == 12
    tiny = json.loads((out / "runs" / "tiny" / "result.json").read_text())
    assert tiny["status"] == "trained" and tiny["params"] > 0
    assert 1 <= tiny["train"]["best_iteration"] <= tiny["train"]["iterations"] == 6
    assert (out / "runs" / "tiny" / "ckpt" / "best.safetensors").exists()
    board = pd.read_csv(out / "lb" / "synthetic-x8-test.csv")
    assert list(board["method"]) == ["bicubic", "tiny"]
    assert "leaderboard written to" in first.stdout


def test_rerun_skips_finished_methods(synthetic_run):
    _, _, second = synthetic_run
    assert second.returncode == 0, second.stderr
    assert second.stdout.count("already in") == 2


def test_report_rebuilds_from_files(synthetic_run, tmp_path):
    out, _, _ = synthetic_run
    res = CliRunner().invoke(cli, ["report", "--run-dir", str(out / "runs"), "--out", str(tmp_path / "again")])
    assert res.exit_code == 0, res.output
    original = (out / "lb" / "synthetic-x8-test.md").read_text().split("\n", 1)[1]
    rebuilt = (tmp_path / "again.md").read_text().split("\n", 1)[1]
    assert original == rebuilt  # same content, only the title differs


def test_weights_flag_loads_instead_of_training(synthetic_run, tmp_path):
    out, _, _ = synthetic_run
    ckpt = out / "runs" / "tiny" / "ckpt" / "best.safetensors"
    res = bench("run", "--methods", "tiny", "--scale", "8", "--profile", "test", "--ocr", "none", "--weights", f"tiny={ckpt}",
                "--run-dir", str(tmp_path / "runs"), "--leaderboard-dir", str(tmp_path / "lb"))
    assert res.returncode == 0, res.stderr
    loaded = json.loads((tmp_path / "runs" / "tiny" / "result.json").read_text())
    trained = pd.read_csv(out / "runs" / "tiny" / "plates.csv")
    again = pd.read_csv(tmp_path / "runs" / "tiny" / "plates.csv")
    assert loaded["status"] == "loaded" and loaded["train"] == {}
    pd.testing.assert_series_equal(trained["psnr"], again["psnr"])


def test_list_shows_methods_with_params():
    from lpsr import registry
    from lpsr.method import count_parameters

    res = CliRunner().invoke(cli, ["list", "--scale", "8"])
    assert res.exit_code == 0, res.output
    # the count of the network tiny builds at x8, as the run's result.json reports it
    params = count_parameters(registry.get("tiny").create(8).build())
    assert params > 0
    row = next(line for line in res.output.splitlines() if " tiny " in f" {line} ")
    assert "bicubic" in res.output and f"{params:,}" in row, res.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["--methods", "bicubc"], "unknown method 'bicubc'; did you mean bicubic"),
        (["--data", "ccpd:/no/such/folder"], "/no/such/folder"),
        (["--data", "nonsense:x"], "nonsense"),
        (["--scale", "128"], "smaller than the scale x128"),
        (["--profile", "fast"], "--profile 'fast'"),
        (["--weights", "bicubic"], "expected METHOD=PATH"),
        (["--weights", "tiny=/no/file.safetensors"], "/no/file.safetensors not found"),
        (["--ocr", "tesseract"], "unknown OCR recogniser 'tesseract'"),
        (["--device", "tpu"], "--device 'tpu'"),
        (["--hr-size", "big"], "--hr-size 'big'"),
    ],
)
def test_bad_input_is_one_clear_line(args, message, tmp_path):
    res = bench("run", "--methods", "bicubic", "--profile", "test", "--ocr", "none", "--run-dir", str(tmp_path / "r"),
                "--leaderboard-dir", str(tmp_path / "lb"), *args)
    assert res.returncode != 0
    lines = [l for l in res.stderr.strip().splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert message in lines[0]
    assert not (tmp_path / "lb").exists()  # nothing written half-way


# ---------------------------------------------------------------- issue 9, mechanism 1
@pytest.fixture(scope="module")
def mse_run(tmp_path_factory):
    """The issue's reproduction: `bench run --methods mse --profile test --limit 8 --ocr none --run-dir R`."""
    out = tmp_path_factory.mktemp("mse")
    args = ["run", "--methods", "mse", "--profile", "test", "--limit", "8", "--ocr", "none", "--run-dir", str(out / "R"),
            "--leaderboard-dir", str(out / "lb")]
    res = bench(*args)
    assert res.returncode == 0, res.stderr
    return out, args


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_corrupt_weights_are_refused_before_anything_is_moved(mse_run, capsys):
    out, args = mse_run
    before = _snapshot(out / "R")
    bad = out / "corrupt.safetensors"
    bad.write_bytes(b"\x00" * 64)
    code, _, err = run_main(capsys, *args, "--weights", f"mse={bad}")
    assert code == 2 and err.startswith("error: --weights mse: ") and "not a readable safetensors file" in err, err
    assert _snapshot(out / "R") == before  # nothing deleted, moved or rewritten


def test_only_evaluation_changed_reevaluates_without_retraining(mse_run, capsys, tmp_path):
    out, args = mse_run
    mdir = out / "R" / "mse"
    log, best = (mdir / "train.jsonl").read_bytes(), (mdir / "ckpt" / "best.safetensors").read_bytes()
    profile = yaml.safe_load((REPO / "configs" / "profiles" / "test.yaml").read_text())
    profile["eval"].update(crop_border=4, batch_size=2)
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(profile))
    new_args = [a if a != "test" else str(tmp_path / "test.yaml") for a in args]
    code, stdout, err = run_main(capsys, *new_args)
    assert code == 0, err
    assert "[mse] evaluation settings changed; re-evaluating from the existing checkpoint (no retraining)" in stdout
    assert "[mse] re-evaluated from its finished checkpoint" in stdout
    assert (mdir / "train.jsonl").read_bytes() == log and (mdir / "ckpt" / "best.safetensors").read_bytes() == best
    result = json.loads((mdir / "result.json").read_text())
    assert result["eval"]["crop_border"] == 4 and result["train"]["reevaluated"] is True
    assert list((mdir / "superseded").glob("*/result.json"))  # the old scores were moved aside, not deleted


def test_weights_from_the_run_itself_no_longer_wipe_the_checkpoint(mse_run, capsys):
    out, args = mse_run
    mdir = out / "R" / "mse"
    best = (mdir / "ckpt" / "best.safetensors").read_bytes()
    code, stdout, err = run_main(capsys, *args, "--weights", f"mse={mdir / 'ckpt' / 'best.safetensors'}")
    assert code == 0, err
    assert "[mse] training settings changed (train, weights): previous results and checkpoints moved to" in stdout
    assert "(the --weights file was loaded first; it is now at" in stdout
    moved = sorted((mdir / "superseded").glob("*/ckpt/best.safetensors"))
    assert moved and moved[-1].read_bytes() == best  # the trained checkpoint is kept
    assert json.loads((mdir / "result.json").read_text())["status"] == "loaded"
    # a training change moves things aside and says what changed
    code, stdout, err = run_main(capsys, *args, "--seed", "1")
    assert code == 0, err
    assert "[mse] training settings changed (seed 0 -> 1, train, weights, data.fingerprint)" in stdout
