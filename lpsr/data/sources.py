"""One entry point for every data source: ``load_data("synthetic" | "ccpd:PATH" | "folder:PATH")``."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from lpsr.data.ccpd import load_ccpd
from lpsr.data.fingerprint import compute_fingerprint, stored_fingerprint
from lpsr.data.folder import load_folder
from lpsr.data.images import check_hr_size
from lpsr.data.parallel import BarFactory, Mapper, serial_map
from lpsr.data.plate_cache import OFF, load_cached
from lpsr.data.record import HR_SIZE, DataError, PlateSplits
from lpsr.data.splits import SPLIT_NAMES, check_limit
from lpsr.data.synthetic import make_synthetic

SPEC_FORMS = "synthetic, synthetic:SEED, ccpd:PATH, folder:PATH"
SEED_MAX = 2**32 - 1


def load_data(
    spec: str,
    *,
    hr_size: tuple[int, int] = HR_SIZE,
    crop: str = "perspective",
    strict: bool = False,
    seed: int = 0,
    synthetic_sizes: tuple[int, int, int] = (400, 24, 64),
    limit: dict | None = None,
    scale: int | None = None,
    cache: bool = True,
    cache_dir: str | Path | None = None,
    report: Callable[[str], None] | None = None,
    make_bar: BarFactory | None = None,
    test_subsets: tuple[str, ...] | None = None,
    verify_cache: bool = True,
) -> PlateSplits:
    """Load train/val/test plates named by ``spec``.

    ``seed`` drives the split of sources without split lists and the synthetic renderer
    (``synthetic:SEED`` overrides it).  ``limit`` = {split: N} caps each split (synthetic:
    the first N of that split, the same plates as without the cap).  ``crop`` applies to
    CCPD only.  ``info["spec"]`` records the spec.  ``scale``: plates whose source region
    is smaller than the LR size (``hr_size / scale``) are degenerate and skipped like
    unreadable files (``strict``: an error); without it only collapsed regions are.

    ``ccpd:`` and ``folder:`` go through the on-disk plate cache (:mod:`lpsr.data.plate_cache`;
    ``cache=False``: decoded here, as before; ``cache_dir``: where, else its default), which
    reports through ``report`` and shows ``make_bar`` progress bars.  ``info["cache"]`` says
    ``hit``, ``built`` or ``off``; ``info["load_seconds"]`` how long the load took.
    ``test_subsets``: only the test plates of these CCPD subsets (``ccpd:`` only).
    ``verify_cache``: check a cached store's bytes against their sha256 (a few seconds per GB).
    """
    started = time.perf_counter()
    if not isinstance(spec, str) or not spec.strip():
        raise DataError(f"empty data spec; use one of: {SPEC_FORMS}")
    scheme, _, arg = spec.strip().partition(":")
    scheme = scheme.lower()
    caps = check_limit(limit)
    if test_subsets is not None and scheme != "ccpd":
        raise DataError(f"--test-subsets: {spec!r} has no CCPD subsets; it applies to ccpd:PATH data with ccpd_<subset>/ folders")
    if scheme == "synthetic":
        if arg:
            try:
                seed = int(arg)
            except ValueError:
                raise DataError(f"synthetic seed {arg!r} in data spec {spec!r} is not an integer; use synthetic:SEED, e.g. synthetic:1") from None
            if not 0 <= seed <= SEED_MAX:
                raise DataError(f"synthetic seed {arg} in data spec {spec!r} is out of range; use an integer from 0 to {SEED_MAX}")
        if len(synthetic_sizes) != 3:
            raise DataError(f"synthetic_sizes must be (train, val, test), got {synthetic_sizes!r}")
        sizes = [min(n, caps[name]) if name in caps else n for name, n in zip(SPLIT_NAMES, synthetic_sizes)]
        splits = make_synthetic(*sizes, seed=seed, hr_size=hr_size)
    elif scheme in ("ccpd", "folder"):
        if not arg:
            raise DataError(f"data spec {spec!r} needs a path: {scheme}:PATH")
        path = Path(arg).expanduser()
        if scheme == "ccpd":
            def load(decode: Mapper = serial_map) -> PlateSplits:
                return load_ccpd(path, hr_size=hr_size, crop=crop, strict=strict, seed=seed, limit=limit, scale=scale, decode=decode,
                                 test_subsets=test_subsets)
        else:
            def load(decode: Mapper = serial_map) -> PlateSplits:
                return load_folder(path, hr_size=hr_size, strict=strict, seed=seed, limit=limit, scale=scale, decode=decode)
        if cache and path.is_dir():  # a missing folder: the loader's own error
            params = {"hr_size": list(check_hr_size(hr_size)), "crop": crop if scheme == "ccpd" else None, "scale": scale, "seed": seed,
                      "limit": caps or None, "strict": strict,
                      **({"test_subsets": list(test_subsets)} if test_subsets is not None else {})}
            splits = load_cached(scheme, path, load, params, cache_dir=cache_dir, report=report, make_bar=make_bar, verify=verify_cache)
        else:
            splits = load()
            splits.info["cache"] = OFF
    else:
        raise DataError(f"unknown data spec {spec!r}; use one of: {SPEC_FORMS}")
    if not (splits.train or splits.val or splits.test):
        names = ", ".join(splits.info.get("skipped", [])[:3])
        raise DataError(f"no plates could be loaded from {spec!r} ({splits.skipped} skipped{': ' + names if names else ''}); check the files")
    splits.info["spec"] = spec
    splits.info["load_seconds"] = round(time.perf_counter() - started, 3)
    return splits


def data_fingerprint(splits: PlateSplits) -> str:
    """Short sha256 over every plate's split, id, text and image bytes (cache key for results);
    the plate cache's stored value when the splits are the ones it loaded."""
    return stored_fingerprint(splits) or compute_fingerprint(splits)
