"""Property tests (hypothesis): the CCPD name parser, the labels.csv reader and the profile
/ settings loader return a valid record or raise their documented one-line error; never
another exception.  A few thousand cases each, each test well under 20 s."""
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

FUZZ = settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
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
                          "text,filename,split,extra"])
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
        rows, has_split = read_labels(path)
    except DataError as exc:
        assert str(exc).startswith(str(path))
        return
    for r in rows:
        assert r["filename"] and r["text"] and isinstance(r["line"], int)
        if has_split:
            assert r["split"] in ("train", "val", "test")


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


@settings(max_examples=1500, deadline=None)
@given(yaml_text)
def test_profile_yaml_file_loads_or_config_error(text):
    path = _TMP / "p.yaml"
    path.write_bytes(text.encode("utf-8", "replace"))
    try:
        validate_profile(read_yaml(path), "profile p.yaml", known_methods=METHODS)
    except ConfigError as exc:
        assert "\n" not in str(exc)
