"""Synthetic plates: determinism, plate-string rules, disjoint splits, the bundled font."""
from __future__ import annotations

import re

import numpy as np
import pytest
from fontTools.ttLib import TTFont

from lpsr.data.ccpd import ALPHABETS, PROVINCES
from lpsr.data.record import DataError
from lpsr.data.sources import data_fingerprint, load_data
from lpsr.data.synthetic import FONT_PATH, make_synthetic, random_plate_text, render_plate

PROV = "".join(p for p in PROVINCES if p not in "警学O")
LETTER = "".join(a for a in ALPHABETS if a != "O")
ALNUM = LETTER + "0123456789"
BLUE = re.compile(f"^[{PROV}][{LETTER}][{ALNUM}]{{5}}$")
GREEN = re.compile(f"^[{PROV}][{LETTER}]([DF][{ALNUM}][0-9]{{4}}|[0-9]{{5}}[DF])$")


def test_same_seed_gives_identical_bytes_and_other_seeds_differ():
    a = make_synthetic(3, 2, 2, seed=0, hr_size=(96, 32))
    b = make_synthetic(3, 2, 2, seed=0, hr_size=(96, 32))
    c = make_synthetic(3, 2, 2, seed=1, hr_size=(96, 32))
    for name in ("train", "val", "test"):
        assert [r.text for r in a.split(name)] == [r.text for r in b.split(name)]
        assert all(x.hr.tobytes() == y.hr.tobytes() for x, y in zip(a.split(name), b.split(name)))
    assert data_fingerprint(a) == data_fingerprint(b) != data_fingerprint(c)
    assert not any(np.array_equal(x.hr, y.hr) for x, y in zip(a.train, c.train))


def test_plate_strings_follow_blue_and_green_rules():
    rng = np.random.default_rng(7)
    texts = [random_plate_text(rng) for _ in range(2000)]
    blue = [t for t in texts if len(t) == 7]
    green = [t for t in texts if len(t) == 8]
    assert len(blue) + len(green) == len(texts)
    assert 0.2 < len(green) / len(texts) < 0.45
    assert [t for t in blue if not BLUE.match(t)] == []
    assert [t for t in green if not GREEN.match(t)] == []
    assert "·" not in "".join(texts)
    assert len({t[0] for t in texts}) > 20  # provinces besides 皖 appear


def test_splits_have_disjoint_strings_sizes_and_meta():
    s = make_synthetic(12, 4, 6, seed=3, hr_size=(192, 64))
    assert (len(s.train), len(s.val), len(s.test)) == (12, 4, 6) and s.name == "synthetic"
    sets = [{r.text for r in part} for part in (s.train, s.val, s.test)]
    assert sum(map(len, sets)) == 22 and len(set().union(*sets)) == 22
    for r in s.train + s.val + s.test:
        assert r.hr.shape == (64, 192, 3) and r.hr.dtype == np.uint8
        assert r.hr.std() > 8  # characters are visible, not a flat fill
        assert r.meta["color"] == ("green" if len(r.text) == 8 else "blue")
        assert BLUE.match(r.text) or GREEN.match(r.text)
    assert len({r.id for r in s.train + s.val + s.test}) == 22


def test_fewer_plates_are_a_prefix_of_more():
    small = make_synthetic(2, 1, 1, seed=5, hr_size=(48, 16))
    large = make_synthetic(4, 3, 1, seed=5, hr_size=(48, 16))
    assert [r.text for r in small.train] == [r.text for r in large.train][:2]
    assert small.val[0].hr.tobytes() == large.val[0].hr.tobytes()


def test_colours_look_like_their_plate_type():
    blue, _ = render_plate("皖A12345", 0)
    green, _ = render_plate("皖AD12345", 0)
    mid_b = blue[20:44].reshape(-1, 3).astype(float).mean(0)
    mid_g = green[:, :, 1].astype(float).mean(), green[:, :, 2].astype(float).mean()
    assert mid_b[2] > mid_b[0]  # blue background dominates
    assert mid_g[0] > mid_g[1]  # green over blue channel


def test_load_data_synthetic_spec_seed_and_limit():
    a = load_data("synthetic:4", synthetic_sizes=(3, 1, 2), hr_size=(48, 16))
    b = load_data("synthetic", seed=4, synthetic_sizes=(3, 1, 2), hr_size=(48, 16), limit={"test": 1})
    assert a.info["seed"] == 4 and a.info["spec"] == "synthetic:4"
    assert [r.text for r in b.test] == [r.text for r in a.test][:1]
    with pytest.raises(DataError, match="synthetic:SEED"):
        load_data("synthetic:abc")
    with pytest.raises(DataError, match="ccpd:PATH"):
        load_data("imagenet:/data")
    with pytest.raises(DataError, match="non-negative"):
        make_synthetic(-1, 1, 1)


def test_bundled_font_is_small_and_covers_the_plate_alphabet():
    assert FONT_PATH.is_file() and FONT_PATH.stat().st_size < 1_000_000
    assert (FONT_PATH.parent / "NotoSansCJK-LICENSE.txt").is_file()
    cmap = TTFont(str(FONT_PATH)).getBestCmap()
    needed = set(PROVINCES[:-1]) | set("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789·")
    assert {chr(c) for c in cmap} >= needed
