"""A folder of plate crops with ``labels.csv`` (``filename,text`` and optionally ``split``).

``filename`` is relative to the folder and must stay inside it: an absolute path or a
``..`` is an error naming the row, and so is a symbolic link (placed in the folder) that
leads out of it; a link to another file inside the folder is followed.  ``split`` (train /
val / test), when the column is there, says where each plate goes; without it the plates
are split by plate string with ``split_by_plate``, the same rule the CCPD loader uses.
Every crop is resized to hr_size.
"""
from __future__ import annotations

import csv
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Sequence

from lpsr.data.images import check_hr_size, check_source_region, read_rgb, resize_to
from lpsr.data.parallel import Mapper, serial_map
from lpsr.data.record import HR_SIZE, DataError, PlateRecord, PlateSplits
from lpsr.data.splits import SPLIT_NAMES, check_limit, split_by_plate

LABELS = "labels.csv"
REQUIRED_COLUMNS = ("filename", "text")


def read_labels(path: Path) -> tuple[list[dict], bool]:
    """Rows of labels.csv as dicts (filename, text[, split], line) and whether a split column exists."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            columns = [c.strip() for c in (reader.fieldnames or [])]
            missing = [c for c in REQUIRED_COLUMNS if c not in columns]
            if missing:
                raise DataError(f"{path} lacks column(s) {', '.join(missing)}; its header must be filename,text[,split] (found: {','.join(columns) or 'nothing'})")
            has_split = "split" in columns
            rows = []
            for line, raw in enumerate(reader, start=2):
                row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k is not None}
                if not any(row.values()):
                    continue
                if not row["filename"] or not row["text"]:
                    raise DataError(f"{path} line {line}: filename and text must both be filled in")
                if has_split and row.get("split", "") not in SPLIT_NAMES:
                    raise DataError(f"{path} line {line}: split {row.get('split', '')!r} is not one of train, val, test")
                row["line"] = line
                check_relative(row["filename"], f"{path} line {line}")
                rows.append(row)
    except UnicodeDecodeError:
        raise DataError(f"{path} is not UTF-8 text; save labels.csv as UTF-8") from None
    except csv.Error as exc:
        raise DataError(f"{path} is not a valid CSV file: {exc}") from None
    return rows, has_split


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


def _load_row(row: dict, root: Path, labels: Path, size: tuple[int, int], scale: int | None) -> PlateRecord:
    """One row's crop resized to ``size`` (a module-level function: decode workers are handed it)."""
    file = root / row["filename"]
    try:
        exists = file.is_file()
    except (OSError, ValueError) as exc:  # e.g. a name too long for the file system
        raise DataError(f"image {file} listed in {labels} line {row['line']} cannot be read ({getattr(exc, 'strerror', None) or exc})") from None
    if not exists:
        raise DataError(f"image {file} listed in {labels} line {row['line']} does not exist")
    image = read_rgb(file)
    check_source_region(f"image {file}", image.shape[1], image.shape[0], size, scale)
    hr = resize_to(image, size)
    return PlateRecord(id=row["filename"], hr=hr, text=row["text"], source="folder", meta={"path": str(file)})


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
    rows, has_split = read_labels(labels)
    if not rows:
        raise DataError(f"{labels} lists no plates; add one row per image: filename,text[,split]")

    unique: dict[str, dict] = {}
    for row in rows:
        unique.setdefault(row["filename"], row)
    duplicates = len(rows) - len(unique)
    rows = list(unique.values())
    for row in rows:
        check_inside(root, row["filename"], f"{labels} line {row['line']}")
    if has_split:
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
        load_one = partial(_load_row, root=root, labels=labels, size=size, scale=scale)
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
    if limit:
        info["limit"] = dict(limit)
    return PlateSplits(name=root.resolve().name, train=out["train"], val=out["val"], test=out["test"], skipped=len(skipped), info=info)
