"""Helpers shared by the CLI tests."""
from __future__ import annotations

import json
import re
import signal
import sys
from pathlib import Path

from bench.cli import main


def run_main(capsys, *args: str) -> tuple[int, str, str]:
    """`bench ARGS` in this process: (exit code, stdout, stderr)."""
    old_argv, old_term = sys.argv, signal.getsignal(signal.SIGTERM)
    sys.argv = ["bench", *args]
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = old_argv
        signal.signal(signal.SIGTERM, old_term)
    out, err = capsys.readouterr()
    return code, out, err


def has_row(md: str, method: str) -> bool:
    """The leaderboard markdown has a table row for ``method`` (under-trained mark or not)."""
    return re.search(rf"^\| {re.escape(method)}( ‡)? \|", md, re.M) is not None


def timeless_log(path: Path) -> list[dict]:
    """``train.jsonl`` without its wall-clock field: what must match between an uninterrupted
    and a resumed run."""
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"}
            for line in Path(path).read_text(encoding="utf-8").splitlines()]
