"""A folder of plate crops with ``labels.csv`` (``filename,text`` and optionally ``split``),
or of LR crops without HR (``lr_filename,text`` and optionally ``track``, ``frame``).

``filename`` is relative to the folder and must stay inside it: an absolute path or a
``..`` is an error naming the row, and so is a symbolic link (placed in the folder) that
leads out of it; a link to another file inside the folder is followed.  ``split`` (train /
val / test), when the column is there, says where each plate goes; without it the plates
are split by plate string with ``split_by_plate``, the same rule the CCPD loader uses.
Every crop is resized to hr_size.

**LR-only data**: a header with ``lr_filename`` instead of ``filename`` says that the crops
are real low-resolution plates (a camera's, UFPR-SR-Plates' or LRLPR's LR frames) and that
there is no HR.  Each crop is resized to the run's LR size ``hr_size / scale`` (area
averaging when shrinking, bicubic when enlarging) and kept as ``PlateRecord.lr``; every
plate is a test plate (a ``split`` column, if any, must say ``test``).  ``track`` groups
frames of one car (every frame of a track must have the same text; the runs add a per-track
vote); ``frame`` is carried into ``plates.csv`` as given.  A header with both ``filename``
and ``lr_filename`` is an error: one folder is either HR or LR-only.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Sequence

from lpsr.data.images import check_hr_size, check_source_region, read_rgb, resize_to
from lpsr.data.parallel import Mapper, serial_map
from lpsr.data.record import HR_SIZE, DataError, PlateRecord, PlateSplits
from lpsr.data.splits import SPLIT_NAMES, check_limit, split_by_plate

LABELS = "labels.csv"
REQUIRED_COLUMNS = ("filename", "text")
#: the column that names LR crops instead of ``filename`` (LR-only data, no HR)
LR_FILENAME = "lr_filename"
LR_HEADER = "lr_filename,text[,track,frame]"


@dataclass
class Labels:
    """labels.csv read: rows as dicts (``filename`` (for LR-only data: its ``lr_filename``),
    ``text``, ``line`` and the optional columns), whether a ``split`` column exists, whether
    the crops are LR-only and whether a ``track`` column exists."""

    rows: list[dict]
    has_split: bool
    lr_only: bool = False
    has_track: bool = False


def read_labels(path: Path) -> Labels:
    """labels.csv checked row by row: each bad row is a DataError naming the file and line."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            columns = [c.strip() for c in (reader.fieldnames or [])]
            lr_only = LR_FILENAME in columns
            if lr_only and "filename" in columns:
                raise DataError(f"{path} line 1: both filename (HR crops) and {LR_FILENAME} (LR crops, no HR) columns; a folder is "
                                f"either HR data (filename,text[,split]) or LR-only data ({LR_HEADER}): put them in two folders")
            name_column = LR_FILENAME if lr_only else "filename"
            missing = [c for c in (name_column, "text") if c not in columns]
            if missing:
                raise DataError(f"{path} line 1 (the header) lacks column(s) {', '.join(missing)}; its header must be filename,text[,split] "
                                f"(or {LR_HEADER} for LR crops without HR) (found: {','.join(columns) or 'nothing'})")
            has_split, has_track = "split" in columns, lr_only and "track" in columns
            rows = []
            for line, raw in enumerate(reader, start=2):
                row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k is not None}
                if not any(row.values()):
                    continue
                row["filename"] = row.pop(name_column)
                if not row["filename"] or not row["text"]:
                    raise DataError(f"{path} line {line}: {name_column} and text must both be filled in")
                if has_split and row.get("split", "") not in SPLIT_NAMES:
                    raise DataError(f"{path} line {line}: split {row.get('split', '')!r} is not one of train, val, test")
                if lr_only and has_split and row["split"] != "test":
                    raise DataError(f"{path} line {line}: split {row['split']!r}, but LR-only data ({LR_FILENAME}) has no HR to train "
                                    "on: every plate is a test plate (write test or drop the split column)")
                if has_track and not row.get("track"):
                    raise DataError(f"{path} line {line}: track is empty; give every row a track (a single frame is a track of one)")
                row["line"] = line
                check_relative(row["filename"], f"{path} line {line}")
                rows.append(row)
    except UnicodeDecodeError:
        raise DataError(f"{path} is not UTF-8 text; save labels.csv as UTF-8") from None
    except csv.Error as exc:
        raise DataError(f"{path} is not a valid CSV file: {exc}") from None
    if has_track:
        check_tracks(path, rows)
    return Labels(rows, has_split, lr_only, has_track)


def check_tracks(path: Path, rows: list[dict]) -> None:
    """Every frame of a track shows the same plate: one text per track."""
    first: dict[str, dict] = {}
    for row in rows:
        seen = first.setdefault(row["track"], row)
        if seen["text"] != row["text"]:
            raise DataError(f"{path} line {row['line']}: track {row['track']!r} has text {row['text']!r} here but {seen['text']!r} "
                            f"on line {seen['line']}; the frames of one track show one plate")


def check_relative(name: str, where: str) -> None:
    """A ``filename`` must name a file inside the data folder: no absolute path, no ``..``."""
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if name.startswith(("/", "\\")) or Path(name).is_absolute() or ".." in parts:
        raise DataError(f"{where}: filename {name!r} leaves the data folder (absolute paths and '..' are refused); "
                        "list each image relative to the folder that holds labels.csv")


def check_inside(root: Path, name: str, where: str) -> None:
    """Symbolic links inside the folder are followed only when they lead to a file inside it."""
    try:
        real, base = (root / name).resolve(), root.resolve()
    except (OSError, RuntimeError, ValueError):  # a link loop or an unreadable path: skipped as unreadable later
        return
    if not real.is_relative_to(base):
        raise DataError(f"{where}: filename {name!r} is a symbolic link leading out of the data folder (to {real}); "
                        "copy or hard-link the image into the folder")


def _load_row(row: dict, root: Path, labels: Path, size: tuple[int, int], scale: int | None,
              lr_size: tuple[int, int] | None = None, lr_only: bool = False) -> PlateRecord:
    """One row's crop resized to ``size`` (HR data) or to ``lr_size`` (LR-only data), as a
    record (a module-level function: decode workers are handed it)."""
    file = root / row["filename"]
    try:
        exists = file.is_file()
    except (OSError, ValueError) as exc:  # e.g. a name too long for the file system
        raise DataError(f"image {file} listed in {labels} line {row['line']} cannot be read ({getattr(exc, 'strerror', None) or exc})") from None
    if not exists:
        raise DataError(f"image {file} listed in {labels} line {row['line']} does not exist")
    image = read_rgb(file)
    # a real LR crop only has to be a picture (2x2 px); an HR crop must hold the LR size
    check_source_region(f"image {file}", image.shape[1], image.shape[0], size, None if lr_size else scale)
    pixels = resize_to(image, lr_size or size)
    meta = {"path": str(file), **{k: row[k] for k in ("track", "frame") if lr_only and k in row}}
    hr, lr = (None, pixels) if lr_size else (pixels, None)
    return PlateRecord(id=row["filename"], hr=hr, text=row["text"], source="folder", meta=meta, lr=lr)


def load_folder(
    path: str | Path,
    *,
    hr_size: tuple[int, int] = HR_SIZE,
    strict: bool = False,
    seed: int = 0,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    limit: dict | None = None,
    scale: int | None = None,
    decode: Mapper = serial_map,
) -> PlateSplits:
    """Load plate crops listed in ``path/labels.csv``.

    Missing or unreadable image files, and degenerate crops (smaller than 2x2 px, or than
    the LR size ``hr_size / scale`` when ``scale`` is given), are skipped, counted and named
    in ``info["skipped"]`` with the reason in ``info["skip_reasons"]`` (``strict=True``: raise).
    A file name listed twice is kept once (first row).  ``limit`` = {split: N} keeps the
    first N loadable plates of a split, sorted by file name.  ``decode`` maps the crop
    reader over each split's rows (:mod:`lpsr.data.parallel`).
    """
    root = Path(path)
    if not str(path) or not root.is_dir():
        raise DataError(f"plate folder {str(path) or '(empty path)'} does not exist or is not a folder; pass folder:PATH")
    labels = root / LABELS
    if not labels.is_file():
        raise DataError(f"{labels} not found; a folder source needs labels.csv with columns filename,text[,split]")
    size = check_hr_size(hr_size)
    limit = check_limit(limit)
    table = read_labels(labels)
    rows, has_split = table.rows, table.has_split
    lr_size = None
    if table.lr_only:
        if not scale:
            raise DataError(f"{labels}: LR-only data ({LR_FILENAME}) needs the scale to know its LR size (hr_size / scale); pass scale")
        lr_size = (size[0] // scale, size[1] // scale)
    if not rows:
        raise DataError(f"{labels} lists no plates; add one row per image: filename,text[,split]")

    unique: dict[str, dict] = {}
    for row in rows:
        unique.setdefault(row["filename"], row)
    duplicates = len(rows) - len(unique)
    rows = list(unique.values())
    for row in rows:
        check_inside(root, row["filename"], f"{labels} line {row['line']}")
    if table.lr_only:
        parts = [[], [], rows]
        rule = "LR-only data: every plate is a test plate"
    elif has_split:
        parts = [[r for r in rows if r["split"] == name] for name in SPLIT_NAMES]
        rule = "split column"
    else:
        parts = list(split_by_plate(rows, fractions, seed, key=lambda r: r["text"]))
        rule = f"by plate string (sha256, seed {seed}, fractions {tuple(fractions)})"

    skipped: list[str] = []
    reasons: dict[str, str] = {}
    out: dict[str, list[PlateRecord]] = {}
    for name, part in zip(SPLIT_NAMES, parts):
        records: list[PlateRecord] = []
        cap = limit.get(name)
        ordered = sorted(part, key=lambda r: r["filename"])
        load_one = partial(_load_row, root=root, labels=labels, size=size, scale=scale, lr_size=lr_size, lr_only=table.lr_only)
        for row, result in zip(ordered, decode(load_one, ordered, f"decode {name} plates", cap) if cap != 0 else ()):
            if isinstance(result, DataError):
                if strict:
                    raise result
                skipped.append(row["filename"])
                reasons[row["filename"]] = str(result)
                continue
            records.append(result)
            if cap is not None and len(records) >= cap:
                break
        out[name] = records

    texts = [{r.text for r in out[n]} for n in SPLIT_NAMES]
    shared = sorted((texts[0] & texts[1]) | (texts[0] & texts[2]) | (texts[1] & texts[2]))
    info = {"source": "folder", "path": str(root.resolve()), "hr_size": list(size), "split_rule": rule,
            "duplicates_dropped": duplicates, "strings_in_two_splits": shared, "skipped": skipped,
            "skip_reasons": reasons}
    if lr_size:
        info.update({"lr_only": True, "lr_size": list(lr_size), "tracks": table.has_track})
    if limit:
        info["limit"] = dict(limit)
    return PlateSplits(name=root.resolve().name, train=out["train"], val=out["val"], test=out["test"], skipped=len(skipped), info=info)
