"""Atomic file writes: a crash never leaves a half-written result or checkpoint behind.

Each writer writes to a temporary file ``.<name>.<random>.tmp`` in the destination folder,
flushes it to disk, then renames it over the target (``os.replace`` is atomic on POSIX and
Windows).  A process killed mid-write can leave such a temporary file behind;
``remove_stray_temps`` (run by ``bench run`` under the run-directory lock) deletes them.
Files are created with the permissions a plain ``open`` would give (0644 under umask 022),
not mkstemp's 0600.  A full disk raises :class:`lpsr.errors.DiskFullError` (one line) and
leaves the previous file, if any, untouched.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from lpsr.errors import DISK_FULL, DiskFullError, UserError, os_error_message

TEMP_SUFFIX = ".tmp"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def default_file_mode() -> int:
    """The mode ``open(path, "w")`` would create a file with (0o666 minus the umask)."""
    return 0o666 & ~_umask()


def default_dir_mode() -> int:
    """The mode ``mkdir`` would create a folder with (0o777 minus the umask), not mkdtemp's 0700."""
    return 0o777 & ~_umask()


def fsync_dir(folder: Path) -> None:
    """Make a rename durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success it replaces ``target``."""
    target = Path(target)
    tmp_path: Path | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TEMP_SUFFIX, dir=target.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        os.chmod(tmp_path, default_file_mode())
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, target)
        fsync_dir(target.parent)
    except OSError as exc:
        if exc.errno in DISK_FULL:
            raise DiskFullError(os_error_message(OSError(exc.errno, exc.strerror, str(target)))) from None
        raise
    finally:
        if tmp_path is not None and tmp_path.exists():
            try:
                tmp_path.unlink()
            except OSError:
                pass


def write_text(target: str | Path, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def copy_file(source: str | Path, target: str | Path) -> None:
    """Copy ``source`` to ``target`` atomically (the same bytes, or the old target)."""
    import shutil

    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)


def write_json(target: str | Path, obj: Any) -> None:
    write_text(target, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: str | Path) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def read_json_or_none(path: str | Path) -> Any:
    """``read_json`` that returns None for a missing, unreadable or corrupt file."""
    try:
        return read_json(path)
    except (OSError, ValueError):
        return None


def is_stray_temp(path: Path) -> bool:
    """A temporary file ``atomic_path`` leaves when its process is killed mid-write."""
    return path.name.startswith(".") and path.name.endswith(TEMP_SUFFIX)


def remove_stray_temps(root: str | Path) -> list[Path]:
    """Delete ``.<name>.<random>.tmp`` files (and such folders) under ``root``; return them.

    Only call this while holding the run directory's lock: a live writer's temporary file
    looks the same.
    """
    root = Path(root)
    if not root.is_dir():
        return []
    removed: list[Path] = []
    for path in sorted(root.rglob(f".*{TEMP_SUFFIX}"), key=lambda p: len(p.parts), reverse=True):
        if not is_stray_temp(path):
            continue
        try:
            if path.is_dir() and not path.is_symlink():
                import shutil

                shutil.rmtree(path)
            else:
                path.unlink()
            removed.append(path)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise UserError(f"cannot remove the stray temporary file {path} ({exc.strerror}); remove it by hand") from None
    return removed


def sha256_file(path: str | Path) -> str:
    """The sha256 of a file's bytes (hex), read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
