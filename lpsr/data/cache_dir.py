"""Where the plate cache (:mod:`lpsr.data.plate_cache`) lives: the one default and its override.

A module of its own, importing nothing heavy, so the command line can name the default in
its help text.
"""
from __future__ import annotations

import os
from pathlib import Path

#: where stores live unless ``--cache-dir`` or ``$LPSR_CACHE_DIR`` says otherwise
DEFAULT_CACHE_DIR = "~/.cache/lpsr-bench/plates"
CACHE_ENV = "LPSR_CACHE_DIR"
#: what ``--cache-dir``'s help says the default is
DEFAULT_TEXT = f"${CACHE_ENV}, else {DEFAULT_CACHE_DIR}"


def cache_root(explicit: str | Path | None = None) -> Path:
    """The cache folder: ``explicit``, else ``$LPSR_CACHE_DIR``, else :data:`DEFAULT_CACHE_DIR`."""
    raw = str(explicit) if explicit else os.environ.get(CACHE_ENV, "").strip() or DEFAULT_CACHE_DIR
    return Path(raw).expanduser()
