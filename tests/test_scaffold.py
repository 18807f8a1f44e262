"""`bench add-method NAME` makes a method that runs like the built-ins and passes
`bench check-method` as generated; `--package DIR` makes an installable plug-in."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.scaffold.new_method import scaffold, scaffold_package
from lpsr.errors import UserError
from cli_helpers import has_row

REPO = Path(__file__).resolve().parents[1]


def bench(args, cwd, env):
    return subprocess.run([sys.executable, "-c", "from bench.cli import main; main()", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=600)


def test_scaffolded_method_is_listed_checked_and_runs(tmp_path):
    # a copy of the source tree, so the test never writes into the real one
    for part in ("lpsr", "methods", "bench", "configs"):
        shutil.copytree(REPO / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "LPSR_CONFIGS": str(tmp_path / "configs")}
    made = bench(["add-method", "my-sr", "--root", str(tmp_path)], tmp_path, env)
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "methods" / "my_sr.py").exists() and (tmp_path / "configs" / "methods" / "my-sr.yaml").exists()
    listed = bench(["list", "--scale", "4"], tmp_path, env)
    assert listed.returncode == 0 and "my-sr" in listed.stdout
    checked = bench(["check-method", "my-sr"], tmp_path, env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "FAIL" not in checked.stdout and checked.stdout.count("PASS") == 6
    run = bench(["run", "--methods", "my-sr,bicubic", "--scale", "8", "--profile", "test", "--ocr", "none",
                 "--run-dir", "runs", "--leaderboard-dir", "lb"], tmp_path, env)
    assert run.returncode == 0, run.stderr
    assert has_row((tmp_path / "lb" / "synthetic-x8-test.md").read_text(), "my-sr")


def test_scaffold_refuses_bad_or_taken_names(tmp_path):
    with pytest.raises(UserError, match="lower-case"):
        scaffold("My SR", tmp_path)
    with pytest.raises(UserError, match="lower-case"):
        scaffold("1net", tmp_path)
    with pytest.raises(UserError, match="keyword"):
        scaffold("class", tmp_path)
    with pytest.raises(UserError, match="already exists"):
        scaffold("bicubic")
    with pytest.raises(UserError, match="group name"):
        scaffold("all", tmp_path)
    with pytest.raises(UserError, match="group name"):
        scaffold("pecl-ablation", tmp_path)
    scaffold("twice", tmp_path)
    with pytest.raises(UserError, match="already exists"):
        scaffold("twice", tmp_path)


def test_add_method_errors_are_one_line(tmp_path):
    for name, needle in (("all", "group name"), ("bicubic", "already exists"), ("no way", "lower-case")):
        res = bench(["add-method", name, "--root", str(tmp_path)], tmp_path, dict(os.environ))
        lines = [l for l in res.stderr.splitlines() if l.strip()]
        assert res.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], res.stderr


def test_package_plugin_registers_through_the_entry_point(tmp_path):
    pkg = tmp_path / "pkg"
    made = scaffold_package("ext-net", pkg)
    assert (pkg / "pyproject.toml") in made
    assert 'ext-net = "lpsr_ext_net.method:ExtNet"' in (pkg / "pyproject.toml").read_text()
    with pytest.raises(UserError, match="not empty"):
        scaffold_package("other-net", pkg)
    site = tmp_path / "site"
    inst = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                           "--target", str(site), str(pkg)], capture_output=True, text=True, timeout=600)
    if inst.returncode != 0:
        pytest.skip(f"cannot build the plug-in package here: {inst.stderr.strip().splitlines()[-1:]}")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}
    listed = bench(["list", "--scale", "8"], tmp_path, env)
    assert listed.returncode == 0 and "ext-net" in listed.stdout and "plugin" in listed.stdout, listed.stdout + listed.stderr
    checked = bench(["check-method", "ext-net", "--steps", "6"], tmp_path, env)
    assert checked.returncode == 0 and "FAIL" not in checked.stdout, checked.stdout + checked.stderr
