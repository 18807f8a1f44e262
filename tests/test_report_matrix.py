"""`bench report --matrix RUN_DIR...` (issue 21): two real runs (bicubic + tiny, test profile,
the `plate` recogniser) under `--degradation bicubic` and `--degradation camera`, then the
matrix.  Its cells are checked against the per-run leaderboards and against an oracle computed
here from each `plates.csv` (exact-read rate, PSNR-Y median); its changes are the differences;
its files are written; bad inputs are one-line errors."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from bench.cli import cli
from lpsr.degradations import get_degradation
from tests.cli_helpers import run_main

BASE = ["run", "--methods", "bicubic,tiny", "--scale", "8", "--profile", "test", "--ocr", "plate", "--isolation", "none"]
LB = "synthetic-x8-test"  # the leaderboard stem of the bicubic run (-camera for the camera run)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("matrix")
    for name, deg in (("bic", "bicubic"), ("cam", "camera")):
        res = CliRunner().invoke(cli, [*BASE, "--degradation", deg, "--run-dir", str(out / name), "--leaderboard-dir", str(out / f"lb-{name}")])
        assert res.exit_code == 0, res.output + repr(res.exception)
    return out


def matrix(dirs: list[Path], stem: Path) -> dict:
    res = CliRunner().invoke(cli, ["report", "--matrix", *map(str, dirs), "--out", str(stem)])
    assert res.exit_code == 0, res.output + repr(res.exception)
    return json.loads(stem.with_name(stem.name + ".json").read_text())


def cell(m: dict, method: str, train: str, test: str, metric: str) -> dict:
    found = [c for c in m["cells"] if (c["method"], c["train_degradation"], c["test_degradation"], c["metric"]) == (method, train, test, metric)]
    assert len(found) == 1, (method, train, test, metric, found)
    return found[0]


def oracle(run: Path, method: str) -> dict[str, float]:
    """The two headline numbers straight from plates.csv: exact-read rate, median PSNR-Y."""
    plates = pd.read_csv(run / method / "plates.csv", keep_default_na=False)
    return {"plate.plate_acc": float(np.mean(plates["ocr_plate_exact"] == 1.0)), "psnr_y": float(np.median(plates["psnr_y"]))}


def leaderboard(runs: Path, name: str, method: str) -> dict:
    stem = LB if name == "bic" else f"{LB}-camera"
    rows = json.loads((runs / f"lb-{name}" / f"{stem}.json").read_text())["rows"]
    return next(r for r in rows if r["method"] == method)


def with_train_degradation(src: Path, dst: Path, method: str, deg: str, **data) -> None:
    """A copy of a run directory whose ``method`` records training under ``deg`` (a
    degradation-trained run, as `bench run` with train.degradation writes it)."""
    shutil.copytree(src, dst)
    path = dst / method / "result.json"
    result = json.loads(path.read_text())
    result["train_degradation"] = get_degradation(deg).describe()
    result["data"].update(data)
    path.write_text(json.dumps(result))


def test_cells_are_the_leaderboards_numbers(runs):
    m = matrix([runs / "bic", runs / "cam"], runs / "out" / "m")
    assert m["meta"]["recognisers"] == ["plate"]
    assert [t["name"] for t in m["meta"]["tests"]] == ["bicubic", "camera"]
    assert m["meta"]["rows"] == [{"method": "bicubic", "train_degradation": "not trained"}, {"method": "tiny", "train_degradation": "bicubic"}]
    for method, train in (("bicubic", "not trained"), ("tiny", "bicubic")):
        want = {name: oracle(runs / name, method) for name in ("bic", "cam")}
        for metric in ("plate.plate_acc", "psnr_y"):
            for name, test in (("bic", "bicubic"), ("cam", "camera")):
                got = cell(m, method, train, test, metric)
                lb = leaderboard(runs, name, method)
                assert got["value"] == pytest.approx(want[name][metric], abs=1e-12)
                # the leaderboard's JSON keeps 10 digits
                assert got["value"] == pytest.approx(lb[metric], abs=1e-9)
                assert (got["ci_low"], got["ci_high"]) == pytest.approx((lb[f"{metric}.ci_low"], lb[f"{metric}.ci_high"]), abs=1e-9)
                assert got["ci_low"] <= got["value"] <= got["ci_high"]
            assert cell(m, method, train, "bicubic", metric)["delta_vs_bicubic"] is None
            assert cell(m, method, train, "camera", metric)["delta_vs_bicubic"] == pytest.approx(want["cam"][metric] - want["bic"][metric], abs=1e-12)
    # camera LR is harder for the fixed Bicubic upscaler: a real drop, not a copy of the bicubic column
    assert cell(m, "bicubic", "not trained", "camera", "psnr_y")["delta_vs_bicubic"] < 0


def test_files_written_and_rendered(runs):
    matrix([runs / "bic", runs / "cam"], runs / "out" / "files")
    out = runs / "out"
    md = (out / "files.md").read_text()
    tiny = oracle(runs / "cam", "tiny")["psnr_y"] - oracle(runs / "bic", "tiny")["psnr_y"]
    assert "| method | training LR | bicubic | camera | Δ camera |" in md
    assert f"| {tiny:+.2f} |" in md  # the PSNR-Y change in dB, as the table prints it
    assert "![" in md and "(files-heatmap.png)" in md
    assert "every cell on the same test plates" in md
    png = (out / "files-heatmap.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    html = (out / "files.html").read_text()
    assert "data:image/png;base64," in html and 'id="matrix-plate-plate_acc"' in html and 'id="matrix-psnr_y"' in html
    csv = pd.read_csv(out / "files.csv")
    assert len(csv) == 2 * 2 * 2  # rows x tests x metrics
    assert set(csv["run_dir"]) == {str(runs / "bic"), str(runs / "cam")}


def test_rows_by_training_degradation(runs, tmp_path):
    """A camera-trained tiny (its result.json says so) is its own row; the untrained Bicubic,
    the same numbers in two directories, is one cell."""
    with_train_degradation(runs / "bic", tmp_path / "tbic", "tiny", "camera")
    with_train_degradation(runs / "cam", tmp_path / "tcam", "tiny", "camera")
    m = matrix([runs / "bic", runs / "cam", tmp_path / "tbic", tmp_path / "tcam"], tmp_path / "rows")
    assert m["meta"]["rows"] == [{"method": "bicubic", "train_degradation": "not trained"},
                                 {"method": "tiny", "train_degradation": "bicubic"}, {"method": "tiny", "train_degradation": "camera"}]
    assert cell(m, "tiny", "camera", "camera", "psnr_y")["train_degradation_fingerprint"] == get_degradation("camera").fingerprint
    assert any("bicubic on camera: the same per-plate results" in n for n in m["meta"]["notes"])
    md = (tmp_path / "rows.md").read_text()
    assert "| tiny | camera |" in md


def test_different_test_plates_are_said(runs, tmp_path):
    with_train_degradation(runs / "cam", tmp_path / "other", "tiny", "camera", fingerprint="0123456789abcdef")
    shutil.rmtree(tmp_path / "other" / "bicubic")
    m = matrix([runs / "bic", runs / "cam", tmp_path / "other"], tmp_path / "m")
    notes = m["meta"]["notes"]
    assert len(notes) == 1 and notes[0].startswith("test column `camera`: its rows were scored on different test plates"), notes
    assert "0123456789abcdef: tiny (trained on camera)" in notes[0]
    assert "- **note**: test column `camera`" in (tmp_path / "m.md").read_text()


def test_errors(runs, tmp_path, capsys):
    def error(*args: str) -> str:
        code, _out, err = run_main(capsys, "report", "--matrix", *args, "--out", str(tmp_path / "m"))
        assert code == 2, err
        lines = [ln for ln in err.strip().splitlines() if ln]
        assert len(lines) == 1 and lines[0].startswith("error:"), err
        return lines[0]

    assert "name at least one run directory" in error()
    assert f"{tmp_path / 'nope'}: not a directory" in error(str(runs / "bic"), str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    assert "not a run directory" in error(str(tmp_path / "empty"))
    shutil.copytree(runs / "bic", tmp_path / "again")
    plates = pd.read_csv(tmp_path / "again" / "tiny" / "plates.csv", keep_default_na=False, dtype=str)
    plates.loc[0, "psnr_y"] = "1.0"
    plates.to_csv(tmp_path / "again" / "tiny" / "plates.csv", index=False)
    msg = error(str(runs / "bic"), str(tmp_path / "again"))
    assert "tiny (training LR bicubic) tested on bicubic" in msg and str(runs / "bic") in msg and str(tmp_path / "again") in msg
    code, _out, err = run_main(capsys, "report", str(runs / "bic"), str(runs / "cam"))
    assert code == 2 and "add --matrix to compare several" in err
