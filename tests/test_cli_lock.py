"""Real processes: the run-directory lock, Ctrl-C / SIGTERM messages, SIGKILL recovery."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


def long_profile(tmp_path: Path) -> Path:
    data = yaml.safe_load((REPO / "configs" / "profiles" / "test.yaml").read_text())
    data["train"].update(iterations=100000, val_every=50000, log_every=50000)
    path = tmp_path / "long.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def start(args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "from bench.cli import main; main()", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    end = time.time() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"process ended early: {proc.communicate()}")
        if time.time() > end:
            proc.kill()
            raise AssertionError(f"{path} did not appear")
        time.sleep(0.2)


def run_args(run_dir: Path, lb: Path, methods: str, profile: str) -> list[str]:
    return ["run", "--methods", methods, "--profile", profile, "--ocr", "none", "--run-dir", str(run_dir), "--leaderboard-dir", str(lb)]


@pytest.mark.slow
def test_second_run_is_refused_and_a_dead_owners_lock_is_taken_over(tmp_path):
    run_dir, lb = tmp_path / "r", tmp_path / "lb"
    first = start(run_args(run_dir, lb, "tiny", str(long_profile(tmp_path))), tmp_path)
    try:
        wait_for(run_dir / ".lock", first)
        owner = json.loads((run_dir / ".lock").read_text())
        assert owner["pid"] == first.pid and owner["host"]
        second = subprocess.run([sys.executable, "-c", "from bench.cli import main; main()", *run_args(run_dir, lb, "bicubic", "test")],
                                capture_output=True, text=True, cwd=tmp_path, timeout=300)
        lines = second.stderr.strip().splitlines()
        assert second.returncode == 2 and len(lines) == 1, second.stderr
        assert lines[0] == (f"error: run directory {run_dir} is in use by another bench run (PID {first.pid}, lock {run_dir / '.lock'}); "
                            "wait for it to finish or use another --run-dir")
        assert not (run_dir / "bicubic").exists()
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    # the owner died without releasing: the next run takes the stale lock over and says so
    third = subprocess.run([sys.executable, "-c", "from bench.cli import main; main()", *run_args(run_dir, lb, "bicubic", "test")],
                           capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert third.returncode == 0, third.stderr
    assert f"took over a stale lock of PID {first.pid}, which is no longer running" in third.stdout
    assert (run_dir / "bicubic" / "result.json").exists() and not (run_dir / ".lock").exists()


@pytest.mark.slow
@pytest.mark.parametrize("sig, code, prefix", [(signal.SIGINT, 130, "interrupted:"), (signal.SIGTERM, 143, "terminated (SIGTERM):")])
def test_interrupt_and_sigterm_print_the_resume_message(tmp_path, sig, code, prefix):
    run_dir, lb = tmp_path / "r", tmp_path / "lb"
    proc = start(run_args(run_dir, lb, "tiny", str(long_profile(tmp_path))), tmp_path)
    try:
        wait_for(run_dir / "tiny" / "config.yaml", proc)
        time.sleep(1.0)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=120)
    finally:  # never leave a 100,000-iteration training behind (it would slow every later test)
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == code, err
    lines = [l for l in err.strip().splitlines() if l.strip()]
    assert lines[-1].startswith(prefix) and "rerun the same command to resume" in lines[-1], err
    assert "Traceback" not in err
    assert not (run_dir / ".lock").exists()  # released on the way out
