"""Folder options (``--run-dir``, ``--leaderboard-dir``): checked before anything is written."""
from __future__ import annotations

import errno
import os
from pathlib import Path

from lpsr.errors import UserError


def check_not_file(path: Path, option: str) -> None:
    """``option`` must name a folder (or a path that can become one): no file, dangling
    symbolic link or symbolic-link loop on the way."""
    path = Path(path)
    for p in [path, *path.parents]:
        if not (p.exists() or p.is_symlink()):
            continue
        where = "" if p == path else f" lies under {p}, which"
        if p.is_symlink() and not p.exists():
            try:
                os.stat(p)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise UserError(f"{option} {path}{where} is a symbolic link that loops back on itself; remove it or pass a folder path") from None
            raise UserError(f"{option} {path}{where} is a symbolic link to {os.readlink(p)}, which does not exist; "
                            "create that folder or pass a folder path") from None
        if not p.is_dir():
            what = "is a file" if p == path else f"lies under {p}, which is a file"
            raise UserError(f"{option} {path} {what}; pass a folder path")
        return
