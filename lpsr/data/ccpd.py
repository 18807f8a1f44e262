"""CCPD (Chinese City Parking Dataset): annotated file names -> rectified HR plates.

A CCPD file name carries the whole annotation in seven ``-``-separated fields (Xu et al.,
ECCV 2018)::

    025-95_113-154&383_386&473-386&473_177&454_154&383_363&402-0_0_22_27_27_33_16-37-15.jpg
    area  tilt  bbox x1&y1_x2&y2  corners rb_lb_lt_rt        char indices      bright blur

Fields are parsed by position only: some published files have a longer or shorter first
field and tilt values near 0 rather than near 90.  Blue plates have 7 indices, green
new-energy plates 8.  The plate is cut out by its four corners with a perspective warp to
a canonical size (default 192x64, W x H), or with ``crop="bbox"`` by its axis-aligned box.

CCPD's own layout (CCPD2019: ``ccpd_base/``, ``ccpd_blur/``, ... and ``splits/*.txt``;
CCPD2020: ``ccpd_green/{train,val,test}/``) is understood by :func:`load_ccpd`: a plate's
*subset* is the name of its top folder without ``ccpd_`` (``meta["subset"]``), ``ccpd_np``
(photos without a plate) is left out and counted, and the per-subset lists
``splits/ccpd_<subset>.txt`` are test lists.  A folder of photos without ``ccpd_`` folders
(the sample) has no subsets and loads as before.

No library parses CCPD names, so the parser is written here by hand.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from lpsr.data.images import check_hr_size, check_source_region, read_rgb, resize_to
from lpsr.data.parallel import Mapper, serial_map
from lpsr.data.record import HR_SIZE, DataError, PlateRecord, PlateSplits
from lpsr.data.splits import SPLIT_NAMES, check_limit, split_by_plate

# Index tables from the CCPD README; "O" marks "no character".
PROVINCES = tuple("皖沪津渝冀晋蒙辽吉黑苏浙京闽赣鲁豫鄂湘粤桂琼川贵云藏陕甘青宁新警学") + ("O",)
ALPHABETS = tuple("ABCDEFGHJKLMNPQRSTUVWXYZ") + ("O",)
ADS = tuple("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") + ("O",)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
CROP_MODES = ("perspective", "bbox")
#: a CCPD subset folder is ``ccpd_<subset>`` at the top of the tree; ``np`` holds photos without a plate
SUBSET_PREFIX, NO_PLATE_SUBSET = "ccpd_", "np"
#: the subsets in the order CCPD's papers report them (others follow, sorted)
SUBSET_ORDER = ("base", "db", "blur", "fn", "rotate", "tilt", "weather", "challenge", "green")

Point = tuple[int, int]


@dataclass(frozen=True)
class CcpdAnnotation:
    """Everything a CCPD file name says about its plate."""

    filename: str
    area: str  # ratio of plate area to image area, kept as written (its digits vary)
    tilt: tuple[int, int]  # horizontal, vertical degrees
    bbox: tuple[Point, Point]  # left-top, right-bottom
    corners: tuple[Point, Point, Point, Point]  # right-bottom, left-bottom, left-top, right-top
    indices: tuple[int, ...]
    brightness: int
    blurriness: int

    @property
    def text(self) -> str:
        return decode_plate(self.indices)

    @property
    def color(self) -> str:
        """'blue' (7 characters) or 'green' (8, new-energy plates)."""
        return "green" if len(self.indices) == 8 else "blue"


def decode_plate(indices: Sequence[int]) -> str:
    """Character indices -> plate string (province, letter, then ADS); "O" slots dropped."""
    if len(indices) not in (7, 8):
        raise DataError(f"a CCPD plate has 7 or 8 characters, got {len(indices)} indices")
    tables = [PROVINCES, ALPHABETS] + [ADS] * (len(indices) - 2)
    chars = []
    for pos, (table, idx) in enumerate(zip(tables, indices)):
        if not 0 <= idx < len(table):
            raise DataError(f"character index {idx} at position {pos + 1} is outside its table (0..{len(table) - 1})")
        if table[idx] != "O":
            chars.append(table[idx])
    return "".join(chars)


def _ints(text: str, sep: str, count: int | None, what: str) -> tuple[int, ...]:
    parts = text.split(sep)
    if count is not None and len(parts) != count:
        raise ValueError(f"{what} needs {count} numbers separated by {sep!r}, got {text!r}")
    return tuple(int(p) for p in parts)


def _points(text: str, count: int, what: str) -> tuple[Point, ...]:
    pairs = text.split("_")
    if len(pairs) != count:
        raise ValueError(f"{what} needs {count} x&y points, got {text!r}")
    return tuple(_ints(p, "&", 2, what) for p in pairs)  # type: ignore[misc]


def parse_ccpd_name(name: str | Path) -> CcpdAnnotation:
    """Parse a CCPD file name (path or bare name); DataError naming the file if it does not parse."""
    filename = Path(name).name
    fields = Path(filename).stem.split("-")
    try:
        if len(fields) != 7:
            raise ValueError(f"expected 7 '-'-separated fields, found {len(fields)}")
        area, tilt, bbox, corners, chars, bright, blur = fields
        if not area.isdigit():
            raise ValueError(f"area field {area!r} is not a number")
        ann = CcpdAnnotation(
            filename=filename,
            area=area,
            tilt=_ints(tilt, "_", 2, "tilt"),  # type: ignore[arg-type]
            bbox=_points(bbox, 2, "bbox"),  # type: ignore[arg-type]
            corners=_points(corners, 4, "corners"),  # type: ignore[arg-type]
            indices=_ints(chars, "_", None, "characters"),
            brightness=int(bright),
            blurriness=int(blur),
        )
        ann.text  # validates the indices
    except (ValueError, DataError) as exc:
        raise DataError(f"not a CCPD file name: {filename} ({exc})") from None
    return ann


def _check_crop(crop: str) -> None:
    if crop not in CROP_MODES:
        raise DataError(f"unknown crop mode {crop!r}; use one of: {', '.join(CROP_MODES)}")


def rectify_corners(image: np.ndarray, corners: Sequence[Sequence[float]], size: tuple[int, int] = HR_SIZE) -> np.ndarray:
    """Perspective-warp the quadrilateral ``corners`` (rb, lb, lt, rt; x, y) to a WxH rectangle.

    Corner coordinates are pixel centres, so the corner pixels land on the output's corner
    pixels.  Bicubic interpolation, replicated border for corners at the image edge.
    """
    w, h = size
    src = np.asarray(corners, dtype=np.float32).reshape(4, 2)
    dst = np.array([[w - 1, h - 1], [0, h - 1], [0, 0], [w - 1, 0]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(src, dst)
    return cv2.warpPerspective(image, matrix, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)


def crop_bbox(image: np.ndarray, bbox: Sequence[Sequence[int]], size: tuple[int, int] = HR_SIZE) -> np.ndarray:
    """Cut the axis-aligned box (left-top, right-bottom, inclusive) and resize it to ``size``."""
    (x1, y1), (x2, y2) = bbox
    ih, iw = image.shape[:2]
    x1, x2 = sorted((max(0, min(int(x1), iw - 1)), max(0, min(int(x2), iw - 1))))
    y1, y2 = sorted((max(0, min(int(y1), ih - 1)), max(0, min(int(y2), ih - 1))))
    return resize_to(image[y1 : y2 + 1, x1 : x2 + 1], size)


def crop_plate(image: np.ndarray, ann: CcpdAnnotation, size: tuple[int, int] = HR_SIZE, crop: str = "perspective") -> np.ndarray:
    _check_crop(crop)
    if crop == "bbox":
        return crop_bbox(image, ann.bbox, size)
    return rectify_corners(image, ann.corners, size)


def source_region_size(ann: CcpdAnnotation, crop: str = "perspective") -> tuple[float, float]:
    """(width, height) in source pixels of the region a plate is cut from: the longer
    opposite sides of the corner quadrilateral, or the inclusive bbox."""
    if crop == "bbox":
        (x1, y1), (x2, y2) = ann.bbox
        return abs(x2 - x1) + 1.0, abs(y2 - y1) + 1.0
    rb, lb, lt, rt = (np.asarray(p, dtype=np.float64) for p in ann.corners)
    width = max(np.linalg.norm(rt - lt), np.linalg.norm(rb - lb))
    height = max(np.linalg.norm(lb - lt), np.linalg.norm(rb - rt))
    quad = np.array([rb, lb, lt, rt])
    x, y = quad[:, 0], quad[:, 1]
    area = 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))
    if area < 1.0:  # corners on one point or on one line
        return 0.0, 0.0
    return float(width), float(height)


def load_ccpd_image(path: str | Path, size: tuple[int, int] = HR_SIZE, crop: str = "perspective", scale: int | None = None) -> PlateRecord:
    """One CCPD photo -> PlateRecord with its rectified plate; DataError naming the file on failure
    (also for a degenerate plate: see :func:`lpsr.data.images.check_source_region`)."""
    path = Path(path)
    ann = parse_ccpd_name(path.name)
    _check_crop(crop)
    region_w, region_h = source_region_size(ann, crop)
    check_source_region(path.name, region_w, region_h, check_hr_size(size), scale)
    image = read_rgb(path)
    ih, iw = image.shape[:2]
    xs = [x for x, _ in ann.corners] + [p[0] for p in ann.bbox]
    ys = [y for _, y in ann.corners] + [p[1] for p in ann.bbox]
    if max(xs) >= iw + 2 or max(ys) >= ih + 2 or min(xs + ys) < -2:
        raise DataError(f"plate corners of {path.name} lie outside its {iw}x{ih} image; the file name does not match the image")
    hr = crop_plate(image, ann, size, crop)
    meta = {
        "path": str(path),
        "color": ann.color,
        "area": ann.area,
        "tilt": ann.tilt,
        "bbox": ann.bbox,
        "corners": ann.corners,
        "brightness": ann.brightness,
        "blurriness": ann.blurriness,
        "crop": crop,
    }
    return PlateRecord(id=path.name, hr=hr, text=ann.text, source="ccpd", meta=meta)


def subset_of(root: Path, path: Path) -> str | None:
    """The CCPD subset of a photo below ``root``: its top folder's name without ``ccpd_``
    (``ccpd_blur/x.jpg`` -> ``blur``); None outside a subset folder."""
    try:
        top = path.relative_to(root).parts[0]
    except (ValueError, IndexError):
        return None
    if top.startswith(SUBSET_PREFIX) and len(top) > len(SUBSET_PREFIX) and top != path.relative_to(root).as_posix():
        return top[len(SUBSET_PREFIX):]
    return None


def subset_sort_key(name: str) -> tuple[int, str]:
    """CCPD's reporting order, then any other subset by name."""
    return (SUBSET_ORDER.index(name), "") if name in SUBSET_ORDER else (len(SUBSET_ORDER), name)


def _split_folder(root: Path, path: Path) -> str | None:
    """``train``/``val``/``test`` when a folder on the photo's path is named so (CCPD2020's
    ``ccpd_green/test/``), else None."""
    parents = path.relative_to(root).parts[:-1]
    return next((part for part in reversed(parents) if part in SPLIT_NAMES), None)


def _load_candidate(p: Path, split: str, size: tuple[int, int], crop: str, scale: int | None, root: Path) -> PlateRecord:
    """One listed or found photo (a module-level function: decode workers are handed it),
    with its CCPD subset in ``meta["subset"]`` when it lies in a subset folder."""
    if not p.is_file():
        raise DataError(f"image {p} listed in splits/{split}.txt does not exist; fix the split file or the folder")
    record = load_ccpd_image(p, size, crop, scale)
    if (subset := subset_of(root, p)) is not None:
        record.meta["subset"] = subset
    return record


def _read_split_file(path: Path) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read split file {path}: {exc}") from None
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def _split_lists(split_dir: Path) -> list[tuple[str, Path]]:
    """(split, list file): ``splits/{train,val,test}.txt``, then CCPD2019's per-subset test
    lists ``splits/ccpd_<subset>.txt`` (sorted), which are test lists."""
    lists = [(name, split_dir / f"{name}.txt") for name in SPLIT_NAMES if (split_dir / f"{name}.txt").is_file()]
    if split_dir.is_dir():
        lists += [("test", p) for p in sorted(split_dir.glob(f"{SUBSET_PREFIX}*.txt")) if p.is_file()]
    return lists


def _listed_splits(root: Path) -> tuple[dict[str, list[Path]], dict, set[str | None]]:
    """Paths from the split lists (:func:`_split_lists`), deduplicated by file name, and the
    subsets any list names a photo of (before deduplication).

    CCPD's per-subset lists may name one file twice (also under two subset folders): the
    first listing wins within a split, and a file listed in two splits is kept only in the
    later of train < val < test, so nothing evaluated is also trained on.
    """
    split_dir = root / "splits"
    files: dict[str, list[Path]] = {name: [] for name in SPLIT_NAMES}
    seen: dict[str, str] = {}
    info = {"split_files": [], "duplicates_dropped": 0, "cross_split_dropped": 0}
    named: set[str | None] = set()
    for name, path in _split_lists(split_dir):
        info["split_files"].append(f"splits/{path.name}")
        for rel in _read_split_file(path):
            named.add(subset_of(root, root / rel))
            fname = Path(rel).name
            if fname in seen:
                if seen[fname] == name:
                    info["duplicates_dropped"] += 1
                    continue
                earlier = seen[fname]
                files[earlier] = [p for p in files[earlier] if p.name != fname]
                info["cross_split_dropped"] += 1
            seen[fname] = name
            files[name].append(root / rel)
    return files, info, named


def _find_images(root: Path) -> list[Path]:
    """Every image under ``root`` (recursively), one per file name, sorted by relative path."""
    found = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    unique: dict[str, Path] = {}
    for p in found:
        unique.setdefault(p.name, p)
    return list(unique.values())


def _unlisted_subsets(root: Path, named: set[str | None], listed: dict[str, list[Path]]) -> dict[str, list[Path]]:
    """Subset folders (``ccpd_<subset>/``, not ``np``) of which no split list names a file:
    subset -> its photos (they are test plates: CCPD ships some subsets without a list),
    without a file name a list already holds (one file name, one split)."""
    taken = {p.name for paths in listed.values() for p in paths}
    out = {}
    for folder in sorted(root.glob(f"{SUBSET_PREFIX}*")):
        subset = folder.name[len(SUBSET_PREFIX):]
        if folder.is_dir() and subset and subset != NO_PLATE_SUBSET and subset not in named:
            photos = [p for p in _find_images(folder) if p.name not in taken]
            taken.update(p.name for p in photos)
            if photos:
                out[subset] = photos
    return out


def _check_test_subsets(test_subsets: Sequence[str] | None) -> tuple[str, ...] | None:
    if test_subsets is None:
        return None
    names = tuple(dict.fromkeys(str(s).strip().removeprefix(SUBSET_PREFIX) for s in test_subsets))
    if not names or any(not n for n in names):
        raise DataError(f"--test-subsets {','.join(map(str, test_subsets))!r}: give comma-separated CCPD subset names, e.g. base,db,blur")
    return names


def load_ccpd(
    path: str | Path,
    *,
    hr_size: tuple[int, int] = HR_SIZE,
    crop: str = "perspective",
    strict: bool = False,
    seed: int = 0,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    limit: dict | None = None,
    scale: int | None = None,
    decode: Mapper = serial_map,
    test_subsets: Sequence[str] | None = None,
) -> PlateSplits:
    """Load a CCPD folder into train/val/test plates.

    With split lists (``splits/{train,val,test}.txt`` and CCPD2019's per-subset test lists
    ``splits/ccpd_<subset>.txt``, paths relative to ``path``) those lists are used, and the
    photos of a subset folder no list names go to test; otherwise a photo below a folder
    named ``train``/``val``/``test`` (CCPD2020) takes that split and every other one is split
    by plate string (``split_by_plate``).  A photo in ``ccpd_<subset>/`` carries
    ``meta["subset"]``; ``ccpd_np/`` (no plate) is left out and counted
    (``info["no_plate_skipped"]``).  ``test_subsets`` keeps only the test plates of those
    subsets (an error names a subset that has none).
    Names that do not parse and images that cannot be read are skipped and counted
    (``PlateSplits.skipped``, names in ``info["skipped"]``), or raise with ``strict=True``;
    so are degenerate plates (corners collapsed, or a source region smaller than the LR
    size ``hr_size / scale`` when ``scale`` is given).  Reasons: ``info["skip_reasons"]``.
    ``limit`` = {split: N} keeps the first N loadable plates of that split, files sorted by name.
    ``decode`` maps the photo decoder over each split's files (:mod:`lpsr.data.parallel`:
    in this process, or over the cores with the same plates).
    """
    root = Path(path)
    if not str(path) or not root.exists():
        raise DataError(f"CCPD folder {str(path) or '(empty path)'} does not exist; pass ccpd:PATH to a folder of CCPD images")
    if not root.is_dir():
        raise DataError(f"CCPD path {root} is not a folder; pass ccpd:PATH to a folder of CCPD images")
    size = check_hr_size(hr_size)
    _check_crop(crop)
    limit = check_limit(limit)
    wanted = _check_test_subsets(test_subsets)

    skipped: list[str] = []
    reasons: dict[str, str] = {}

    def reject(name: str, exc: DataError) -> None:
        if strict:
            raise exc
        skipped.append(name)
        reasons[name] = str(exc)

    listed, info, named = _listed_splits(root)
    no_plate: set[str] = set()  # photos of ccpd_np/ (no plate to cut), by file name
    if info["split_files"]:
        candidates = listed
        info["split_rule"] = "split files"
        unlisted = _unlisted_subsets(root, named, listed)
        if unlisted:
            candidates["test"] = candidates["test"] + [p for paths in unlisted.values() for p in paths]
            info["unlisted_subsets_to_test"] = {k: len(v) for k, v in unlisted.items()}
        if (np_dir := root / f"{SUBSET_PREFIX}{NO_PLATE_SUBSET}").is_dir():
            no_plate.update(p.name for p in _find_images(np_dir))
    else:
        # Parse names first (cheap) so the split and the limit are decided before decoding.
        parsed, by_folder = [], {name: [] for name in SPLIT_NAMES}
        for p in _find_images(root):
            if subset_of(root, p) == NO_PLATE_SUBSET:
                no_plate.add(p.name)
                continue
            if (folder := _split_folder(root, p)) is not None:
                by_folder[folder].append(p)
                continue
            try:
                parsed.append((p, parse_ccpd_name(p.name).text))
            except DataError as exc:
                reject(p.name, exc)
        if not parsed and not skipped and not any(by_folder.values()):
            raise DataError(f"no images found under {root}; expected CCPD .jpg files or splits/{{train,val,test}}.txt")
        parts = split_by_plate(parsed, fractions, seed, key=lambda item: item[1])
        candidates = {name: by_folder[name] + [p for p, _ in part] for name, part in zip(SPLIT_NAMES, parts)}
        rule = f"by plate string (sha256, seed {seed}, fractions {tuple(fractions)})"
        if any(by_folder.values()):
            rule = ("by split folder (train/val/test on the path)" if not parsed else
                    f"by split folder (train/val/test on the path), else {rule}")
        info["split_rule"] = rule
    for name in SPLIT_NAMES:  # a split list that names ccpd_np photos
        no_plate.update(p.name for p in candidates[name] if subset_of(root, p) == NO_PLATE_SUBSET)
        candidates[name] = [p for p in candidates[name] if subset_of(root, p) != NO_PLATE_SUBSET]
    if no_plate:
        info["no_plate_skipped"] = len(no_plate)
    if wanted is not None:
        present = sorted({s for p in candidates["test"] if (s := subset_of(root, p)) is not None}, key=subset_sort_key)
        missing = [w for w in wanted if w not in present]
        if missing:
            raise DataError(f"--test-subsets: no test plates in subset {', '.join(missing)} of {root}; "
                            f"its test subsets: {', '.join(present) or 'none (no ccpd_<subset>/ folders)'}")
        candidates["test"] = [p for p in candidates["test"] if subset_of(root, p) in wanted]
        info["test_subsets"] = list(wanted)

    out: dict[str, list[PlateRecord]] = {}
    for name in SPLIT_NAMES:
        records: list[PlateRecord] = []
        cap = limit.get(name)
        paths = sorted(candidates[name], key=lambda q: q.name)
        load_one = partial(_load_candidate, split=name, size=size, crop=crop, scale=scale, root=root)
        for p, result in zip(paths, decode(load_one, paths, f"decode {name} plates", cap) if cap != 0 else ()):
            if isinstance(result, DataError):
                reject(p.name, result)
                continue
            records.append(result)
            if cap is not None and len(records) >= cap:
                break
        out[name] = records

    info.update({"source": "ccpd", "path": str(root.resolve()), "hr_size": list(size), "crop": crop, "skipped": skipped, "skip_reasons": reasons})
    if limit:
        info["limit"] = dict(limit)
    return PlateSplits(name=root.resolve().name, train=out["train"], val=out["val"], test=out["test"], skipped=len(skipped), info=info)
