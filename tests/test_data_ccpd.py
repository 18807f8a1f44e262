"""CCPD loader: file-name parser, plate rectification, split files, skip/strict rules."""
from __future__ import annotations

import csv
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from lpsr.data.ccpd import crop_bbox, decode_plate, load_ccpd, parse_ccpd_name, rectify_corners
from lpsr.data.record import DataError
from lpsr.data.sources import data_fingerprint, load_data

from conftest import CCPD_SAMPLE as SAMPLE


def need_sample() -> Path:
    if not (SAMPLE / "manifest.tsv").is_file():
        pytest.skip(f"CCPD sample not found at {SAMPLE}")
    return SAMPLE


# ------------------------------------------------------------------ name parser
def test_parse_readme_example_blue_plate():
    ann = parse_ccpd_name("025-95_113-154&383_386&473-386&473_177&454_154&383_363&402-0_0_22_27_27_33_16-37-15.jpg")
    assert ann.area == "025"
    assert ann.tilt == (95, 113)
    assert ann.bbox == ((154, 383), (386, 473))
    assert ann.corners == ((386, 473), (177, 454), (154, 383), (363, 402))
    assert ann.indices == (0, 0, 22, 27, 27, 33, 16)
    assert (ann.brightness, ann.blurriness) == (37, 15)
    assert ann.text == "皖AY339S"
    assert ann.color == "blue"


def test_parse_green_plate_and_long_first_field():
    ann = parse_ccpd_name("images/00425347222222-89_267-242&459_354&497-354&497_244&497_242&461_352&459-0_0_3_24_27_30_30_24-91-5.jpg")
    assert ann.area == "00425347222222"
    assert ann.text == "皖AD03660"
    assert ann.color == "green" and len(ann.text) == 8
    assert ann.corners[2] == (242, 461)


def test_parse_short_first_field_with_tilt_near_zero():
    ann = parse_ccpd_name("0033-0_1-309&446_398&477-398&476_310&477_309&447_397&446-10_0_33_19_25_1_25-80-20.jpg")
    assert ann.area == "0033" and ann.tilt == (0, 1)
    assert ann.text == "苏A9V1B1"


def test_decode_drops_no_character_slots():
    assert decode_plate([0, 0, 1, 2, 3, 4, 34]) == "皖ABCDE"


@pytest.mark.parametrize(
    "name",
    [
        "holiday.jpg",
        "025-95_113-154&383_386&473-386&473_177&454_154&383-0_0_22_27_27_33_16-37-15.jpg",  # 3 corners
        "025-95_113-154&383_386&473-386&473_177&454_154&383_363&402-0_0_22_27_27_33-37-15.jpg",  # 6 chars
        "025-95_113-154&383_386&473-386&473_177&454_154&383_363&402-0_0_22_27_27_33_99-37-15.jpg",  # index 99
        "025-95_x-154&383_386&473-386&473_177&454_154&383_363&402-0_0_22_27_27_33_16-37-15.jpg",  # tilt not int
        "abc-95_113-154&383_386&473-386&473_177&454_154&383_363&402-0_0_22_27_27_33_16-37-15.jpg",
    ],
)
def test_unparsable_names_raise_naming_the_file(name):
    with pytest.raises(DataError, match="not a CCPD file name") as err:
        parse_ccpd_name(name)
    assert name in str(err.value)


def test_every_sample_name_decodes_to_the_manifest_text():
    root = need_sample()
    with (root / "manifest.tsv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert len(rows) == 1500
    wrong = [(r["filename"], r["plate_text"]) for r in rows if parse_ccpd_name(r["filename"]).text != r["plate_text"]]
    assert wrong == []
    lengths = {int(r["n_plate_chars"]) for r in rows}
    assert lengths == {7, 8}
    assert all(len(parse_ccpd_name(r["filename"]).text) == int(r["n_plate_chars"]) for r in rows)


# ------------------------------------------------------------------ cropping
def _pattern(w: int = 192, h: int = 64) -> np.ndarray:
    """Smooth but asymmetric content: a wrong corner order or a flip shows up clearly."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = 128 + 100 * np.sin(xx / 17.0) * np.cos(yy / 11.0)
    g = 255 * xx / (w - 1)
    b = 255 * yy / (h - 1)
    return np.clip(np.stack([r, g, b], -1), 0, 255).astype(np.uint8)


def test_perspective_warp_recovers_the_rectangle_content():
    content = _pattern()
    h, w = content.shape[:2]
    quad = np.array([[352, 241], [95, 262], [60, 150], [330, 108]], np.float32)  # rb, lb, lt, rt
    src = np.array([[w - 1, h - 1], [0, h - 1], [0, 0], [w - 1, 0]], np.float32)
    scene = np.full((320, 420, 3), 30, np.uint8)
    matrix = cv2.getPerspectiveTransform(src, quad)
    cv2.warpPerspective(content, matrix, (420, 320), dst=scene, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_TRANSPARENT)

    back = rectify_corners(scene, quad, (w, h))
    assert back.shape == (h, w, 3) and back.dtype == np.uint8
    err = np.abs(back.astype(float) - content.astype(float))[3:-3, 3:-3].mean()
    assert err < 4.0

    swapped = rectify_corners(scene, quad[[1, 0, 3, 2]], (w, h))  # left/right mixed up
    assert np.abs(swapped.astype(float) - content.astype(float))[3:-3, 3:-3].mean() > 20


def test_bbox_crop_takes_the_box_and_resizes():
    scene = np.zeros((200, 300, 3), np.uint8)
    scene[50:91, 100:221] = (200, 30, 60)
    crop = crop_bbox(scene, ((100, 50), (220, 90)), (96, 32))
    assert crop.shape == (32, 96, 3)
    assert np.abs(crop.astype(int) - [200, 30, 60]).max() <= 1


# ------------------------------------------------------------------ fake CCPD folders
def ccpd_name(chars: list[int], x: int = 40, y: int = 30, bright: int = 100) -> str:
    """A CCPD-style name for a 120x40 plate at (x, y) in a 240x160 photo."""
    x2, y2 = x + 119, y + 39
    corners = f"{x2}&{y2}_{x}&{y2}_{x}&{y}_{x2}&{y}"
    return f"01-90_90-{x}&{y}_{x2}&{y2}-{corners}-{'_'.join(map(str, chars))}-{bright}-5.jpg"


def write_photo(path: Path, value: int = 180, x: int = 40, y: int = 30) -> None:
    photo = np.full((160, 240, 3), 20, np.uint8)
    photo[y : y + 40, x : x + 120] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), photo)


PLATES = [[0, 0, i % 34, (i * 7) % 34, 3, 4, 5] for i in range(24)]


@pytest.fixture()
def bare_ccpd(tmp_path: Path) -> Path:
    root = tmp_path / "my-ccpd"
    for i, chars in enumerate(PLATES):
        for shot in range(2):  # the same car photographed twice
            write_photo(root / "ccpd_base" / ccpd_name(chars, bright=50 + shot), value=100 + i)
    return root


def test_bare_folder_is_split_by_plate_string_deterministically(bare_ccpd: Path):
    a = load_ccpd(bare_ccpd, hr_size=(96, 32))
    b = load_ccpd(bare_ccpd, hr_size=(96, 32))
    assert a.name == "my-ccpd"
    assert len(a.train) + len(a.val) + len(a.test) == 48 and a.skipped == 0
    texts = [{r.text for r in s} for s in (a.train, a.val, a.test)]
    assert not (texts[0] & texts[1]) and not (texts[0] & texts[2]) and not (texts[1] & texts[2])
    assert [r.id for r in a.test] == [r.id for r in b.test]
    assert data_fingerprint(a) == data_fingerprint(b)
    assert a.train[0].hr.shape == (32, 96, 3)
    assert "plate string" in a.info["split_rule"]


def test_adding_plates_does_not_move_others(bare_ccpd: Path):
    before = load_ccpd(bare_ccpd, hr_size=(48, 16))
    write_photo(bare_ccpd / "ccpd_new" / ccpd_name([5, 5, 5, 5, 5, 5, 5]))
    after = load_ccpd(bare_ccpd, hr_size=(48, 16))
    for name in ("train", "val", "test"):
        old = {r.id for r in before.split(name)}
        new = {r.id for r in after.split(name)}
        assert old <= new


def test_split_files_are_honoured_and_deduplicated(tmp_path: Path):
    root = tmp_path / "ccpd"
    names = [ccpd_name(c) for c in PLATES[:6]]
    for n in names:
        write_photo(root / "ccpd_base" / n)
    write_photo(root / "ccpd_weather" / names[0])  # same file name in a second subset
    (root / "splits").mkdir()
    (root / "splits/train.txt").write_text(
        "\n".join([f"ccpd_base/{names[0]}", f"ccpd_weather/{names[0]}", f"ccpd_base/{names[1]}", f"ccpd_base/{names[1]}", f"ccpd_base/{names[2]}"]) + "\n"
    )
    (root / "splits/val.txt").write_text(f"ccpd_base/{names[3]}\n\n")
    (root / "splits/test.txt").write_text(f"ccpd_base/{names[4]}\nccpd_base/{names[2]}\n")  # names[2] also in train
    splits = load_ccpd(root, hr_size=(60, 20))
    assert sorted(r.id for r in splits.train) == sorted([names[0], names[1]])
    assert [r.id for r in splits.val] == [names[3]]
    assert sorted(r.id for r in splits.test) == sorted([names[2], names[4]])
    assert splits.info["duplicates_dropped"] == 2 and splits.info["cross_split_dropped"] == 1
    assert names[5] not in {r.id for r in splits.train + splits.val + splits.test}  # unlisted: not loaded


def test_limit_takes_the_first_n_sorted(bare_ccpd: Path):
    full = load_ccpd(bare_ccpd, hr_size=(48, 16))
    few = load_ccpd(bare_ccpd, hr_size=(48, 16), limit={"train": 3, "test": 1})
    assert [r.id for r in few.train] == sorted(r.id for r in full.train)[:3]
    assert len(few.test) == 1 and len(few.val) == len(full.val)
    with pytest.raises(DataError, match="limit"):
        load_ccpd(bare_ccpd, limit={"training": 3})


def test_unparsable_name_is_skipped_and_counted_or_raises_when_strict(bare_ccpd: Path):
    write_photo(bare_ccpd / "ccpd_base" / "IMG_0042.jpg")
    splits = load_ccpd(bare_ccpd, hr_size=(48, 16))
    assert splits.skipped == 1 and splits.info["skipped"] == ["IMG_0042.jpg"]
    assert len(splits.train) + len(splits.val) + len(splits.test) == 48
    with pytest.raises(DataError, match="IMG_0042.jpg"):
        load_ccpd(bare_ccpd, strict=True)


@pytest.mark.parametrize("payload", [b"", b"\xff\xd8 this is not a jpeg"])
def test_unreadable_image_is_skipped_or_raises_when_strict(tmp_path: Path, payload: bytes):
    root = tmp_path / "ccpd"
    good, bad = ccpd_name(PLATES[0]), ccpd_name(PLATES[1])
    write_photo(root / good)
    (root / bad).write_bytes(payload)
    splits = load_ccpd(root, hr_size=(48, 16), fractions=(1, 0, 0))
    assert splits.skipped == 1 and splits.info["skipped"] == [bad]
    assert [r.id for r in splits.train] == [good]
    with pytest.raises(DataError, match="cannot decode image .*" + re.escape(bad)):
        load_ccpd(root, strict=True, fractions=(1, 0, 0))


def test_listed_file_that_is_missing_is_skipped(tmp_path: Path):
    root = tmp_path / "ccpd"
    write_photo(root / "images" / ccpd_name(PLATES[0]))
    (root / "splits").mkdir()
    (root / "splits/test.txt").write_text(f"images/{ccpd_name(PLATES[0])}\nimages/{ccpd_name(PLATES[1])}\n")
    splits = load_ccpd(root, hr_size=(48, 16))
    assert len(splits.test) == 1 and splits.skipped == 1
    with pytest.raises(DataError, match="does not exist"):
        load_ccpd(root, strict=True)


def test_corners_outside_the_image_are_rejected(tmp_path: Path):
    root = tmp_path / "ccpd"
    write_photo(root / ccpd_name(PLATES[0], x=200))  # plate would reach x=319 in a 240-wide photo
    with pytest.raises(DataError, match="outside"):
        load_ccpd(root, strict=True, fractions=(1, 0, 0))


def test_missing_or_empty_path_is_an_error(tmp_path: Path):
    with pytest.raises(DataError, match="nowhere"):
        load_ccpd(tmp_path / "nowhere")
    with pytest.raises(DataError, match="empty path"):
        load_ccpd("")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images found"):
        load_ccpd(tmp_path / "empty")
    with pytest.raises(DataError, match="crop mode"):
        load_ccpd(tmp_path, crop="square")


# ------------------------------------------------------------------ the real sample
def test_sample_loads_with_split_files_and_limit():
    root = need_sample()
    splits = load_data(f"ccpd:{root}", limit={"train": 3, "val": 2, "test": 2})
    assert splits.name == "ccpd-sample" and splits.skipped == 0
    assert splits.info["spec"] == f"ccpd:{root}"
    with (root / "manifest.tsv").open(encoding="utf-8") as fh:
        truth = {r["filename"]: r["plate_text"] for r in csv.DictReader(fh, delimiter="\t")}
    for name, n in (("train", 3), ("val", 2), ("test", 2)):
        listed = sorted(Path(line).name for line in (root / f"splits/{name}.txt").read_text().split())
        got = splits.split(name)
        assert [r.id for r in got] == listed[:n]
        for r in got:
            assert r.hr.shape == (64, 192, 3) and r.text == truth[r.id]
            assert r.hr.std() > 10  # a real plate, not a flat border fill


def test_sample_bbox_mode_and_custom_size():
    root = need_sample()
    persp = load_ccpd(root, hr_size=(96, 32), limit={"train": 1, "val": 0, "test": 0})
    box = load_ccpd(root, hr_size=(96, 32), crop="bbox", limit={"train": 1, "val": 0, "test": 0})
    assert persp.train[0].hr.shape == box.train[0].hr.shape == (32, 96, 3)
    assert persp.train[0].id == box.train[0].id
    assert not np.array_equal(persp.train[0].hr, box.train[0].hr)
