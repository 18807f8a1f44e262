"""Helpers shared by the CLI tests."""
from __future__ import annotations

import signal
import sys

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
