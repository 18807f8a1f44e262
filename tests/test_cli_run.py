"""End to end through the `bench` CLI: run, rerun (cached), report, list, and bad input."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from bench.cli import cli, main

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
    assert "| bicubic |" in text and "| tiny |" in text
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
    res = CliRunner().invoke(cli, ["list", "--scale", "8"])
    assert res.exit_code == 0, res.output
    assert "bicubic" in res.output and "tiny" in res.output and "28,288" in res.output


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
