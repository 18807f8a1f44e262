"""LR-only folder data (``lr_filename`` in labels.csv, no HR): readability-only scoring, the
XLPSR score, the per-track vote, and the errors of bad LR labels."""
from __future__ import annotations

import json
from itertools import zip_longest
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cli_helpers import run_main
from lpsr.data.folder import load_folder
from lpsr.data.record import DataError
from lpsr.data.sources import data_fingerprint, load_data
from lpsr.data.synthetic import make_synthetic
from lpsr.metrics.spec import track_table
from lpsr.metrics.text import track_vote, xlpsr_score

# ------------------------------------------------------------------ XLPSR score (oracles by hand)
T = "皖A12345"  # 7 characters: the maximum is 2 x 7 = 14


@pytest.mark.parametrize("reading, points", [
    ("皖A12345", 14),        # all in place
    ("皖A12_45", 12),        # a blank scores 0
    ("皖A1234", 12),         # shorter: the missing last character is a blank
    ("皖B12345", 11),        # one wrong: 12 - 1
    ("皖A123456", 13),       # one extra character: -1
    ("", 0),                 # nothing read
    ("XXXXXXX", -7),         # all wrong
    ("皖A·12-345", 14),      # separators are dropped before comparing
    ("皖A-12_45", 12),       # ... but a blank keeps its place
    ("皖AI2345", 14),        # look-alike I -> 1 (Chinese plates have no I)
    ("A12345", -6),          # a missing first character shifts all: A,1,2,3,4,5 vs 皖,A,1,2,3,4: 6 wrong, the 7th missing
])
def test_xlpsr_score_matches_hand_computation(reading, points):
    assert xlpsr_score(reading, T) == pytest.approx(points / 14)


def test_xlpsr_score_of_an_empty_truth():
    assert xlpsr_score("", "") == 1.0 and xlpsr_score("A", "") == 0.0


# ------------------------------------------------------------------ track vote (oracles by hand)
@pytest.mark.parametrize("readings, vote", [
    ([("皖A12345", 0.9), ("皖A12345", 0.8), ("皖B12345", 0.99)], "皖A12345"),   # majority beats one confident frame
    ([("AB1", 0.5), ("AC2", 0.6), ("DC1", 0.7)], "AC1"),                       # per position: no frame read AC1
    ([("AB12", 0.9), ("AB1", 0.4), ("AC1", 0.4)], "AB1"),                      # length 3 (two votes); B/C tie, equal conf: first read
    ([("AB", 0.3), ("AC", 0.8)], "AC"),                                        # tie broken by confidence
    ([("ABC", 0.2), ("AB", 0.9)], "AB"),                                       # length tie broken by confidence
    ([("", 0.0), ("AB", 0.1)], "AB"),                                          # nothing read does not vote
    ([("", 0.0)], ""),
    ([("A·B", 0.5), ("AB", 0.5), ("AC", 0.9)], "AB"),                          # normalised first: A·B is AB
])
def test_track_vote_matches_hand_computation(readings, vote):
    assert track_vote(readings) == vote


def test_track_table_votes_each_track_of_a_plates_table():
    plates = pd.DataFrame({
        "id": ["a", "b", "c", "d", "e"], "text": ["AB1", "AB1", "AB1", "XY9", "XY9"], "track": ["t1", "t1", "t1", "t2", "t2"],
        "frame": ["1", "2", "3", "1", "2"],
        "ocr_r_text": ["AB7", "AB1", "CB1", "XY8", "XZ9"], "ocr_r_conf": [0.5, 0.5, 0.5, 0.4, 0.6],
    })
    tracks = track_table(plates)
    # t1: positions A(2)/C, B(3), 1(2)/7 -> AB1 (exact, though only one frame read it);
    # t2: X(2), Y/Z tie -> Z (0.6 > 0.4), 8/9 tie -> 9 (0.6): XZ9 (wrong)
    assert list(tracks["track"]) == ["t1", "t2"] and list(tracks["frames"]) == [3, 2]
    assert list(tracks["ocr_r_track_text"]) == ["AB1", "XZ9"]
    assert list(tracks["ocr_r_track_exact"]) == [1.0, 0.0]
    assert track_table(plates.drop(columns="track")) is None


# ------------------------------------------------------------------ LR-only folders
SCALE = 4
HR_SIZE = (192, 64)
LR_SIZE = (HR_SIZE[0] // SCALE, HR_SIZE[1] // SCALE)


@pytest.fixture(scope="module")
def plates():
    """Three synthetic HR plates (the project's renderer): the source of the LR frames."""
    return make_synthetic(0, 0, 3, seed=5, hr_size=HR_SIZE).test


def write_lr_folder(folder: Path, plates, header: str = "lr_filename,text,track,frame", frames: int = 2) -> Path:
    """Each plate as ``frames`` LR crops of different sizes (as a camera would give them), one track per plate."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = [header]
    sizes = [LR_SIZE, (LR_SIZE[0] + 6, LR_SIZE[1] + 2), (LR_SIZE[0] - 4, LR_SIZE[1] - 1)]
    for k, p in enumerate(plates):
        for f in range(frames):
            name = f"car{k}-f{f}.png"
            Image.fromarray(p.hr).resize(sizes[f], Image.BICUBIC).save(folder / name)
            rows.append({"lr_filename,text,track,frame": f"{name},{p.text},car{k},{f}",
                         "lr_filename,text": f"{name},{p.text}"}[header])
    (folder / "labels.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folder


def test_lr_folder_loads_lr_records_without_hr_all_test(tmp_path, plates):
    folder = write_lr_folder(tmp_path / "lr", plates)
    splits = load_folder(folder, hr_size=HR_SIZE, scale=SCALE)
    assert splits.lr_only and not splits.train and not splits.val and len(splits.test) == 6
    for r in splits.test:
        assert r.hr is None and r.lr.shape == (LR_SIZE[1], LR_SIZE[0], 3) and r.lr.dtype == np.uint8
    assert [r.meta["track"] for r in splits.test] == ["car0", "car0", "car1", "car1", "car2", "car2"]
    assert splits.info["lr_only"] and splits.info["lr_size"] == list(LR_SIZE) and splits.info["tracks"]
    # the frame already at the LR size is kept byte for byte
    assert np.array_equal(splits.test[0].lr, np.asarray(Image.open(folder / "car0-f0.png").convert("RGB")))
    with pytest.raises(DataError, match="needs the scale"):
        load_folder(folder, hr_size=HR_SIZE)


def test_lr_folder_through_the_plate_cache_is_the_uncached_load(tmp_path, plates):
    """The cache stores LR-only crops as LR (hr stays None) and a hit gives the same records."""
    folder = write_lr_folder(tmp_path / "lr", plates)
    spec = f"folder:{folder}"
    uncached = load_data(spec, hr_size=HR_SIZE, scale=SCALE, cache=False)
    built = load_data(spec, hr_size=HR_SIZE, scale=SCALE, cache_dir=tmp_path / "cache")
    hit = load_data(spec, hr_size=HR_SIZE, scale=SCALE, cache_dir=tmp_path / "cache")
    assert (built.info["cache"], hit.info["cache"]) == ("built", "hit")
    for splits in (built, hit):
        assert splits.lr_only and len(splits.test) == len(uncached.test) == 6
        for a, b in zip(splits.test, uncached.test):
            assert a.hr is None and (a.id, a.text, a.meta) == (b.id, b.text, b.meta)
            assert a.lr.shape == b.lr.shape and a.lr.tobytes() == b.lr.tobytes()
        assert data_fingerprint(splits) == data_fingerprint(uncached)


@pytest.mark.parametrize("labels, where, match", [
    ("lr_filename,plate\nx.png,A1\n", " line 1", r"lacks column\(s\) text.*lr_filename,text"),
    ("filename,lr_filename,text\nx.png,y.png,A1\n", " line 1", "both filename .*and lr_filename"),
    ("lr_filename,text,split\na.png,A1,test\nb.png,A1,train\n", " line 3", "split 'train'.*every plate is a test plate"),
    ("lr_filename,text,track\na.png,A1,t1\nb.png,A2,t1\n", " line 3", "track 't1' has text 'A2' here but 'A1' on line 2"),
    ("lr_filename,text,track\na.png,A1,t1\nb.png,A1,\n", " line 3", "track is empty"),
    ("lr_filename,text\na.png,\n", " line 2", "lr_filename and text must both be filled in"),
])
def test_bad_lr_labels_are_one_line_naming_file_and_line(tmp_path, capsys, labels, where, match):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "labels.csv").write_text(labels, encoding="utf-8")
    with pytest.raises(DataError, match=match) as info:
        load_folder(folder, scale=8)
    assert str(info.value).startswith(f"{folder / 'labels.csv'}{where}")
    code, _out, err = run_main(capsys, "run", "--methods", "bicubic", "--data", f"folder:{folder}", "--ocr", "none",
                               "--profile", "test", "--run-dir", str(tmp_path / "run"))
    assert code == 2 and err.strip().count("\n") == 0 and err.startswith(f"error: {folder / 'labels.csv'}{where}")


def test_training_and_degradation_on_lr_only_data_are_refused(tmp_path, capsys, plates):
    folder = write_lr_folder(tmp_path / "lr", plates)
    args = ["run", "--data", f"folder:{folder}", "--ocr", "none", "--profile", "test", "--scale", str(SCALE), "--run-dir", str(tmp_path / "run")]
    code, _out, err = run_main(capsys, *args, "--methods", "bicubic,tiny")
    assert code == 2 and err.count("\n") == 1
    assert "LR-only data (lr_filename in labels.csv) has no HR to train tiny on; pass --weights tiny=FILE" in err
    code, _out, err = run_main(capsys, *args, "--methods", "bicubic", "--degradation", "camera")
    assert code == 2 and err.count("\n") == 1 and "is LR-only data, scored on its LR crops as given" in err
    assert not (tmp_path / "run").exists()


def test_a_learned_method_scores_lr_only_data_with_weights(tmp_path, capsys, plates):
    """--weights: a network trained elsewhere super-resolves the LR crops (no val, no training)."""
    import torch

    from lpsr import registry
    from lpsr.train.checkpoint import save_weights

    torch.manual_seed(0)
    weights = tmp_path / "tiny.safetensors"
    save_weights(registry.get("tiny").create(SCALE).build(), weights)
    folder = write_lr_folder(tmp_path / "lr", plates, header="lr_filename,text", frames=1)
    code, out, err = run_main(capsys, "run", "--methods", "tiny", "--weights", f"tiny={weights}", "--data", f"folder:{folder}",
                              "--ocr", "none", "--profile", "test", "--scale", str(SCALE), "--run-dir", str(tmp_path / "run"),
                              "--leaderboard-dir", str(tmp_path / "lb"))
    assert code == 0, err
    table = pd.read_csv(tmp_path / "run" / "tiny" / "plates.csv")
    assert list(table.columns) == ["id", "text"] and len(table) == 3
    result = json.loads((tmp_path / "run" / "tiny" / "result.json").read_text(encoding="utf-8"))
    assert result["data"]["lr_only"] and result["data"]["n_test"] == 3 and result["status"] == "loaded"
    assert result["degradation"] is None  # the LR is the data's own, not made by a degradation


def xlpsr_by_hand(reading: str, truth: str) -> float:
    """The score from its definition, for readings without separators (the recognisers' output)."""
    points = sum(0 if p in ("_", None) else (2 if p == t else -1) for p, t in zip_longest(reading, truth))
    return points / (2 * len(truth))


def test_bench_run_on_lr_only_data_gives_a_readability_only_leaderboard(tmp_path, capsys, plates):
    folder = write_lr_folder(tmp_path / "lr", plates)
    run, lb = tmp_path / "run", tmp_path / "lb"
    code, out, err = run_main(capsys, "run", "--methods", "bicubic", "--data", f"folder:{folder}", "--ocr", "plate", "--profile", "test",
                              "--scale", str(SCALE), "--run-dir", str(run), "--leaderboard-dir", str(lb))
    assert code == 0, err
    table = pd.read_csv(run / "bicubic" / "plates.csv", keep_default_na=False, dtype=str)
    assert not [c for c in table.columns if "psnr" in c or "ssim" in c]
    assert list(table.columns[:4]) == ["id", "text", "track", "frame"] and "ocr_plate_xlpsr" in table.columns
    # every plate's XLPSR score from its reading, by the definition
    by_hand = [xlpsr_by_hand(r, t) for r, t in zip(table["ocr_plate_text"], table["text"])]
    assert [float(v) for v in table["ocr_plate_xlpsr"]] == pytest.approx(by_hand)
    # one vote per track, the per-frame and per-track rates in the leaderboard
    tracks = pd.read_csv(run / "bicubic" / "tracks.csv", keep_default_na=False, dtype={"ocr_plate_track_text": str})
    assert list(tracks["track"]) == ["car0", "car1", "car2"] and list(tracks["frames"]) == [2, 2, 2]
    for _, t in tracks.iterrows():
        # two frames: every disagreement (of a character or of the length) is a 1-1 tie, so the
        # vote is the more confident frame's reading (here nothing is empty or has separators)
        frames = table[table["track"] == t["track"]]
        confident = frames.iloc[int(np.argmax(frames["ocr_plate_conf"].astype(float).to_numpy()))]
        assert t["ocr_plate_track_text"] == confident["ocr_plate_text"]
        assert float(t["ocr_plate_track_exact"]) == float(confident["ocr_plate_text"] == t["text"])
    assert not (run / "_hr").exists()
    md = (lb / "run.md").read_text(encoding="utf-8") if (lb / "run.md").exists() else next(lb.glob("*.md")).read_text(encoding="utf-8")
    assert "readability only: the data has no HR" in md
    assert "PSNR dB" not in md and "SSIM-Y |" not in md and "XLPSR score" in md and "track plate acc" in md
    data = json.loads(next(lb.glob("*.json")).read_text(encoding="utf-8"))
    row = next(r for r in data["rows"] if r["method"] == "bicubic")
    assert not [k for k in row if k.startswith(("psnr", "ssim"))]
    assert row["plate.xlpsr"] == pytest.approx(float(np.mean(by_hand)))
    assert row["plate.plate_acc"] == pytest.approx(float((table["ocr_plate_exact"].astype(float)).mean()))
    assert row["plate.track_acc"] == pytest.approx(float(tracks["ocr_plate_track_exact"].mean()))
    assert data["meta"]["provenance"]["readability_only"] == "readability only: the data has no HR"
    # bench report rebuilds the same numbers from the run's files
    code, _out, err = run_main(capsys, "report", str(run), "--out", str(tmp_path / "again"))
    assert code == 0, err
    again = json.loads((tmp_path / "again.json").read_text(encoding="utf-8"))
    assert again["rows"] == data["rows"]


def test_robustness_matrix_of_lr_only_data_has_an_own_lr_column_and_no_psnr(tmp_path, capsys, plates):
    folder = write_lr_folder(tmp_path / "lr", plates)
    run = tmp_path / "run"
    code, _out, err = run_main(capsys, "run", "--methods", "bicubic", "--data", f"folder:{folder}", "--ocr", "plate", "--profile",
                               "test", "--scale", str(SCALE), "--run-dir", str(run), "--leaderboard-dir", str(tmp_path / "lb"))
    assert code == 0, err
    code, _out, err = run_main(capsys, "report", "--matrix", str(run), str(run), "--out", str(tmp_path / "m"))
    assert code == 0, err
    md = (tmp_path / "m.md").read_text(encoding="utf-8")
    assert "| own LR |" in md and "| bicubic |" not in md.split("## ", 1)[1].split("\n")[2]  # the column is the data's own LR
    assert "PSNR" not in md  # no HR: no image-metric table, not an empty one
    assert "none (LR-only data" in md
    # both (identical) run directories are named with what they hold, none as "nothing finished"
    assert "nothing finished" not in md and md.count("(own LR)") >= 2
    cells = json.loads((tmp_path / "m.json").read_text(encoding="utf-8"))["cells"]
    assert {c["test_degradation"] for c in cells} == {"own LR"} and not [c for c in cells if "psnr" in c["metric"]]
