"""benchmarks/compare_runs.py: per-plate comparison of two run directories."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import load_benchmark

compare_runs = load_benchmark("compare_runs")

HEADER = "id,text,psnr,psnr_y,ocr_ppocr_text,ocr_ppocr_exact\n"
ROWS = ["p1,皖A12345,21.5,22.25,皖A12345,1.0\n", "p2,皖B00001,19.0,20.0,皖B0000,0.0\n"]


def _run(root, method="m", rows=ROWS, pixels=None, header=HEADER):
    d = root / method
    d.mkdir(parents=True)
    (d / "plates.csv").write_text(header + "".join(rows), encoding="utf-8")
    if pixels is not None:
        np.savez(d / "sr_test.npz", **pixels)
    return root


def _pixels(bump=0):
    a = np.zeros((2, 8, 24, 3), np.uint8)
    a[1, 0, 0, 0] += bump
    return {"sr": a, "ids": np.array(["p1", "p2"])}


def test_identical_runs_are_reported_identical_with_exit_0(tmp_path):
    a = _run(tmp_path / "a", pixels=_pixels())
    b = _run(tmp_path / "b", rows=list(reversed(ROWS)), pixels=_pixels())  # row order is not a difference
    out = tmp_path / "r.md"
    assert compare_runs.main([str(a), str(b), "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "| m | identical (2 plates, every column, SR pixels identical) |" in text
    assert "1 of 1 methods identical" in text


def test_a_changed_number_text_and_pixel_are_each_named(tmp_path):
    a = _run(tmp_path / "a", pixels=_pixels())
    changed = [ROWS[0], "p2,皖B00001,19.25,20.0,皖B00001,1.0\n"]
    b = _run(tmp_path / "b", rows=changed, pixels=_pixels(bump=7))
    d = compare_runs.compare_method(a, b, "m")
    assert not d.identical
    assert d.numeric == {"psnr": pytest.approx(0.25), "ocr_ppocr_exact": 1.0}
    assert d.text == {"ocr_ppocr_text": 1}
    assert (d.pixels_differ, d.pixel_max) == (1, 7)
    assert compare_runs.main([str(a), str(b)]) == 1


def test_methods_plates_and_columns_in_one_run_only(tmp_path):
    a = _run(tmp_path / "a")
    _run(a, method="extra")
    b = _run(tmp_path / "b", rows=[ROWS[0].replace("\n", ",0.5\n")], header=HEADER.replace("\n", ",ssim_y\n"))
    diffs = {d.method: d for d in compare_runs.compare_runs(a, b)}
    assert diffs["extra"].only_in == "first"
    assert diffs["m"].missing_plates == 1 and diffs["m"].plates == 1
    assert diffs["m"].columns_only_in == {"second": ["ssim_y"]}
    assert "only in the first run" in compare_runs._verdict(diffs["extra"])


def test_a_folder_that_is_not_a_run_is_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="holds a <method>/plates.csv"):
        compare_runs.compare_runs(tmp_path / "empty", tmp_path / "empty")
    with pytest.raises(SystemExit, match="no such run directory"):
        compare_runs.compare_runs(tmp_path / "nope", tmp_path / "empty")
