"""Degenerate plates are bad data: skipped, counted and named (or a stop under strict)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from lpsr.data.ccpd import load_ccpd, load_ccpd_image, source_region_size, parse_ccpd_name
from lpsr.data.folder import load_folder
from lpsr.data.images import check_hr_size
from lpsr.data.record import DataError
from lpsr.data.sources import load_data

GOOD = "025-95_113-154&383_386&473-386&473_177&454_154&383_363&402-0_0_22_27_27_33_16-37-15.jpg"
POINT = "025-95_113-154&383_386&473-200&400_200&400_200&400_200&400-0_0_1_27_27_33_16-37-15.jpg"  # four corners on one point
SMALL = "025-95_113-154&383_386&473-170&392_154&392_154&383_170&383-0_0_2_27_27_33_16-37-15.jpg"  # 17x10 px region
LINE = "025-95_113-154&383_386&473-386&400_154&400_154&400_386&400-0_0_3_27_27_33_16-37-15.jpg"  # corners on one line


def photo(path: Path) -> None:
    rng = np.random.default_rng(0)
    assert cv2.imwrite(str(path), rng.integers(0, 255, (600, 500, 3), dtype=np.uint8))


@pytest.fixture()
def ccpd(tmp_path: Path) -> Path:
    root = tmp_path / "ccpd"
    root.mkdir()
    for n in (GOOD, POINT, SMALL, LINE):
        photo(root / n)
    (root / "splits").mkdir()
    (root / "splits" / "test.txt").write_text("\n".join([GOOD, POINT, SMALL, LINE]) + "\n")
    return root


def test_source_region_sizes():
    assert source_region_size(parse_ccpd_name(POINT)) == (0.0, 0.0)
    assert source_region_size(parse_ccpd_name(LINE)) == (0.0, 0.0)
    w, h = source_region_size(parse_ccpd_name(SMALL))
    assert (round(w), round(h)) == (16, 9)
    assert source_region_size(parse_ccpd_name(SMALL), "bbox") == (233.0, 91.0)


def test_collapsed_and_too_small_ccpd_plates_are_skipped_and_named(ccpd: Path):
    s = load_ccpd(ccpd, scale=8)
    assert [r.id for r in s.test] == [GOOD]
    assert s.skipped == 3 and sorted(s.info["skipped"]) == sorted([POINT, SMALL, LINE])
    assert "degenerate plate, its source region is 0x0 px" in s.info["skip_reasons"][POINT]
    assert "smaller than the 24x8 px LR size at x8" in s.info["skip_reasons"][SMALL]
    # without a scale only the collapsed ones go; at x4 the LR is 48x16 -> SMALL still skipped
    assert sorted(load_ccpd(ccpd).info["skipped"]) == sorted([POINT, LINE])
    assert SMALL in load_ccpd(ccpd, scale=4).info["skipped"]
    with pytest.raises(DataError, match="degenerate plate"):
        load_ccpd(ccpd, scale=8, strict=True)
    with pytest.raises(DataError, match=POINT.replace("&", ".").replace("-", ".")[:20]):
        load_ccpd_image(ccpd / POINT, (192, 64), "perspective", 8)


def test_tiny_folder_crop_is_skipped_named_or_strict_error(tmp_path: Path):
    root = tmp_path / "f"
    root.mkdir()
    cv2.imwrite(str(root / "ok.png"), np.full((48, 144, 3), 90, np.uint8))
    cv2.imwrite(str(root / "dot.png"), np.full((1, 2, 3), 200, np.uint8))
    cv2.imwrite(str(root / "small.png"), np.full((6, 20, 3), 200, np.uint8))
    (root / "labels.csv").write_text("filename,text,split\nok.png,皖A11111,test\ndot.png,皖A22222,test\nsmall.png,皖A33333,test\n", encoding="utf-8")
    s = load_folder(root, scale=8)
    assert [r.id for r in s.test] == ["ok.png"] and sorted(s.info["skipped"]) == ["dot.png", "small.png"]
    assert "2x1 px" in s.info["skip_reasons"]["dot.png"]
    assert "smaller than the 24x8 px LR size at x8" in s.info["skip_reasons"]["small.png"]
    assert load_data(f"folder:{root}", hr_size=(24, 8), scale=2).info["skipped"] == ["dot.png"]  # LR 12x4
    with pytest.raises(DataError, match="dot.png.*degenerate plate"):
        load_folder(root, scale=8, strict=True)


def test_hr_size_limits():
    assert check_hr_size((192, 64)) == (192, 64)
    with pytest.raises(DataError, match="too large"):
        check_hr_size((100000, 100000))
    with pytest.raises(DataError, match="out of range"):
        load_data("synthetic:-1")
