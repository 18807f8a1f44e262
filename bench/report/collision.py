"""Two run directories writing one leaderboard file: the second would silently replace the
first, so the command says so before writing (the leaderboard's ``.json`` names the run
directory it came from, ``meta.provenance.run_dir``)."""
from __future__ import annotations

import json
from pathlib import Path


def replaced_leaderboard_note(out_stem: Path, run_dir: Path) -> str | None:
    """A one-line note when ``<out_stem>.md`` exists and was built from another run
    directory (by name, the only part the leaderboard records); ``None`` otherwise."""
    out_stem = Path(out_stem)
    try:
        meta = json.loads(out_stem.with_name(out_stem.name + ".json").read_text(encoding="utf-8"))["meta"]
        previous = meta["provenance"]["run_dir"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(previous, str) or previous == Path(run_dir).name:
        return None
    md = out_stem.with_name(out_stem.name + ".md")
    return (f"note: {md} held the leaderboard of run directory '{previous}'; it is replaced by {Path(run_dir).name}'s "
            "(pass another --leaderboard-dir to keep both)")
