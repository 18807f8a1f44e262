"""One entry point for every data source: ``load_data("synthetic" | "ccpd:PATH" | "folder:PATH")``."""
from __future__ import annotations

import hashlib
from pathlib import Path

from lpsr.data.ccpd import load_ccpd
from lpsr.data.folder import load_folder
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
) -> PlateSplits:
    """Load train/val/test plates named by ``spec``.

    ``seed`` drives the split of sources without split lists and the synthetic renderer
    (``synthetic:SEED`` overrides it).  ``limit`` = {split: N} caps each split (synthetic:
    the first N of that split, the same plates as without the cap).  ``crop`` applies to
    CCPD only.  ``info["spec"]`` records the spec.  ``scale``: plates whose source region
    is smaller than the LR size (``hr_size / scale``) are degenerate and skipped like
    unreadable files (``strict``: an error); without it only collapsed regions are.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise DataError(f"empty data spec; use one of: {SPEC_FORMS}")
    scheme, _, arg = spec.strip().partition(":")
    scheme = scheme.lower()
    caps = check_limit(limit)
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
            splits = load_ccpd(path, hr_size=hr_size, crop=crop, strict=strict, seed=seed, limit=limit, scale=scale)
        else:
            splits = load_folder(path, hr_size=hr_size, strict=strict, seed=seed, limit=limit, scale=scale)
    else:
        raise DataError(f"unknown data spec {spec!r}; use one of: {SPEC_FORMS}")
    if not (splits.train or splits.val or splits.test):
        names = ", ".join(splits.info.get("skipped", [])[:3])
        raise DataError(f"no plates could be loaded from {spec!r} ({splits.skipped} skipped{': ' + names if names else ''}); check the files")
    splits.info["spec"] = spec
    return splits


def data_fingerprint(splits: PlateSplits) -> str:
    """Short sha256 over every plate's split, id, text and image bytes (cache key for results);
    an LR-only plate's LR bytes, marked as such, with its track and frame."""
    digest = hashlib.sha256()
    for name in SPLIT_NAMES:
        for record in splits.split(name):
            if record.hr is None:  # LR-only data (its own header: never equal to an HR plate's)
                header = f"{name}\x00{record.id}\x00{record.text}\x00lr{record.lr.shape}\x00{record.meta.get('track')}\x00{record.meta.get('frame')}\x00"
            else:
                header = f"{name}\x00{record.id}\x00{record.text}\x00{record.hr.shape}\x00"
            digest.update(header.encode("utf-8"))
            digest.update((record.hr if record.hr is not None else record.lr).tobytes())
    return digest.hexdigest()[:16]
