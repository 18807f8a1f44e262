"""CCPD's own layout (issue 19): CCPD2019's subset folders and split lists, CCPD2020's split
folders, ccpd_np left out and counted, --test-subsets, and results per subset in every
output of the leaderboard.  Trees are made of the sample's photos by hard links
(benchmarks/ccpd_tree.py)."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from cli_helpers import run_main
from conftest import load_benchmark
from lpsr.data.ccpd import SUBSET_ORDER, load_ccpd
from lpsr.data.record import DataError

tree = load_benchmark("ccpd_tree")
SUBSETS_2019 = ["base", "db", "blur", "fn", "rotate", "tilt", "weather", "challenge"]


@pytest.fixture(scope="module")
def ccpd2019(ccpd_sample: Path, tmp_path_factory) -> Path:
    return tree.ccpd2019_tree(ccpd_sample, tmp_path_factory.mktemp("ccpd") / "CCPD2019", n_train=24, n_val=6, per_test_subset=3)


@pytest.fixture(scope="module")
def ccpd2020(ccpd_sample: Path, tmp_path_factory) -> Path:
    return tree.ccpd2020_tree(ccpd_sample, tmp_path_factory.mktemp("ccpd") / "CCPD2020", counts=(12, 4, 5))


def test_ccpd2019_subsets_splits_and_no_plate_photos(ccpd2019: Path):
    splits = load_ccpd(ccpd2019)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (24, 6, 24)
    # train and val come from ccpd_base (splits/train.txt, val.txt)
    assert {p.meta["subset"] for p in splits.train + splits.val} == {"base"}
    # test: base from test.txt, six subsets from their splits/ccpd_<subset>.txt, weather listed nowhere
    assert Counter(p.meta["subset"] for p in splits.test) == {s: 3 for s in SUBSETS_2019}
    assert splits.info["unlisted_subsets_to_test"] == {"weather": 3}
    assert "splits/ccpd_blur.txt" in splits.info["split_files"]
    # ccpd_np: left out, counted, and not a skip (nothing was wrong with a file)
    assert splits.info["no_plate_skipped"] == 2 and splits.skipped == 0
    # one car stays in one split (the sample's splits are by plate string)
    texts = {name: {p.text for p in splits.split(name)} for name in ("train", "val", "test")}
    assert not (texts["train"] & texts["test"]) and not (texts["val"] & texts["test"])


def test_ccpd2020_split_folders(ccpd2020: Path):
    splits = load_ccpd(ccpd2020)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (12, 4, 5)
    assert {p.meta["subset"] for p in splits.train + splits.val + splits.test} == {"green"}
    assert all(len(p.text) == 8 for p in splits.test)  # green new-energy plates
    assert splits.info["split_rule"].startswith("by split folder")
    # the photos' folders decide, not the plate-string hash
    assert {Path(p.meta["path"]).parent.name for p in splits.test} == {"test"}


def test_the_sample_has_no_subsets(ccpd_sample: Path):
    splits = load_ccpd(ccpd_sample, limit={"train": 2, "val": 2, "test": 2})
    assert all("subset" not in p.meta for p in splits.train + splits.val + splits.test)
    assert "no_plate_skipped" not in splits.info


def test_test_subsets_keeps_only_those_and_names_a_missing_one(ccpd2019: Path):
    splits = load_ccpd(ccpd2019, test_subsets=["db", "ccpd_weather"])
    assert Counter(p.meta["subset"] for p in splits.test) == {"db": 3, "weather": 3}
    assert len(splits.train) == 24  # training plates untouched
    with pytest.raises(DataError, match=r"^--test-subsets: no test plates in subset green of .*; its test subsets: base, db, blur, fn, rotate, tilt, weather, challenge$"):
        load_ccpd(ccpd2019, test_subsets=["green"])


def test_subset_order_is_ccpds():
    assert SUBSET_ORDER[:8] == tuple(SUBSETS_2019) and SUBSET_ORDER[-1] == "green"


def test_bench_run_reports_every_subset_in_md_csv_json_html(ccpd2019: Path, tmp_path: Path, capsys):
    code, out, err = run_main(capsys, "run", "--methods", "bicubic,bicubic-torch", "--profile", "test", "--data", f"ccpd:{ccpd2019}",
                              "--run-dir", str(tmp_path / "runs"), "--leaderboard-dir", str(tmp_path / "lb"))
    assert code == 0, err
    assert "2 ccpd_np photos (no plate) left out" in out
    plates = pd.read_csv(tmp_path / "runs" / "bicubic" / "plates.csv", keep_default_na=False)
    assert Counter(plates["subset"]) == {s: 3 for s in SUBSETS_2019}
    stem = tmp_path / "lb" / "CCPD2019-x8-test"
    md = stem.with_suffix(".md").read_text(encoding="utf-8")
    header = "| method | all (24) | " + " | ".join(f"{s} (3)" for s in SUBSETS_2019) + " |"
    assert md.count(header) == 2  # PSNR-Y and PP-OCRv4 exact reads
    assert "## Per CCPD subset: PSNR-Y dB" in md and "## Per CCPD subset: plate acc, recogniser `ppocr`" in md
    # each cell is the metric over that subset's plates
    db = plates[plates["subset"] == "db"]
    row = pd.read_csv(stem.with_suffix(".csv"))
    row = row[row["method"] == "bicubic"].iloc[0]
    assert row["db:psnr_y"] == pytest.approx(db["psnr_y"].median())
    assert row["db:ppocr.plate_acc"] == pytest.approx(db["ocr_ppocr_exact"].mean())
    assert row["all:psnr_y"] == pytest.approx(plates["psnr_y"].median())
    meta = json.loads(stem.with_suffix(".json").read_text(encoding="utf-8"))
    assert [s["subset"] for s in meta["meta"]["subsets"]] == SUBSETS_2019
    hr = next(r for r in meta["rows"] if r["reference"])
    assert hr["weather:ppocr.plate_acc"] is not None and hr["weather:psnr_y"] is None  # the HR ceiling reads, it is not scored
    html = stem.with_suffix(".html").read_text(encoding="utf-8")
    assert "<h2>Per CCPD subset: PSNR-Y dB</h2>" in html and "challenge (3)" in html


def test_bench_run_test_subsets(ccpd2019: Path, tmp_path: Path, capsys):
    code, out, err = run_main(capsys, "run", "--methods", "bicubic", "--profile", "test", "--data", f"ccpd:{ccpd2019}", "--ocr", "none",
                              "--test-subsets", "tilt,challenge", "--run-dir", str(tmp_path / "runs"), "--leaderboard-dir", str(tmp_path / "lb"))
    assert code == 0, err
    assert "test subsets tilt, challenge" in out
    result = json.loads((tmp_path / "runs" / "bicubic" / "result.json").read_text(encoding="utf-8"))
    assert result["data"]["test_subsets"] == ["tilt", "challenge"] and result["data"]["n_test"] == 6
    md = (tmp_path / "lb" / "CCPD2019-x8-test.md").read_text(encoding="utf-8")
    assert "| method | all (6) | tilt (3) | challenge (3) |" in md


@pytest.mark.parametrize("args, message", [
    (("--data", "synthetic", "--test-subsets", "db"),
     "error: --test-subsets: 'synthetic' has no CCPD subsets; it applies to ccpd:PATH data with ccpd_<subset>/ folders"),
    (("--test-subsets", " , "), "error: --test-subsets ' , ': give comma-separated CCPD subset names, e.g. base,db,blur"),
])
def test_bad_test_subsets_is_one_line(args, message, tmp_path: Path, capsys):
    code, _out, err = run_main(capsys, "run", "--methods", "bicubic", "--profile", "test", "--run-dir", str(tmp_path / "r"), *args)
    assert code == 2 and err.strip() == message


def test_an_unlisted_subset_never_takes_a_listed_file_name_into_test(ccpd_sample: Path, tmp_path: Path):
    root = tree.ccpd2019_tree(ccpd_sample, tmp_path / "CCPD2019", n_train=4, n_val=2, per_test_subset=1, n_no_plate=0)
    listed_train = (root / "splits" / "train.txt").read_text(encoding="utf-8").split()
    trained = Path(listed_train[0]).name
    (root / "ccpd_extra").mkdir()
    (root / "ccpd_extra" / trained).hardlink_to(root / "ccpd_base" / trained)  # the same photo, a second folder
    splits = load_ccpd(root)
    assert trained in {p.id for p in splits.train} and trained not in {p.id for p in splits.test}
    assert "extra" not in splits.info["unlisted_subsets_to_test"]
