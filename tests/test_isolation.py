"""One process per method (bench/isolation.py), through the real `bench` entry point.

* a method that raises, one whose loss goes NaN and one whose process is SIGKILLed (what the
  kernel's out-of-memory killer does) are failed rows of the leaderboard (md / csv / json /
  html, result.json with status `failed`, the exception type and a one-line reason) while
  bicubic and tiny finish; the exit status says some failed; a rerun tries the failed ones
  again and skips the finished ones;
* SIGTERM to a real `bench run` during training: the method's process writes a checkpoint and
  stops, the run stops with the resume message (no failed row), and the rerun ends with the
  same final weights as an uninterrupted run.

The failing methods come from a plug-in package written by the test (an `lpsr.methods` entry
point in a `.dist-info` folder on PYTHONPATH), which the spawned method processes see too.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]

PLUGIN = '''
"""Test-only methods that fail in three ways (tests/test_isolation.py)."""
import os
import signal

import torch

from lpsr.method import TrainRecipe
from methods.tiny import Tiny


class BoomRecipe(TrainRecipe):
    def loss(self, sr, batch, iteration, total):
        if iteration >= 2:
            raise RuntimeError(f"boom at iteration {iteration}")
        return super().loss(sr, batch, iteration, total)


class NanRecipe(TrainRecipe):
    def loss(self, sr, batch, iteration, total):
        loss, logs = super().loss(sr, batch, iteration, total)
        if iteration >= 5:
            loss = loss * float("nan")
        return loss, logs


class Boom(Tiny):
    name = "boom"
    source = "test plug-in: raises in training"
    groups = ()

    def recipe(self, model):
        return BoomRecipe()


class NanLoss(Tiny):
    name = "nanloss"
    source = "test plug-in: NaN loss from iteration 5"
    groups = ()

    def recipe(self, model):
        return NanRecipe()


class Killed(Tiny):
    name = "killed"
    source = "test plug-in: its process is SIGKILLed (as by the OOM killer)"
    groups = ()

    def build(self):
        os.kill(os.getpid(), signal.SIGKILL)
'''


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("plugin")
    (root / "lpsr_failing_methods.py").write_text(PLUGIN)
    dist = root / "lpsr_failing_methods-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: lpsr-failing-methods\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[lpsr.methods]\nboom = lpsr_failing_methods:Boom\n"
                                           "nanloss = lpsr_failing_methods:NanLoss\nkilled = lpsr_failing_methods:Killed\n")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(REPO), os.environ.get("PYTHONPATH", "")])}


def bench(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from bench.cli import main; main()", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=600)


def run_args(run_dir: Path, lb: Path, methods: str, profile: str = "test") -> list[str]:
    return ["run", "--methods", methods, "--scale", "8", "--profile", profile, "--ocr", "none", "--run-dir", str(run_dir),
            "--leaderboard-dir", str(lb)]


@pytest.fixture(scope="module")
def failing_run(tmp_path_factory, plugin_env):
    out = tmp_path_factory.mktemp("failing")
    args = run_args(out / "runs", out / "lb", "bicubic,boom,nanloss,killed,tiny")
    first = bench(*args, env=plugin_env, cwd=out)
    return out, args, first


def test_failures_are_rows_and_the_others_finish(failing_run):
    out, _, first = failing_run
    runs = out / "runs"
    assert first.returncode == 1, first.stdout + first.stderr  # 1: a method crashed
    assert "Traceback" not in first.stderr, first.stderr
    errors = [l for l in first.stderr.splitlines() if l.startswith("error: ")]
    assert len(errors) == 3, first.stderr
    boom, nan, killed = (next(l for l in errors if f"[{m}]" in l) for m in ("boom", "nanloss", "killed"))
    assert "RuntimeError: boom at iteration 2" in boom and "failure.log" in boom
    assert "iteration 5" in nan and "lr" in nan and "Traceback" not in nan  # TrainingDiverged: one line, no traceback
    assert "SIGKILL" in killed
    # the others finished and are scored
    for name in ("bicubic", "tiny"):
        result = json.loads((runs / name / "result.json").read_text())
        assert result["status"] in ("evaluated", "trained") and len(pd.read_csv(runs / name / "plates.csv")) == 6
    # the failures are recorded
    for name, etype, kind in (("boom", "RuntimeError", "crash"), ("nanloss", "TrainingDiverged", "diverged"),
                              ("killed", "ProcessKilled", "oom")):
        result = json.loads((runs / name / "result.json").read_text())
        assert result["status"] == "failed" and result["method"] == name
        assert result["error"]["type"] == etype and result["error"]["kind"] == kind, result["error"]
        assert "\n" not in result["error"]["reason"] and result["error"]["reason"]
        assert not (runs / name / "plates.csv").exists()
        # a failed row names the profile and the machine like a finished one
        finished = json.loads((runs / "tiny" / "result.json").read_text())
        assert result["profile_description"] == finished["profile_description"] != ""
        assert result["machine"] == finished["machine"] and result["machine"]["logical_cpus"] >= 1
    assert "Traceback" in (runs / "boom" / "failure.log").read_text()
    assert not (runs / "nanloss" / "failure.log").exists()
    # the NaN kept its last good checkpoint (validation at iteration 3)
    from lpsr.train.checkpoint import load_resume

    state = load_resume(runs / "nanloss" / "ckpt" / "resume.pt")
    assert state["iteration"] == 3 and all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    assert not (runs / ".lock").exists()


def test_failed_rows_in_every_leaderboard_format(failing_run):
    out, _, first = failing_run
    stem = out / "lb" / "synthetic-x8-test"
    from cli_helpers import has_row  # here: this module is also imported as a plugin, where tests/ is not on the path

    md = stem.with_suffix(".md").read_text()
    assert has_row(md, "bicubic") and has_row(md, "tiny")
    assert "| boom | **failed**: RuntimeError: boom at iteration 2 |" in md
    assert "## Failed methods" in md and "| nanloss | **failed** | TrainingDiverged |" in md
    board = pd.read_csv(stem.with_suffix(".csv"))
    failed = board[board["status"] == "failed"].set_index("method")
    assert sorted(failed.index) == ["boom", "killed", "nanloss"]
    assert failed.loc["boom", "error_type"] == "RuntimeError" and "boom at iteration 2" in failed.loc["boom", "error_reason"]
    ok = board[board["status"] != "failed"]
    assert sorted(ok["method"]) == ["bicubic", "tiny"] and ok["psnr"].notna().all()
    data = json.loads(stem.with_suffix(".json").read_text())
    assert sorted(data["meta"]["failed"]) == ["boom", "killed", "nanloss"]
    assert {r["method"]: r.get("status") for r in data["rows"]}["nanloss"] == "failed"
    page = stem.with_suffix(".html").read_text()
    assert 'class="failed" data-method="boom"' in page and "failed: RuntimeError: boom at iteration 2" in page


def test_rerun_skips_finished_and_tries_failed_again(failing_run, plugin_env):
    out, _, _ = failing_run
    runs = out / "runs"
    again = bench(*run_args(runs, out / "lb", "bicubic,boom"), env=plugin_env, cwd=out)
    assert again.returncode == 1, again.stderr
    assert "[bicubic] results for config" in again.stdout and "skipped" in again.stdout
    assert "[boom] the previous attempt failed (RuntimeError: boom at iteration 2); trying again" in again.stdout
    kept = list((runs / "boom" / "failures").glob("*/result.json"))
    assert kept and json.loads(kept[0].read_text())["status"] == "failed"
    assert json.loads((runs / "boom" / "result.json").read_text())["status"] == "failed"


def test_nan_only_is_exit_status_2_and_one_error_line(tmp_path, plugin_env):
    res = bench(*run_args(tmp_path / "r", tmp_path / "lb", "nanloss"), env=plugin_env, cwd=tmp_path)
    lines = [l for l in res.stderr.strip().splitlines() if l.strip()]
    assert res.returncode == 2, res.stderr
    assert len(lines) == 1 and lines[0].startswith("error: [nanloss] ") and "iteration 5" in lines[0], res.stderr


def test_in_process_isolation_none_also_records_the_failure(tmp_path, plugin_env):
    res = bench(*run_args(tmp_path / "r", tmp_path / "lb", "bicubic,boom"), "--isolation", "none", env=plugin_env, cwd=tmp_path)
    assert res.returncode == 1, res.stderr
    assert json.loads((tmp_path / "r" / "boom" / "result.json").read_text())["status"] == "failed"
    from cli_helpers import has_row

    assert has_row((tmp_path / "lb" / "synthetic-x8-test.md").read_text(), "bicubic")


# --------------------------------------------------------------------------- SIGTERM -> resume
def long_profile(tmp_path: Path) -> Path:
    data = yaml.safe_load((REPO / "configs" / "profiles" / "test.yaml").read_text())
    data["train"].update(iterations=300, val_every=100, log_every=10, val_plates=2)
    path = tmp_path / "long.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _final_weights(mdir: Path) -> dict[str, torch.Tensor]:
    from lpsr.train.checkpoint import load_resume

    state = load_resume(mdir / "ckpt" / "resume.pt")
    assert state["iteration"] == 300 and state["finished"]
    return state["model"]


@pytest.mark.slow
def test_sigterm_checkpoints_and_the_rerun_matches_an_uninterrupted_run(tmp_path):
    from safetensors.torch import load_file

    from lpsr.train.checkpoint import load_resume

    prof = str(long_profile(tmp_path))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    straight = bench(*run_args(tmp_path / "a", tmp_path / "lb-a", "tiny", prof), env=env, cwd=tmp_path)
    assert straight.returncode == 0, straight.stderr

    args = run_args(tmp_path / "b", tmp_path / "lb-b", "tiny", prof)
    proc = subprocess.Popen([sys.executable, "-c", "from bench.cli import main; main()", *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = tmp_path / "b" / "tiny" / "train.jsonl"
    end = time.time() + 300
    while not (log.exists() and log.read_text().count("\n") >= 2):  # training is under way (iteration 20+)
        assert proc.poll() is None, proc.communicate()
        assert time.time() < end, "training did not start"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 143, out + err
    lines = [l for l in err.strip().splitlines() if l.strip()]
    assert lines[-1].startswith("terminated (SIGTERM):") and "rerun the same command to resume" in lines[-1], err
    assert "Traceback" not in err
    assert not (tmp_path / "b" / ".lock").exists()
    assert not (tmp_path / "b" / "tiny" / "result.json").exists()  # a stop is not a failed row
    stopped = load_resume(tmp_path / "b" / "tiny" / "ckpt" / "resume.pt")["iteration"]
    assert 0 < stopped < 300

    rerun = bench(*args, env=env, cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    result = json.loads((tmp_path / "b" / "tiny" / "result.json").read_text())
    assert result["status"] == "trained" and result["train"]["resumed_from"] == stopped
    a, b = _final_weights(tmp_path / "a" / "tiny"), _final_weights(tmp_path / "b" / "tiny")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    ba, bb = load_file(str(tmp_path / "a" / "tiny" / "ckpt" / "best.safetensors")), load_file(str(tmp_path / "b" / "tiny" / "ckpt" / "best.safetensors"))
    assert all(torch.equal(ba[k], bb[k]) for k in ba)


@pytest.mark.slow
def test_ctrl_c_stops_the_method_process_once_and_says_how_to_resume(tmp_path):
    """SIGINT to the `bench` process (what Ctrl-C sends it; the method's process has its own
    process group, so it gets the signal once, forwarded): checkpoint, stop, exit 130."""
    from lpsr.train.checkpoint import load_resume

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    args = run_args(tmp_path / "r", tmp_path / "lb", "tiny", str(long_profile(tmp_path)))
    proc = subprocess.Popen([sys.executable, "-c", "from bench.cli import main; main()", *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = tmp_path / "r" / "tiny" / "train.jsonl"
    end = time.time() + 300
    while not (log.exists() and log.read_text().count("\n") >= 1):
        assert proc.poll() is None, proc.communicate()
        assert time.time() < end, "training did not start"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, out + err
    lines = [l for l in err.strip().splitlines() if l.strip()]
    assert lines[-1].startswith("interrupted:") and "rerun the same command to resume" in lines[-1], err
    assert "Traceback" not in err and "stopped by SIGINT at iteration" in out, out
    it = load_resume(tmp_path / "r" / "tiny" / "ckpt" / "resume.pt")["iteration"]
    assert 0 < it < 300 and not (tmp_path / "r" / ".lock").exists() and not (tmp_path / "r" / "tiny" / "result.json").exists()


def _method_process(parent: int) -> int:
    """The spawned method process of ``parent`` (Linux /proc)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmd = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent and "spawn_main" in cmd and "resource_tracker" not in cmd:
            return int(stat.parent.name)
    raise AssertionError(f"no method process under {parent}")


@pytest.mark.slow
def test_under_slurm_a_sigterm_to_every_process_stops_the_method_once(tmp_path):
    """Slurm's scancel / time limit signals every process of the job: the method's process gets
    SIGTERM directly, the parent does not send it a second one (which would mean "stop at
    once"), so the method finishes its iteration and writes its checkpoint there."""
    from lpsr.train.checkpoint import load_resume

    env = {**os.environ, "SLURM_JOB_ID": "4242", "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    args = run_args(tmp_path / "r", tmp_path / "lb", "tiny", str(long_profile(tmp_path)))
    proc = subprocess.Popen([sys.executable, "-c", "from bench.cli import main; main()", *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = tmp_path / "r" / "tiny" / "train.jsonl"
    end = time.time() + 300
    while not (log.exists() and log.read_text().count("\n") >= 1):
        assert proc.poll() is None, proc.communicate()
        assert time.time() < end, "training did not start"
        time.sleep(0.05)
    child = _method_process(proc.pid)
    proc.send_signal(signal.SIGTERM)
    os.kill(child, signal.SIGTERM)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 143, out + err
    assert "stopped by SIGTERM at iteration" in out and "at once" not in out + err, out + err
    it = load_resume(tmp_path / "r" / "tiny" / "ckpt" / "resume.pt")["iteration"]
    assert 0 < it < 300 and f"at iteration {it} of 300" in out


# --------------------------------------------------------------------------- the generic child
def _double(job, report, make_bar):
    report(f"doubling {job}")
    make_bar("work", 1)(1)
    return job * 2


def _raise(job, report, make_bar):
    raise ValueError(f"bad job {job}")


def _die(job, report, make_bar):
    os.kill(os.getpid(), signal.SIGKILL)


def test_run_in_child_returns_the_value_or_a_failure_record():
    from bench.isolation import run_in_child
    from bench.outcome import Failure

    said, bars = [], []
    make_bar = lambda label, total: (bars.append(label), lambda c: None)[1]  # noqa: E731
    assert run_in_child(_double, 21, name="t", report=said.append, make_bar=make_bar) == 42
    assert said == ["doubling 21"] and bars == ["work"]
    raised = run_in_child(_raise, 1, name="t", report=said.append, make_bar=make_bar)
    assert isinstance(raised, Failure) and (raised.type, raised.reason, raised.kind) == ("ValueError", "bad job 1", "crash")
    assert "Traceback" in raised.traceback
    killed = run_in_child(_die, 1, name="t", report=said.append, make_bar=make_bar)
    assert isinstance(killed, Failure) and killed.type == "ProcessKilled" and killed.kind == "oom" and "SIGKILL" in killed.reason


def test_the_child_reloads_the_planned_plates_and_refuses_others(tmp_path):
    from dataclasses import replace

    from bench.child import MethodJob, run_method_job
    from bench.plan import RunPlan
    from bench.progress import no_bar
    from bench.runner import Runner
    from lpsr.errors import UserError

    runner = Runner(RunPlan(methods=["bicubic"], scale=8, profile="test", ocr=[], run_dir=tmp_path / "r"), report=lambda m: None)
    outcome = run_method_job(MethodJob(runner.ctx, "bicubic"), lambda m: None, no_bar)
    table = pd.read_csv(tmp_path / "r" / "bicubic" / "plates.csv", keep_default_na=False)
    assert outcome.status == "evaluated" and list(table["id"].astype(str)) == [p.id for p in runner.splits.test]
    other = replace(runner.ctx, facts=replace(runner.ctx.facts, fingerprint="0" * 16))
    with pytest.raises(UserError, match="fingerprint"):
        run_method_job(MethodJob(other, "bicubic"), lambda m: None, no_bar)
