"""`bench add-method NAME` makes a method that runs like the built-ins."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.scaffold.new_method import scaffold
from lpsr.errors import UserError

REPO = Path(__file__).resolve().parents[1]


def test_scaffolded_method_is_listed_and_runs(tmp_path):
    # a copy of the source tree, so the test never writes into the real one
    for part in ("lpsr", "methods", "bench", "configs"):
        shutil.copytree(REPO / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    made = subprocess.run([sys.executable, "-m", "bench.cli", "add-method", "my-sr", "--root", str(tmp_path)],
                          capture_output=True, text=True, cwd=tmp_path, env=env)
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "methods" / "my_sr.py").exists() and (tmp_path / "configs" / "methods" / "my-sr.yaml").exists()
    listed = subprocess.run([sys.executable, "-m", "bench.cli", "list", "--scale", "4"], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert listed.returncode == 0 and "my-sr" in listed.stdout
    run = subprocess.run(
        [sys.executable, "-m", "bench.cli", "run", "--methods", "my-sr", "--scale", "4", "--profile", "test", "--ocr", "none",
         "--run-dir", "runs", "--leaderboard-dir", "lb"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600,
    )
    assert run.returncode == 0, run.stderr
    assert "| my-sr |" in (tmp_path / "lb" / "synthetic-x4-test.md").read_text()


def test_scaffold_refuses_bad_or_taken_names(tmp_path):
    with pytest.raises(UserError, match="lower-case"):
        scaffold("My SR", tmp_path)
    with pytest.raises(UserError, match="already exists"):
        scaffold("bicubic")
    scaffold("twice", tmp_path)
    with pytest.raises(UserError, match="already exists"):
        scaffold("twice", tmp_path)
