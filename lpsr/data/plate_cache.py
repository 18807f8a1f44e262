"""The shared on-disk plate cache: a ``ccpd:`` or ``folder:`` source decoded and cropped once.

The first load decodes every photo over the cores (:class:`lpsr.data.parallel.ProcessMap`,
with a progress bar), spilling each decoded plate to disk as it arrives (:mod:`lpsr.data.spill`:
no split is held in memory), and writes a *store*: per split one uint8 ``<split>.npy`` array
[N, H, W, 3], plus ``index.json`` (ids, texts, sources, per-plate ``meta``, the skipped
files, ``info``, and the data fingerprint, computed once here) and ``checksum.json`` (the
index's sha256 and each array's shape, size and sha256: a changed byte of a plate is a corrupt
store; the bytes are checked at each open by a run's planning process, not by the method
processes it starts, which check the fingerprint it planned with).  Later loads -- the next run, and each
method's process of this one -- open the arrays with ``np.load(mmap_mode="r")``: every
plate's ``hr`` is a view into the memory-mapped file, so no plate is copied, all processes
share the same page-cache pages, and opening takes about as long as reading the index.

Memory-mapped ``.npy`` rather than LMDB (BasicSR's choice): numpy reads and writes it with
no extra dependency, a plate is a zero-copy slice of one array (LMDB hands out bytes to
decode or copy), and the OS page cache is the one shared copy for every process.

A store lives in ``<cache dir>/<source>-<folder>-<key>/``.  The key is a sha256 over what
determines its bytes (:func:`cache_key`): source kind, resolved root, every file below it
with its size, mtime_ns and inode, the contents of the split lists / labels.csv, hr_size,
crop, scale, seed, limit, strict, the decoded-size limit, :data:`CROPPER_VERSION` and
OpenCV's version.  Different inputs give a different folder (a stale store is never even
looked at).  A store is built in a temporary folder, fsynced and renamed into place, under
a lock (one builder per key; others wait and then read it).  A store that does not check
out -- missing file, bad JSON, checksum or shape mismatch, truncated array -- is named in a
one-line warning, removed and rebuilt, never used.  If the cache cannot be written (full
disk, read-only home) the plates are used as decoded, with a warning.

The cache folder is a setting: :func:`lpsr.data.cache_dir.cache_root` (``--cache-dir``, else
``$LPSR_CACHE_DIR``, else ``~/.cache/lpsr-bench/plates``).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from lpsr.data.cache_dir import cache_root
from lpsr.data.fingerprint import compute_fingerprint, remember_fingerprint
from lpsr.data.images import MAX_PIXELS_ENV, max_image_pixels
from lpsr.data.parallel import BarFactory, Mapper, ProcessMap, terminal_bar
from lpsr.data.record import PlateRecord, PlateSplits
from lpsr.data.spill import Spill
from lpsr.data.splits import SPLIT_NAMES
from lpsr.io import TEMP_SUFFIX, default_dir_mode, fsync_dir, sha256_file

#: bump whenever a loader makes other bytes (or ids, texts, meta, skips) from the same files:
#: the cropper, the resize, decoding, the split rule.  Every older store is then left unused.
CROPPER_VERSION = 2  # 2: CCPD subsets (meta, ccpd_np left out, per-subset lists, split folders)
#: the store's own layout (files and index fields)
STORE_FORMAT = 3  # 2: LR-only data (rows hold LR crops, index "lr_only"); 3: each array's sha256
INDEX, CHECKSUM = "index.json", "checksum.json"
#: ``info["cache"]``: a store was read, written, or not used (disabled, or not writable)
HIT, BUILT, OFF = "hit", "built", "off"

Reporter = Callable[[str], None]


class CorruptStore(Exception):
    """A store that must not be used (the message says why)."""


# ----------------------------------------------------------------------------- the key
def _listing(root: Path, skip: Path | None) -> tuple[str, int]:
    """sha256 over every file below ``root`` (sorted relative path, size, mtime_ns, inode)."""
    rows = []
    if skip is not None and root not in skip.parents:
        skip = None  # the cache is not inside the data: nothing to leave out
    seen: set[tuple[int, int]] = set()
    for folder, dirs, files in os.walk(root, followlinks=True):  # folder: data may link a subfolder in
        here = Path(folder)
        try:
            st = here.stat()
            where = (st.st_dev, st.st_ino)
        except OSError:
            where = None
        # a cache kept inside the data folder would change the key it is stored under; a
        # folder reached twice (a link loop) is listed once
        if here == skip or where in seen:
            dirs[:] = []
            continue
        if where is not None:
            seen.add(where)
        dirs.sort()
        for name in files:
            path = here / name
            try:
                st = path.stat()
            except OSError:  # a dangling link: the loader skips or names it; its name still counts
                rows.append(f"{path.relative_to(root).as_posix()}\x00-")
                continue
            rows.append(f"{path.relative_to(root).as_posix()}\x00{st.st_size}\x00{st.st_mtime_ns}\x00{st.st_ino}")
    rows.sort()
    return hashlib.sha256("\n".join(rows).encode("utf-8", "surrogateescape")).hexdigest(), len(rows)


def _control_files(root: Path) -> dict[str, str]:
    """sha256 of the files that say which images go where: CCPD's split lists, labels.csv."""
    out = {}
    for path in sorted([*(root / "splits").glob("*.txt"), root / "labels.csv"]):
        if path.is_file():
            try:
                out[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
            except OSError:
                out[path.relative_to(root).as_posix()] = "unreadable"
    return out


def cache_key(source: str, root: Path, params: dict[str, Any], cache_dir: Path | None = None) -> tuple[str, dict]:
    """(key, the parts it hashes) for ``source`` (ccpd | folder) at ``root`` loaded with ``params``."""
    import cv2

    resolved = root.resolve()
    skip = cache_dir.resolve() if cache_dir is not None else None
    files, n_files = _listing(resolved, skip)
    parts = {
        "store_format": STORE_FORMAT, "cropper_version": CROPPER_VERSION, "opencv": cv2.__version__,
        "source": source, "root": str(resolved), "files_sha256": files, "n_files": n_files,
        "control_files": _control_files(resolved), MAX_PIXELS_ENV: max_image_pixels(), **params,
    }
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest(), parts


def store_dir(root_dir: Path, source: str, data_root: Path, key: str) -> Path:
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", data_root.resolve().name)[:40] or "data"
    return root_dir / f"{source}-{name}-{key[:32]}"


# ------------------------------------------------------------------- JSON with tuples
_TUPLE = "__tuple__"


def _encode(obj: Any) -> Any:
    """JSON-able copy of ``obj`` that keeps tuples tuples (a CCPD plate's corners are tuples)."""
    if isinstance(obj, tuple):
        return {_TUPLE: [_encode(v) for v in obj]}
    if isinstance(obj, list):
        return [_encode(v) for v in obj]
    if isinstance(obj, dict):
        if not all(isinstance(k, str) for k in obj):
            raise TypeError("only str keys can be stored")
        return {k: _encode(v) for k, v in obj.items()}
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    raise TypeError(f"a {type(obj).__name__} cannot be stored in the plate cache index")


def _decode_hook(d: dict) -> Any:
    return tuple(d[_TUPLE]) if len(d) == 1 and _TUPLE in d else d


# ------------------------------------------------------------------------ read a store
def _checksum(index_bytes: bytes, arrays: dict[str, dict]) -> str:
    text = hashlib.sha256(index_bytes).hexdigest() + json.dumps(arrays, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def open_store(folder: Path, key: str, verify: bool = True) -> tuple[PlateSplits, str]:
    """The plates of a store (memory-mapped) and their stored fingerprint; CorruptStore if
    anything does not check out.  ``verify``: also every array's bytes against its sha256 (a
    flipped pixel is a corrupt store); a process that opens a store its planner verified
    moments ago (a method's own process) may skip it."""
    try:
        check = json.loads((folder / CHECKSUM).read_text(encoding="utf-8"))
        index_bytes = (folder / INDEX).read_bytes()
    except (OSError, ValueError) as exc:
        raise CorruptStore(f"{CHECKSUM} or {INDEX} is missing or unreadable ({exc.__class__.__name__})") from None
    if not isinstance(check, dict) or check.get("key") != key or not isinstance(check.get("arrays"), dict):
        raise CorruptStore(f"{CHECKSUM} does not describe this store")
    arrays = check["arrays"]
    if check.get("checksum") != _checksum(index_bytes, arrays):
        raise CorruptStore(f"{INDEX} does not match its checksum")
    try:
        index = json.loads(index_bytes.decode("utf-8"), object_hook=_decode_hook)
    except ValueError:
        raise CorruptStore(f"{INDEX} is not valid JSON") from None
    out: dict[str, list[PlateRecord]] = {}
    try:
        for name in SPLIT_NAMES:
            entry, meta = index["splits"][name], arrays[name]
            path = folder / f"{name}.npy"
            if path.stat().st_size != meta["bytes"]:
                raise CorruptStore(f"{path.name} has {path.stat().st_size} bytes, {meta['bytes']} expected (truncated?)")
            if verify and sha256_file(path) != meta.get("sha256"):
                raise CorruptStore(f"{path.name} does not match its sha256 (its bytes changed since the store was written)")
            # a plain ndarray view of the map: each plate's hr a zero-copy slice of the file
            images = np.asarray(np.load(path, mmap_mode="r", allow_pickle=False))
            n = len(entry["ids"])
            if images.dtype != np.uint8 or images.ndim != 4 or list(images.shape) != meta["shape"] or images.shape[0] != n:
                raise CorruptStore(f"{path.name} holds {images.dtype} {images.shape}, the index lists {n} plates of {meta['shape']}")
            lr_only = bool(index.get("lr_only", False))  # the rows hold LR crops (LR-only data), not HR plates
            out[name] = [PlateRecord(id=i, hr=None if lr_only else images[k], text=t, source=s, meta=m, lr=images[k] if lr_only else None)
                         for k, (i, t, s, m) in enumerate(zip(entry["ids"], entry["texts"], entry["sources"], entry["metas"], strict=True))]
        splits = PlateSplits(name=index["name"], train=out["train"], val=out["val"], test=out["test"],
                             skipped=int(index["skipped"]), info=dict(index["info"]))
        fingerprint = str(index["fingerprint"])
    except CorruptStore:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:  # missing array, bad header, bad index fields
        raise CorruptStore(f"{exc.__class__.__name__}: {exc}") from None
    return splits, fingerprint


# ----------------------------------------------------------------------- write a store
def _pixels(record: PlateRecord) -> np.ndarray:
    """What a record's array row holds: its HR plate, or its LR crop for LR-only data."""
    return record.hr if record.hr is not None else record.lr


def _write_array(path: Path, records: list[PlateRecord], shape: tuple[int, int, int]) -> None:
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(len(records), *shape))
    for k, record in enumerate(records):
        out[k] = _pixels(record)
    out.flush()
    del out


def _fsync(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def write_store(folder: Path, key: str, splits: PlateSplits, fingerprint: str, key_parts: dict | None = None) -> None:
    """Write ``splits`` as the store ``folder`` (built beside it, then renamed into place);
    ``key_parts`` (what the key hashes) is kept in the index, to tell why a store was not used."""
    shapes = {_pixels(r).shape for name in SPLIT_NAMES for r in splits.split(name)}
    if len(shapes) != 1:
        raise TypeError(f"plates of {len(shapes)} different sizes cannot share one array")
    (shape,) = shapes
    index = {
        "store_format": STORE_FORMAT, "key": key, "key_parts": key_parts or {}, "name": splits.name, "skipped": splits.skipped,
        "info": _encode(splits.info), "fingerprint": fingerprint, "lr_only": splits.lr_only,
        "splits": {name: {"ids": [r.id for r in splits.split(name)], "texts": [r.text for r in splits.split(name)],
                          "sources": [r.source for r in splits.split(name)],
                          "metas": [_encode(r.meta) for r in splits.split(name)]} for name in SPLIT_NAMES},
    }
    index_bytes = json.dumps(index, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=TEMP_SUFFIX, dir=folder.parent))
    try:
        os.chmod(tmp, default_dir_mode())
        arrays = {}
        for name in SPLIT_NAMES:
            path = tmp / f"{name}.npy"
            _write_array(path, splits.split(name), shape)
            _fsync(path)
            arrays[name] = {"shape": [len(splits.split(name)), *shape], "bytes": path.stat().st_size, "sha256": sha256_file(path)}
        (tmp / INDEX).write_bytes(index_bytes)
        check = {"store_format": STORE_FORMAT, "key": key, "arrays": arrays, "checksum": _checksum(index_bytes, arrays)}
        (tmp / CHECKSUM).write_text(json.dumps(check, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        for name in (INDEX, CHECKSUM):
            _fsync(tmp / name)
        fsync_dir(tmp)
        os.rename(tmp, folder)
        fsync_dir(folder.parent)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _remove(folder: Path) -> None:
    """Move a bad store aside (one rename) and delete it."""
    if not folder.exists():
        return
    aside = folder.with_name(f".{folder.name}.bad-{os.getpid()}{TEMP_SUFFIX}")
    os.rename(folder, aside)
    shutil.rmtree(aside, ignore_errors=True)


def _remove_stray_builds(folder: Path) -> None:
    """Temporary folders a killed build of this store left (only called under its lock)."""
    for stray in folder.parent.glob(f".{folder.name}.*{TEMP_SUFFIX}"):
        shutil.rmtree(stray, ignore_errors=True)


# ----------------------------------------------------------------------------- loading
def _finish(splits: PlateSplits, fingerprint: str, state: str, folder: Path | None) -> PlateSplits:
    splits.info["cache"] = state
    if folder is not None:
        splits.info["cache_dir"] = str(folder)
    remember_fingerprint(splits, fingerprint)
    return splits


def load_cached(
    source: str,
    root: Path,
    load: Callable[[Mapper], PlateSplits],
    params: dict[str, Any],
    *,
    cache_dir: str | Path | None = None,
    report: Reporter | None = None,
    make_bar: BarFactory | None = None,
    decode: Mapper | None = None,
    verify: bool = True,
) -> PlateSplits:
    """The plates ``load(decode)`` gives, from the store for (source, root, params) when one
    checks out, else decoded (``decode``: over every core, :class:`ProcessMap`) and stored.
    ``report``: one-line warnings (default: stderr); ``make_bar``: the decoding's progress
    bars (default: a terminal bar); ``verify``: check every array's bytes when a store is
    opened (:func:`open_store`)."""
    from filelock import FileLock, Timeout  # the lock waits for another builder (lpsr.lock.RunLock refuses instead)

    say = report or _stderr
    base = cache_root(cache_dir)
    key, parts = cache_key(source, root, params, base)
    folder = store_dir(base, source, root, key)
    if folder.is_dir():
        try:
            splits, fingerprint = open_store(folder, key, verify)
            return _finish(splits, fingerprint, HIT, folder)
        except CorruptStore:
            pass  # looked at again under the lock, and named there
    try:
        base.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(base / f".{folder.name}.lock"))
        try:
            lock.acquire(timeout=1)
        except Timeout:
            say(f"plate cache: waiting for another process to finish building {folder}")
            lock.acquire()
    except OSError as exc:
        say(f"plate cache {base} cannot be used ({exc.strerror or exc}); decoding the plates without it")
        splits = _decode(load, decode, make_bar)
        return _finish(splits, compute_fingerprint(splits), OFF, None)
    try:
        if folder.exists():
            try:
                splits, fingerprint = open_store(folder, key, verify)
                return _finish(splits, fingerprint, HIT, folder)
            except CorruptStore as exc:
                say(f"plate cache {folder} is corrupt ({exc}); rebuilding it")
                _remove(folder)
        _remove_stray_builds(folder)
        spill = _spill_for(folder, say)
        try:
            splits = _decode(load, decode, make_bar, spill)
            fingerprint = compute_fingerprint(splits)
            if not (splits.train or splits.val or splits.test):
                return _finish(splits, fingerprint, OFF, None)  # nothing to keep (load_data names the problem)
            try:
                write_store(folder, key, splits, fingerprint, parts)
            except (OSError, TypeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                say(f"plate cache {folder} could not be written ({reason}); using the plates as decoded")
                return _finish(splits, fingerprint, OFF, None)
            stored, fingerprint = open_store(folder, key, verify=False)  # just written; the memory-mapped plates: the decoded copies are freed
            return _finish(stored, fingerprint, BUILT, folder)
        finally:
            if spill is not None:
                spill.close()
    finally:
        lock.release()


def _spill_for(folder: Path, say: Reporter) -> Spill | None:
    """Where a cold build puts decoded pixels until its store is written (beside the store,
    named like a stray build so a killed one is cleaned up); None if it cannot be made."""
    try:
        return Spill(folder.with_name(f".{folder.name}.spill-{os.getpid()}{TEMP_SUFFIX}"))
    except OSError as exc:
        say(f"plate cache: no room to spill decoded plates beside {folder} ({exc.strerror or exc}); keeping them in memory")
        return None


def _decode(load: Callable[[Mapper], PlateSplits], decode: Mapper | None, make_bar: BarFactory | None,
            spill: Spill | None = None) -> PlateSplits:
    """The loader over ``decode`` (default: every core); with ``spill``, each decoded plate's
    pixels go to disk as they come and the records are mapped onto them afterwards."""
    def run(mapper: Mapper) -> PlateSplits:
        if spill is None:
            return load(mapper)
        splits = load(spill.mapper(mapper))
        spill.attach()
        return splits

    if decode is not None:
        return run(decode)
    with ProcessMap(make_bar=make_bar or terminal_bar) as over_the_cores:
        return run(over_the_cores)


def _stderr(message: str) -> None:
    import sys

    print(message, file=sys.stderr)
