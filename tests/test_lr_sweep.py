"""benchmarks/lr_sweep.py: each point is the study profile with only the lr changed; the
choice reads the val split alone; bad input is a one-line error."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from conftest import load_benchmark
from lpsr.config import ConfigError
from lpsr.profile import load_profile, validate_profile


@pytest.fixture(scope="module")
def sweep():
    return load_benchmark("lr_sweep")


def fake_point(d: Path, lr: float, curve: list[tuple[int, float]], test_psnr: float) -> Path:
    """A finished method folder as the runner writes it (only the fields the sweep reads)."""
    d.mkdir(parents=True)
    best_it, best = max(curve, key=lambda c: c[1])
    (d / "result.json").write_text(json.dumps({
        "method": "mse-skip", "config_hash": "abc", "commit": "c0ffee",
        "train": {"best_val_psnr": best, "best_iteration": best_it, "iterations": curve[-1][0], "train_seconds": 60.0},
        "summary": {"psnr": test_psnr},  # test numbers: the sweep must not choose on them
    }))
    (d / "config.yaml").write_text(yaml.safe_dump({"method": "mse-skip", "train": {"lr": lr}}))
    (d / "train.jsonl").write_text("".join(json.dumps({"iteration": i, "loss": 0.1, "val_psnr": v}) + "\n" for i, v in curve))
    return d


def test_a_point_is_the_study_profile_with_only_the_lr_changed(sweep):
    _, cpu = load_profile("cpu")
    raw = sweep.swept_profile("cpu", "mse-skip", 5e-4)
    assert list(raw["per_method"]) == ["mse-skip"]
    prof = validate_profile(raw, "swept")
    got, study = prof.train_for("mse-skip").to_dict(), cpu.train_for("mse-skip").to_dict()
    assert got["lr"] == 5e-4 and study["lr"] != 5e-4
    assert {k: v for k, v in got.items() if k != "lr"} == {k: v for k, v in study.items() if k != "lr"}
    assert raw["seed"] == cpu.seed and raw["data"] == cpu.model_dump(mode="json")["data"]


def test_the_choice_is_the_best_val_psnr_not_the_best_test(sweep, tmp_path):
    run = tmp_path / "sweep"
    fake_point(run / "lr-0.0002" / "mse-skip", 2e-4, [(100, 20.0), (200, 21.0)], test_psnr=30.0)
    fake_point(run / "lr-0.0005" / "mse-skip", 5e-4, [(100, 20.5), (200, 21.4), (300, 21.3)], test_psnr=10.0)
    out = tmp_path / "report" / "sweep.md"
    # both points given as trained: nothing is trained, the report reads them
    assert sweep.main(["--method", "mse-skip", "--lrs", "2e-4,5e-4", "--run-dir", str(run), "--out", str(out),
                       "--reuse", f"2e-4={run / 'lr-0.0002' / 'mse-skip'}",
                       "--reuse", f"5e-4={run / 'lr-0.0005' / 'mse-skip'}"]) == 0
    text = out.read_text()
    assert "| 0.0005 **(chosen)** | 21.400 | 200 | 21.300 | 300 |" in text
    assert "| 0.0002 | 21.000 | 200 | 21.000 | 200 |" in text
    assert "Chosen: lr **0.0005**" in text
    assert out.with_suffix(".png").stat().st_size > 1000


def test_bad_input_is_a_one_line_error(sweep, tmp_path, capsys):
    with pytest.raises(ConfigError, match=r"--method bicubic: profile cpu gives it no per_method budget"):
        sweep.swept_profile("cpu", "bicubic", 1e-3)
    for lrs in ("fast", "0,1e-3", ""):
        with pytest.raises(ConfigError, match="--lrs"):
            sweep.parse_lrs(lrs)
    point = fake_point(tmp_path / "p" / "mse-skip", 2e-4, [(100, 20.0)], test_psnr=0.0)
    with pytest.raises(ConfigError, match=r"trained at lr 0.0002, not 0.0005"):
        sweep.parse_reuse([f"5e-4={point}"], "mse-skip")
    with pytest.raises(ConfigError, match=r"not 'mse'"):
        sweep.parse_reuse([f"2e-4={point}"], "mse")
    assert sweep.main(["--method", "mse-skip", "--lrs", "2e-4", "--run-dir", str(tmp_path / "r"),
                       "--out", str(tmp_path / "o.md"), "--reuse", f"2e-4={tmp_path / 'nope'}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "result.json not found" in err
    assert not (tmp_path / "r").exists() and not (tmp_path / "o.md").exists()


def test_a_diverged_point_is_reported_and_the_others_still_chosen(sweep, tmp_path, monkeypatch):
    run = tmp_path / "sweep"
    point = fake_point(tmp_path / "study" / "mse-skip", 2e-4, [(100, 20.0), (200, 21.0)], test_psnr=0.0)
    calls = []

    def fake_bench(cmd, log):  # bench run at lr 1e-3 stops with a NaN loss (exit 2)
        calls.append(cmd)
        log.write_text("error: [mse-skip] loss is NaN at iteration 12; lower train.lr\n")
        return 2

    monkeypatch.setattr(sweep, "bench_run", fake_bench)
    out = tmp_path / "sweep.md"
    assert sweep.main(["--method", "mse-skip", "--lrs", "2e-4,1e-3", "--run-dir", str(run), "--out", str(out),
                       "--reuse", f"2e-4={point}"]) == 0
    assert len(calls) == 1 and "--profile" in calls[0]
    prof = yaml.safe_load((run / "lr-0.001" / "cpu-lr0.001.yaml").read_text())
    assert prof["per_method"]["mse-skip"]["lr"] == 1e-3
    text = out.read_text()
    assert "| 0.001 | failed (bench run exit 2" in text and "Chosen: lr **0.0002**" in text
