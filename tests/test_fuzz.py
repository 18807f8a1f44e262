"""Property tests (hypothesis): the CCPD name parser, the labels.csv reader and the profile
/ settings loader return a valid record or raise their documented one-line error; never
another exception.  750-1,000 cases each (hypothesis keeps a database of failures, so a
case that once failed is tried first), each test under 10 s."""
from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lpsr.config import ConfigError, read_yaml
from lpsr.data.ccpd import CcpdAnnotation, parse_ccpd_name
from lpsr.data.folder import read_labels
from lpsr.data.record import DataError
from lpsr.profile import Profile, validate_profile

FUZZ = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
METHODS = ["bicubic", "tiny", "mse", "pecl", "esrgan"]

# ------------------------------------------------------------------ CCPD names
num = st.one_of(st.integers(-5, 1000).map(str), st.text("0123456789-&_x ", max_size=5), st.sampled_from(["", "１２", "٣", "²", "1e3", " 7"]))
point = st.builds(lambda a, b: f"{a}&{b}", num, num)
field = st.one_of(
    num,
    st.lists(num, min_size=1, max_size=9).map("_".join),
    st.lists(point, min_size=1, max_size=5).map("_".join),
    st.text(max_size=12),
)
name = st.one_of(
    st.lists(field, min_size=5, max_size=9).map("-".join).flatmap(
        lambda stem: st.sampled_from([".jpg", ".png", "", ".JPG", "/x.jpg"]).map(lambda ext: stem + ext)),
    st.text(max_size=80),
)


@FUZZ
@given(name)
def test_ccpd_parser_returns_annotation_or_data_error(text):
    try:
        ann = parse_ccpd_name(text)
    except DataError as exc:
        assert str(exc).startswith("not a CCPD file name: ")
        return
    assert isinstance(ann, CcpdAnnotation)
    assert len(ann.corners) == 4 and len(ann.bbox) == 2 and len(ann.indices) in (7, 8)
    assert isinstance(ann.text, str)


# ------------------------------------------------------------------ labels.csv
cell = st.one_of(st.text(max_size=10), st.sampled_from(["train", "val", "test", "x.png", "皖A12345", "", '"', ",", "\x00", "\r"]))
row = st.lists(cell, min_size=0, max_size=5).map(",".join)
header = st.sampled_from(["filename,text", "filename,text,split", "file,text", " filename , text ", "filename,filename,text", "",
                          "text,filename,split,extra",
                          "lr_filename,text", "lr_filename,text,track,frame", "lr_filename,text,split", "filename,lr_filename,text"])
csv_text = st.one_of(st.builds(lambda h, rows: "\n".join([h, *rows]), header, st.lists(row, max_size=8)), st.text(max_size=120))
encoding = st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "latin-1"])
_TMP = Path(tempfile.mkdtemp(prefix="lpsr-fuzz-"))


@FUZZ
@given(csv_text, encoding)
def test_labels_reader_returns_rows_or_data_error(text, enc):
    path = _TMP / "labels.csv"
    try:
        data = text.encode(enc)
    except UnicodeEncodeError:
        data = text.encode("utf-8")
    path.write_bytes(data)
    try:
        labels = read_labels(path)
        rows, has_split = labels.rows, labels.has_split
    except DataError as exc:
        assert str(exc).startswith(str(path))
        return
    for r in rows:
        assert r["filename"] and r["text"] and isinstance(r["line"], int)
        if has_split:
            assert r["split"] in (("test",) if labels.lr_only else ("train", "val", "test"))
        if labels.has_track:
            assert r["track"]


# ------------------------------------------------------------------ profiles
scalar = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True), st.text(max_size=8),
                   st.sampled_from(["1e-4", "cosine", "adam", "bbox", "perspective", "fp32"]))
train_key = st.one_of(st.sampled_from(["iterations", "batch_size", "patch_size", "lr", "schedule", "val_every", "val_plates", "log_every",
                                       "threads", "grad_clip", "optimizer", "betas", "lr_steps", "ema_decay", "iteration", "trian"]),
                      st.text(max_size=4))
train_block = st.dictionaries(train_key, st.one_of(scalar, st.lists(scalar, max_size=3)), max_size=5)
value = st.recursive(scalar, lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)), max_leaves=6)
profile = st.fixed_dictionaries(
    {},
    optional={
        "seed": scalar,
        "description": scalar,
        "data": st.one_of(value, st.fixed_dictionaries({}, optional={"hr_size": st.one_of(value, st.lists(st.integers(-5, 3000), max_size=3)),
                                                                       "crop": scalar, "synthetic": st.dictionaries(st.sampled_from(["train", "val", "test", "tst"]), scalar, max_size=3)})),
        "train": st.one_of(train_block, scalar),
        "eval": st.one_of(st.dictionaries(st.sampled_from(["crop_border", "batch_size", "crop"]), scalar, max_size=2), scalar),
        "per_method": st.one_of(st.dictionaries(st.one_of(st.sampled_from(METHODS + ["msre", "all"]), st.text(max_size=4)), st.one_of(train_block, scalar), max_size=2), scalar),
        "trian": value,
        "evall": value,
    },
)


@FUZZ
@given(profile)
def test_profile_loader_returns_profile_or_config_error(raw):
    try:
        result = validate_profile(raw, "profile p.yaml", known_methods=METHODS)
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith("profile p.yaml: ") and "\n" not in message
        return
    assert isinstance(result, Profile)
    assert 0 <= result.seed < 2**32 and result.eval.batch_size >= 1 and result.eval.crop_border >= 0


yaml_text = st.one_of(st.text(max_size=80), st.lists(st.sampled_from(["seed: 1", "train:", "  iterations: 4.7", "  lr: 1e-4", "eval: {crop_border: -1}",
                                                                       "per_method: {mse: {iterations: 2}}", "data: {hr_size: [192, 64]}", "- 1", "a: [", "\t", "&a x: *a"]),
                                                      max_size=6).map("\n".join))


@settings(max_examples=750, deadline=None)
@given(yaml_text)
def test_profile_yaml_file_loads_or_config_error(text):
    path = _TMP / "p.yaml"
    path.write_bytes(text.encode("utf-8", "replace"))
    try:
        validate_profile(read_yaml(path), "profile p.yaml", known_methods=METHODS)
    except ConfigError as exc:
        assert "\n" not in str(exc)


# ------------------------------------------------------------------ folder: paths (issue 20)
_FOLDER = Path(tempfile.mkdtemp(prefix="lpsr-fuzz-folder-"))
_DATA, _OUTSIDE = _FOLDER / "data", _FOLDER / "outside"


def _folder_fixture() -> None:
    import os

    import cv2
    import numpy as np

    for d in (_DATA / "sub", _OUTSIDE):
        d.mkdir(parents=True, exist_ok=True)
    for f in (_DATA / "p0.png", _DATA / "sub" / "p1.png", _OUTSIDE / "secret.png"):
        cv2.imwrite(str(f), np.full((64, 192, 3), 90, np.uint8))
    links = {"in.png": "p0.png", "out.png": str(_OUTSIDE / "secret.png"), "up": "..", "loop.png": "loop.png",
             "dangling.png": "nowhere.png", "subout": str(_OUTSIDE)}
    for name, target in links.items():
        if not (_DATA / name).is_symlink():
            os.symlink(target, _DATA / name)


_folder_fixture()
segment = st.one_of(st.sampled_from(["..", ".", "", "p0.png", "sub", "p1.png", "in.png", "out.png", "up", "loop.png", "dangling.png",
                                     "subout", "secret.png", "outside", "data", "~", "ü", "车牌.png", "a" * 300]),
                    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00,\"\r\n"), min_size=1, max_size=12))
folder_name = st.builds(lambda lead, parts: lead + "/".join(parts), st.sampled_from(["", "/", "//", "./", str(_FOLDER) + "/", "\\"]),
                        st.lists(segment, min_size=1, max_size=5))


def _inside(path: Path) -> bool:
    try:
        return path.resolve().is_relative_to(_DATA.resolve())
    except (OSError, RuntimeError, ValueError):
        return True  # a loop or unreadable name: it cannot be read at all


@FUZZ
@given(folder_name)
def test_folder_rows_never_read_a_file_outside_the_folder(name):
    """Traversal, absolute paths, symlinks in and out, unicode, very long names: a plate read,
    a skip with its reason, or a one-line DataError naming labels.csv; never a file outside."""
    from lpsr.data.folder import load_folder

    name = name.strip()
    if not name or name.startswith("#"):
        return
    (_DATA / "labels.csv").write_text(f"filename,text,split\np0.png,A10000,train\nsub/p1.png,A20000,val\n{name},B30000,test\n",
                                      encoding="utf-8")
    try:
        s = load_folder(_DATA)
    except DataError as exc:
        assert str(exc).startswith(str(_DATA / "labels.csv")) and "\n" not in str(exc), str(exc)
        return
    for record in s.train + s.val + s.test:
        assert _inside(_DATA / record.id), f"{record.id} was read from outside the folder"
    assert all("\n" not in r for r in s.info["skip_reasons"].values())


# ------------------------------------------------------------------ duplicate YAML keys (issue 20)
yaml_key = st.sampled_from(["seed", "train", "lr", "iterations", "a", "1", "'seed'", "\"seed\"", "null", "~"])
yaml_line = st.builds(lambda indent, k, v: f"{'  ' * indent}{k}: {v}", st.integers(0, 2), yaml_key,
                      st.sampled_from(["1", "2", "", "{a: 1, a: 2}", "{x: 1}", "[1, 2]", "&anchor 3", "*anchor", "{<<: {a: 1}, a: 2}"]))


@settings(max_examples=750, deadline=None)
@given(st.lists(yaml_line, min_size=1, max_size=6).map("\n".join))
def test_yaml_with_duplicate_keys_is_refused_naming_the_key_and_lines(text):
    """read_yaml returns a mapping in which PyYAML lost nothing, or one line naming the file;
    if PyYAML itself parses the text and finds a repeated key, the error names it and both lines."""
    import re

    import yaml

    path = _TMP / "dup.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        data = read_yaml(path)
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith(f"{path}: ") and "\n" not in message
        match = re.search(r"key (.+) appears twice \(lines (\d+) and (\d+)\); keep one$", message)
        if match:
            first, second = int(match[2]), int(match[3])
            assert 1 <= first <= second <= text.count("\n") + 1
        return
    try:
        plain = yaml.safe_load(text)
    except yaml.YAMLError:
        raise AssertionError("read_yaml accepted text PyYAML refuses") from None
    assert data == (plain or {})
