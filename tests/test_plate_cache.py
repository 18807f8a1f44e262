"""The on-disk plate cache (lpsr.data.plate_cache): a cached load gives exactly the plates
the loaders give without it, later loads are memory-mapped hits, what changes the bytes
changes the key, a damaged store is named, rebuilt and never used, and decoding over worker
processes gives the serial loop's plates."""
from __future__ import annotations

import csv
import os
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cli_helpers import run_main
from lpsr.data import fingerprint as fingerprint_mod
from lpsr.data import sources
from lpsr.data.ccpd import load_ccpd
from lpsr.data.parallel import ProcessMap, serial_map
from lpsr.data.plate_cache import CHECKSUM, INDEX, load_cached
from lpsr.data.record import DataError
from lpsr.data.sources import data_fingerprint, load_data
from lpsr.data.splits import SPLIT_NAMES

#: what the cache adds to ``info`` (everything else must equal the uncached load's)
CACHE_FIELDS = ("cache", "cache_dir", "load_seconds")


def plain(splits) -> dict:
    """Everything a load yields, as comparable values (images as bytes)."""
    return {
        "name": splits.name, "skipped": splits.skipped,
        "info": {k: v for k, v in splits.info.items() if k not in CACHE_FIELDS},
        **{name: [(r.id, r.text, r.source, r.meta, r.hr.shape, r.hr.tobytes()) for r in splits.split(name)] for name in SPLIT_NAMES},
    }


def memory_mapped(array: np.ndarray) -> bool:
    base = array
    while base is not None and not isinstance(base, np.memmap):
        base = base.base
    return base is not None


@pytest.fixture(scope="module")
def ccpd_tree(ccpd_sample: Path, tmp_path_factory) -> Path:
    """A CCPD-shaped folder of sample photos (hard links) with split lists: 16/4/4 plates
    plus one listed file that does not exist (a skip)."""
    root = tmp_path_factory.mktemp("ccpd") / "mini"
    (root / "images").mkdir(parents=True)
    (root / "splits").mkdir()
    for name, n in (("train", 16), ("val", 4), ("test", 4)):
        listed = (ccpd_sample / "splits" / f"{name}.txt").read_text(encoding="utf-8").split()[:n]
        for rel in listed:
            os.link(ccpd_sample / rel, root / "images" / Path(rel).name)
        if name == "train":
            listed.append("images/0001-1_1-1&1_9&9-9&9_1&9_1&1_9&1-0_0_0_0_0_0_0-1-1.jpg")
        (root / "splits" / f"{name}.txt").write_text("\n".join(listed) + "\n", encoding="utf-8")
    return root


@pytest.fixture
def bare_ccpd(ccpd_sample: Path, tmp_path: Path) -> Path:
    """12 sample photos, no split lists (split by plate string); copies, not links: the
    tests touch them."""
    root = tmp_path / "bare"
    root.mkdir()
    for rel in (ccpd_sample / "splits" / "train.txt").read_text(encoding="utf-8").split()[:12]:
        shutil.copyfile(ccpd_sample / rel, root / Path(rel).name)
    return root


@pytest.fixture
def crops(tmp_path: Path) -> Path:
    """folder: data made with PIL: 14 crops of various sizes, one unreadable file."""
    root = tmp_path / "crops"
    root.mkdir()
    rng = random.Random(3)
    rows = []
    for k in range(14):
        w, h = rng.randint(40, 150), rng.randint(14, 50)
        pixels = np.random.default_rng(k).integers(0, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / f"p{k:02d}.png")
        rows.append((f"p{k:02d}.png", f"A{k:04d}"))
    (root / "broken.png").write_bytes(b"not a png")
    rows.append(("broken.png", "B0000"))
    with (root / "labels.csv").open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([("filename", "text"), *rows])
    return root


def test_cached_ccpd_load_is_the_uncached_one_and_the_second_is_a_memory_mapped_hit(ccpd_tree: Path, tmp_path: Path):
    spec = f"ccpd:{ccpd_tree}"
    uncached = load_data(spec, hr_size=(96, 32), cache=False)
    built = load_data(spec, hr_size=(96, 32), cache_dir=tmp_path)
    hit = load_data(spec, hr_size=(96, 32), cache_dir=tmp_path)
    assert (uncached.info["cache"], built.info["cache"], hit.info["cache"]) == ("off", "built", "hit")
    assert uncached.skipped == 1 and len(uncached.train) == 16
    assert plain(built) == plain(uncached) and plain(hit) == plain(uncached)
    assert data_fingerprint(hit) == data_fingerprint(built) == data_fingerprint(uncached)
    assert hit.info["cache_dir"] == built.info["cache_dir"] and Path(hit.info["cache_dir"]).parent == tmp_path
    for record in hit.train + hit.test:
        assert memory_mapped(record.hr) and not record.hr.flags.writeable
    assert isinstance(hit.train[0].meta["corners"][0], tuple)  # meta as the loader made it, tuples and all


def test_cached_folder_load_is_the_uncached_one(crops: Path, tmp_path: Path):
    uncached = load_data(f"folder:{crops}", hr_size=(48, 16), cache=False)
    built = load_data(f"folder:{crops}", hr_size=(48, 16), cache_dir=tmp_path)
    hit = load_data(f"folder:{crops}", hr_size=(48, 16), cache_dir=tmp_path)
    assert uncached.info["skipped"] == ["broken.png"] and uncached.skipped == 1
    assert (built.info["cache"], hit.info["cache"]) == ("built", "hit")
    assert plain(built) == plain(uncached) == plain(hit)
    assert data_fingerprint(hit) == data_fingerprint(uncached)


def test_a_hit_does_not_rehash_the_plates_unless_they_are_changed(crops: Path, tmp_path: Path, monkeypatch):
    truth = data_fingerprint(load_data(f"folder:{crops}", cache=False))
    load_data(f"folder:{crops}", cache_dir=tmp_path)
    hit = load_data(f"folder:{crops}", cache_dir=tmp_path)
    calls = []
    real = fingerprint_mod.compute_fingerprint
    monkeypatch.setattr(sources, "compute_fingerprint", lambda splits: calls.append(1) or real(splits))
    assert data_fingerprint(hit) == truth and calls == []  # the stored value
    hit.train[0], hit.train[1] = hit.train[1], hit.train[0]  # the plates change: computed again
    assert data_fingerprint(hit) != truth and calls == [1]
    hit.train[0], hit.train[1] = hit.train[1], hit.train[0]
    assert data_fingerprint(hit) == truth and calls == [1]
    hit.train[0].text += "X"  # so does a plate's text
    assert data_fingerprint(hit) != truth and calls == [1, 1]


def test_what_determines_the_bytes_changes_the_key(bare_ccpd: Path, ccpd_sample: Path, tmp_path: Path):
    spec = f"ccpd:{bare_ccpd}"
    first = load_data(spec, cache_dir=tmp_path)
    assert load_data(spec, cache_dir=tmp_path).info["cache"] == "hit"
    assert load_data(spec, cache_dir=tmp_path, crop="bbox").info["cache"] == "built"
    assert load_data(spec, cache_dir=tmp_path, scale=4).info["cache"] == "built"
    assert load_data(spec, cache_dir=tmp_path, limit={"train": 2}).info["cache"] == "built"
    photo = sorted(bare_ccpd.iterdir())[0]
    st = photo.stat()
    os.utime(photo, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched
    touched = load_data(spec, cache_dir=tmp_path)
    assert touched.info["cache"] == "built" and touched.info["cache_dir"] != first.info["cache_dir"]
    extra = (ccpd_sample / "splits" / "test.txt").read_text(encoding="utf-8").split()[0]
    shutil.copyfile(ccpd_sample / extra, bare_ccpd / Path(extra).name)  # added
    added = load_data(spec, cache_dir=tmp_path)
    assert added.info["cache"] == "built" and added.info["cache_dir"] not in (first.info["cache_dir"], touched.info["cache_dir"])
    assert sum(len(added.split(n)) for n in SPLIT_NAMES) == sum(len(first.split(n)) for n in SPLIT_NAMES) + 1
    assert load_data(spec, cache_dir=tmp_path).info["cache"] == "hit"
    inside = bare_ccpd / ".cache"  # a cache kept inside the data folder does not change its own key
    assert [load_data(spec, cache_dir=inside).info["cache"] for _ in range(2)] == ["built", "hit"]


def _truncate_array(store: Path) -> None:
    path = store / "train.npy"
    path.write_bytes(path.read_bytes()[:-100])


def _bad_index(store: Path) -> None:
    (store / INDEX).write_text("{not json", encoding="utf-8")


def _edited_index(store: Path) -> None:  # valid JSON, but not what the checksum says
    text = (store / INDEX).read_text(encoding="utf-8")
    (store / INDEX).write_text(text.replace('"A0001"', '"Z0001"'), encoding="utf-8")


def _missing_array(store: Path) -> None:
    (store / "val.npy").unlink()


def _swapped_array(store: Path) -> None:  # same byte count, another shape in the header
    path = store / "test.npy"
    images = np.load(path)
    np.save(path, images.reshape(images.shape[0], images.shape[2], images.shape[1], 3))


def _missing_checksum(store: Path) -> None:
    (store / CHECKSUM).unlink()


def _flipped_pixel(store: Path) -> None:  # one bit of one plate, the file's size and header intact
    path = store / "val.npy"
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_truncate_array, _bad_index, _edited_index, _missing_array, _swapped_array, _missing_checksum,
                                    _flipped_pixel])
def test_a_damaged_store_is_named_rebuilt_and_never_used(crops: Path, tmp_path: Path, damage):
    truth = plain(load_data(f"folder:{crops}", cache=False))
    store = Path(load_data(f"folder:{crops}", cache_dir=tmp_path).info["cache_dir"])
    damage(store)
    said: list[str] = []
    again = load_data(f"folder:{crops}", cache_dir=tmp_path, report=said.append)
    assert again.info["cache"] == "built" and plain(again) == truth
    assert len(said) == 1 and "corrupt" in said[0] and str(store) in said[0] and "\n" not in said[0]
    assert load_data(f"folder:{crops}", cache_dir=tmp_path).info["cache"] == "hit"


def test_an_unwritable_cache_falls_back_to_the_decoded_plates(crops: Path, tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be", encoding="utf-8")
    said: list[str] = []
    splits = load_data(f"folder:{crops}", cache_dir=blocker / "cache", report=said.append)
    assert splits.info["cache"] == "off" and plain(splits) == plain(load_data(f"folder:{crops}", cache=False))
    assert len(said) == 1 and "cannot be used" in said[0]


def test_decoding_over_processes_gives_the_serial_plates(ccpd_tree: Path):
    with ProcessMap(workers=2, chunk=3, parallel_min=0) as parallel:
        for limit in (None, {"train": 9, "val": 0}):
            assert plain(load_ccpd(ccpd_tree, hr_size=(96, 32), limit=limit, decode=parallel)) == \
                plain(load_ccpd(ccpd_tree, hr_size=(96, 32), limit=limit, decode=serial_map))
        with pytest.raises(DataError, match="does not exist") as serial_error:
            load_ccpd(ccpd_tree, strict=True)
        with pytest.raises(DataError) as parallel_error:
            load_ccpd(ccpd_tree, strict=True, decode=parallel)
    assert str(parallel_error.value) == str(serial_error.value)


def test_a_parallel_build_stores_what_a_serial_build_stores(ccpd_tree: Path, tmp_path: Path):
    def build(decode, folder: Path):
        load = lambda decode: load_ccpd(ccpd_tree, hr_size=(96, 32), decode=decode)  # noqa: E731
        return load_cached("ccpd", ccpd_tree, load, {"hr_size": [96, 32]}, cache_dir=folder, decode=decode)

    serial = build(serial_map, tmp_path / "serial")
    with ProcessMap(workers=2, chunk=5, parallel_min=0) as decode:
        parallel = build(decode, tmp_path / "parallel")
    assert plain(serial) == plain(parallel)
    a, b = Path(serial.info["cache_dir"]), Path(parallel.info["cache_dir"])
    for name in ("train.npy", "val.npy", "test.npy", INDEX):
        assert (a / name).read_bytes() == (b / name).read_bytes()


def _build_in_turn(folder: str, cache: str, marks: str, first: bool, queue) -> None:
    """One of two processes loading folder: data through the cache: the first decodes (and
    says so in ``marks``/started) and holds on until the second is about to load."""
    import time

    from lpsr.data.folder import load_folder

    marks_dir = Path(marks)

    def load(decode):
        (marks_dir / "decoding").touch()
        if first:
            deadline = time.monotonic() + 60
            while not (marks_dir / "second-ready").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(2.0)  # the second is at the lock by now
        return load_folder(folder, decode=decode)

    if not first:
        (marks_dir / "second-ready").touch()
    said: list[str] = []
    splits = load_cached("folder", Path(folder), load, {"test": "lock"}, cache_dir=cache, report=said.append, decode=serial_map)
    queue.put((first, splits.info["cache"], said, data_fingerprint(splits)))


def test_two_processes_build_a_store_once_the_second_waits_and_reads_it(crops: Path, tmp_path: Path):
    import multiprocessing
    import time

    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    marks = tmp_path / "marks"
    marks.mkdir()
    args = (str(crops), str(tmp_path / "cache"), str(marks))
    one = ctx.Process(target=_build_in_turn, args=(*args, True, queue))
    one.start()
    deadline = time.monotonic() + 60
    while not (marks / "decoding").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    (marks / "decoding").unlink()
    two = ctx.Process(target=_build_in_turn, args=(*args, False, queue))
    two.start()
    results = sorted((queue.get(timeout=120) for _ in range(2)), reverse=True)
    one.join(30), two.join(30)
    (_, built, said_first, fp_first), (_, hit, said_second, fp_second) = results
    assert (built, hit) == ("built", "hit")
    assert fp_first == fp_second == data_fingerprint(load_data(f"folder:{crops}", cache=False))
    assert said_first == [] and len(said_second) == 1 and "waiting for another process" in said_second[0]
    assert not (marks / "decoding").exists()  # the second process never decoded


@pytest.mark.slow
def test_bench_run_twice_gives_the_same_plates_the_second_from_the_cache(ccpd_tree: Path, tmp_path: Path, capsys):
    outs = []
    for k, isolation in enumerate(("process", "none")):  # the first: the method's process reads the planner's store
        code, out, err = run_main(capsys, "run", "--methods", "bicubic", "--scale", "4", "--profile", "test", "--ocr", "none",
                                  "--data", f"ccpd:{ccpd_tree}", "--limit", "3", "--cache-dir", str(tmp_path / "cache"),
                                  "--run-dir", str(tmp_path / f"run{k}"), "--leaderboard-dir", str(tmp_path / f"lb{k}"),
                                  "--isolation", isolation)
        assert code == 0, err
        outs.append(out)
    assert "(plate cache built)" in outs[0] and "(plate cache hit)" in outs[1]
    first, second = (tmp_path / f"run{k}" / "bicubic" / "plates.csv" for k in range(2))
    assert first.read_bytes() == second.read_bytes()
    code, out, err = run_main(capsys, "run", "--methods", "bicubic", "--scale", "4", "--profile", "test", "--ocr", "none",
                              "--data", f"ccpd:{ccpd_tree}", "--limit", "3", "--no-cache", "--isolation", "none",
                              "--run-dir", str(tmp_path / "run2"), "--leaderboard-dir", str(tmp_path / "lb2"))
    assert code == 0 and "(no plate cache)" in out
    assert (tmp_path / "run2" / "bicubic" / "plates.csv").read_bytes() == first.read_bytes()


def test_a_cold_build_spills_each_decoded_plate_to_disk_as_it_arrives(tmp_path: Path):
    """lpsr.data.spill: while the loader runs no decoded plate holds its pixels in memory;
    afterwards every record reads its own bytes from a read-only memory map."""
    from lpsr.data.parallel import serial_map
    from lpsr.data.record import PlateRecord
    from lpsr.data.spill import Spill

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (16, 48, 3), dtype=np.uint8) for _ in range(5)] + [rng.integers(0, 256, (8, 24, 3), dtype=np.uint8)]
    make = lambda k: PlateRecord(id=f"p{k}", hr=images[k].copy(), text="A1") if k < 5 else PlateRecord(id=f"p{k}", hr=None, text="A1", lr=images[k].copy())
    spill = Spill(tmp_path / "spill")
    seen = []
    for record in spill.mapper(serial_map)(make, list(range(6)), "decode"):
        pixels = record.hr if record.hr is not None else record.lr
        assert pixels.shape == images[len(seen)].shape and pixels.strides == (0, 0, 0)  # a stand-in: no bytes held
        seen.append(record)
    assert sorted(p.name for p in (tmp_path / "spill").iterdir()) == ["plates-16x48x3.raw", "plates-8x24x3.raw"]
    spill.attach()
    for record, image in zip(seen, images):
        pixels = record.hr if record.hr is not None else record.lr
        assert isinstance(pixels.base, np.memmap) or isinstance(pixels, np.memmap)
        assert np.array_equal(pixels, image) and not pixels.flags.writeable
    spill.close()
    assert not (tmp_path / "spill").exists()


def test_a_method_process_may_skip_the_byte_check_its_planner_made(crops: Path, tmp_path: Path):
    """verify_cache=False (bench/child.py: the planner verified, the child checks the
    fingerprint) opens a store without reading every byte; the planner's open does check."""
    store = Path(load_data(f"folder:{crops}", cache_dir=tmp_path).info["cache_dir"])
    _flipped_pixel(store)
    assert load_data(f"folder:{crops}", cache_dir=tmp_path, verify_cache=False).info["cache"] == "hit"
    said: list[str] = []
    assert load_data(f"folder:{crops}", cache_dir=tmp_path, report=said.append).info["cache"] == "built"
    assert "does not match its sha256" in said[0]
