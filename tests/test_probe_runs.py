"""Issue 20, cases that need a real (tiny) run: `--weights` from the run itself rerun, a
damaged sr_test.npz in `bench report`, `--leaderboard-dir` on `bench report`, two run
directories writing one leaderboard, and the local sweep's `--array-parallelism`."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from cli_helpers import run_main


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def bench_run(capsys, tmp_path: Path, run_dir: str, *extra: str):
    return run_main(capsys, "run", "--methods", "bicubic,tiny", "--profile", "test", "--ocr", "none", "--limit", "4",
                    "--run-dir", str(tmp_path / run_dir), "--leaderboard-dir", str(tmp_path / "lb"), *extra)


@pytest.fixture
def trained(tmp_path, capsys):
    code, out, err = bench_run(capsys, tmp_path, "R")
    assert code == 0, err
    return tmp_path


def test_weights_from_the_run_itself_can_be_rerun_identically(trained, capsys):
    best = trained / "R" / "tiny" / "ckpt" / "best.safetensors"
    digest = sha(best)
    weights = ["--weights", f"tiny={best}"]
    code, out, err = bench_run(capsys, trained, "R", *weights)
    assert code == 0, err
    assert f"and a copy stays at {best} so the same command reruns" in out
    moved = sorted((trained / "R" / "tiny" / "superseded").glob("*/ckpt/best.safetensors"))
    assert len(moved) == 1 and sha(moved[0]) == digest and sha(best) == digest
    result = json.loads((trained / "R" / "tiny" / "result.json").read_text())
    code, out, err = bench_run(capsys, trained, "R", *weights)  # the identical command: a no-op
    assert code == 0, err
    assert "[tiny] results for config" in out and "skipped" in out
    assert json.loads((trained / "R" / "tiny" / "result.json").read_text()) == result
    assert len(list((trained / "R" / "tiny" / "superseded").iterdir())) == 1 and sha(best) == digest


def test_report_with_a_damaged_sr_npz_is_written_and_names_the_file(trained, capsys):
    npz = trained / "R" / "tiny" / "sr_test.npz"
    assert npz.is_file()
    npz.write_bytes(b"PK\x03\x04 not really a zip" * 4)
    code, out, err = run_main(capsys, "report", str(trained / "R"), "--out", str(trained / "rep" / "x"))
    assert code == 0 and "Traceback" not in out + err, err
    md = (trained / "rep" / "x.md").read_text()
    line = next(l for l in md.splitlines() if l.startswith("- not made: qualitative grid"))
    assert f"{npz}: unreadable image file (" in line and "rerun `bench run` for that method" in line
    assert (trained / "rep" / "x.html").is_file() and (trained / "rep" / "figures").is_dir()


def test_report_takes_leaderboard_dir_like_run(trained, capsys):
    code, out, err = run_main(capsys, "report", str(trained / "R"), "--leaderboard-dir", str(trained / "lb2"))
    assert code == 0, err
    assert (trained / "lb2" / "R.md").is_file() and (trained / "lb2" / "R.json").is_file()
    code, out, err = run_main(capsys, "report", str(trained / "R"), "--leaderboard-dir", str(trained / "lb2"), "--out", "x")
    assert code == 2 and err.strip() == "error: bench report: give --out STEM or --leaderboard-dir DIR, not both"
    (trained / "plain").write_text("x")
    code, out, err = run_main(capsys, "report", str(trained / "R"), "--leaderboard-dir", str(trained / "plain"))
    assert code == 2 and err.strip() == f"error: --leaderboard-dir {trained / 'plain'} is a file; pass a folder path"


def test_second_run_dir_replacing_a_leaderboard_says_so(trained, capsys):
    md = trained / "lb" / "synthetic-x8-test.md"
    assert md.is_file()
    code, out, err = bench_run(capsys, trained, "R")  # the same run dir again: no note
    assert code == 0 and "held the leaderboard of run directory" not in out
    code, out, err = bench_run(capsys, trained, "R2")
    assert code == 0, err
    assert (f"note: {md} held the leaderboard of run directory 'R'; it is replaced by R2's "
            "(pass another --leaderboard-dir to keep both)") in out


# ------------------------------------------------------------------ local sweep parallelism
class FakeJob:
    """A job that ends a fixed number of clock ticks after it starts; every poll of any job
    is one tick.  The executor records the most jobs ever running at once."""

    def __init__(self, executor, fn, ticks=50):
        self.executor, self.fn, self.job_id = executor, fn, str(len(executor.jobs))
        self.end = executor.clock + ticks
        executor.jobs.append(self)
        executor.peak = max(executor.peak, sum(not j.ended for j in executor.jobs))

    @property
    def ended(self):
        return self.executor.clock >= self.end

    def done(self):
        self.executor.clock += 1
        return self.ended

    def wait(self):
        self.executor.clock = max(self.executor.clock, self.end)

    def result(self):
        self.wait()
        return self.fn()


class FakeExecutor:
    def __init__(self):
        self.jobs, self.peak, self.clock = [], 0, 0

    def submit(self, fn):
        return FakeJob(self, fn)


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_throttled_local_executor_runs_at_most_limit_jobs(limit):
    from bench.local_throttle import ThrottledExecutor
    from bench.sweep import wait

    inner = FakeExecutor()
    ex = ThrottledExecutor(inner, limit)
    with ex.batch():
        jobs = [ex.submit(lambda i=i: {"method": "m", "seed": i, "status": "trained"}) for i in range(10)]
    assert len(inner.jobs) == limit and [j.job_id for j in jobs[limit:]] == ["(queued)"] * (10 - limit)  # the rest wait
    lines: list[str] = []
    ends = wait(jobs, [("m", i) for i in range(10)], lines.append, poll_s=0)
    assert [e["seed"] for e in ends] == list(range(10)) and len(lines) == 10
    assert len(inner.jobs) == 10 and inner.peak == limit


def test_throttled_result_starts_and_waits_for_a_queued_job():
    from bench.local_throttle import ThrottledExecutor

    inner = FakeExecutor()
    ex = ThrottledExecutor(inner, 1)
    first, second = ex.submit(lambda: 1), ex.submit(lambda: 2)
    assert second.result() == 2 and first.result() == 1 and inner.peak == 1


def test_local_sweep_executor_honours_array_parallelism(tmp_path):
    pytest.importorskip("submitit")
    from bench.local_throttle import ThrottledExecutor
    from bench.sweep import make_executor

    common = dict(partition=None, gpus=0, cpus=None, mem_gb=None, time_min=5, account=None, qos=None, constraint=None, name="t")
    assert isinstance(make_executor("local", tmp_path / "%j", array_parallelism=2, **common), ThrottledExecutor)
    assert not isinstance(make_executor("local", tmp_path / "%j", array_parallelism=None, **common), ThrottledExecutor)


def test_local_sweep_with_array_parallelism_and_no_wait_is_refused(tmp_path, capsys):
    pytest.importorskip("submitit")
    code, out, err = run_main(capsys, "sweep", "--methods", "bicubic", "--seeds", "0,1", "--executor", "local", "--profile", "test",
                              "--ocr", "none", "--array-parallelism", "1", "--no-wait", "--run-dir", str(tmp_path / "s"),
                              "--leaderboard-dir", str(tmp_path / "lb"))
    assert code == 2 and err.strip() == ("error: --executor local --array-parallelism N starts the queued jobs from this "
                                         "process; drop --no-wait")
    assert not (tmp_path / "s").exists()
