"""`bench sweep` through submitit's local executor: methods x seeds as a job array, each seed
in its own folder, collected by `bench report` into one leaderboard with mean ± std over seeds;
a job interrupted the way Slurm signals a time-out checkpoints, is requeued and resumes."""
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
import yaml

pytest.importorskip("submitit")

REPO = Path(__file__).resolve().parents[1]


def bench(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", "from bench.cli import main; main()", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=900)


@pytest.fixture(scope="module")
def sweep_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    res = bench("sweep", "--methods", "bicubic,tiny", "--seeds", "0,1", "--executor", "local", "--profile", "test", "--limit", "6",
                "--ocr", "none", "--scale", "8", "--time", "20", "--run-dir", str(out / "runs"), "--leaderboard-dir", str(out / "lb"),
                cwd=out)
    return out, res


def test_local_sweep_runs_methods_x_seeds_in_seed_folders(sweep_run):
    out, res = sweep_run
    assert res.returncode == 0, res.stdout + res.stderr
    assert "submitted 4 jobs (2 methods x 2 seeds)" in res.stdout
    runs = out / "runs"
    hashes = {}
    for seed in (0, 1):
        for name in ("bicubic", "tiny"):
            result = json.loads((runs / f"seed-{seed}" / name / "result.json").read_text())
            assert result["seed"] == seed and result["status"] in ("evaluated", "trained")
            hashes[(seed, name)] = result
        assert (runs / f"seed-{seed}" / "_hr" / "result.json").exists()
    # the same test plates for every seed (pinned data), different trained networks
    assert hashes[(0, "tiny")]["data"]["fingerprint"] == hashes[(1, "tiny")]["data"]["fingerprint"]
    assert hashes[(0, "tiny")]["train_key"] != hashes[(1, "tiny")]["train_key"]
    assert hashes[(0, "tiny")]["summary"] != hashes[(1, "tiny")]["summary"]
    assert list((runs / "submitit").iterdir())  # submitit's job folders (logs, pickles)


def test_sweep_leaderboard_has_mean_std_over_seeds_and_per_seed_rows(sweep_run):
    out, res = sweep_run
    md = (out / "lb" / "runs.md").read_text()
    assert "## Mean ± std over seeds (n = 2)" in md and "## Per seed" in md
    assert "- seeds: 0, 1" in md
    tiny_row = next(l for l in md.splitlines() if l.startswith("| tiny | 2 |"))
    assert tiny_row.count("±") >= 3  # PSNR, PSNR-Y, SSIM-Y as mean ± std
    board = pd.read_csv(out / "lb" / "runs.csv")
    per_seed = board[board["seed"].astype(str) != "mean"]
    assert sorted(zip(per_seed["seed"].astype(int), per_seed["method"])) == [(0, "bicubic"), (0, "tiny"), (1, "bicubic"), (1, "tiny")]
    mean = board[board["seed"].astype(str) == "mean"].set_index("method")
    tiny = per_seed[per_seed["method"] == "tiny"]["psnr"].astype(float)
    assert mean.loc["tiny", "psnr"] == pytest.approx(tiny.mean())
    assert mean.loc["tiny", "psnr.std_over_seeds"] == pytest.approx(tiny.std(ddof=1))
    assert mean.loc["bicubic", "psnr.std_over_seeds"] == pytest.approx(0.0, abs=1e-9)  # bicubic has no randomness
    data = json.loads((out / "lb" / "runs.json").read_text())
    assert data["meta"]["seeds"] == [0, 1] and len(data["per_seed"]) == 4
    assert "Mean ± std over seeds" in (out / "lb" / "runs.html").read_text()


def test_bench_report_collects_the_sweep_folder(sweep_run, tmp_path):
    out, _ = sweep_run
    res = bench("report", str(out / "runs"), "--out", str(tmp_path / "again"), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "leaderboard over seeds written to" in res.stdout
    a = pd.read_csv(out / "lb" / "runs.csv")
    b = pd.read_csv(tmp_path / "again.csv")
    pd.testing.assert_frame_equal(a, b)


def test_sweep_rejects_bad_options_in_one_line(tmp_path):
    res = bench("sweep", "--methods", "tiny", "--seeds", "0,x", "--executor", "local", cwd=tmp_path)
    assert res.returncode == 2 and res.stderr.strip().startswith("error: --seeds") and len(res.stderr.strip().splitlines()) == 1
    res = bench("sweep", "--methods", "tiny", "--executor", "slurm", "--profile", "test", cwd=tmp_path)
    assert res.returncode == 2 and "--partition" in res.stderr and len(res.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_interrupted_job_checkpoints_is_requeued_and_resumes(tmp_path, monkeypatch):
    """The signal Slurm sends before a time-out (USR2): the method's process writes its
    checkpoint and stops, submitit requeues the job, and it resumes from that checkpoint."""
    import submitit

    from bench import sweep as sw
    from bench.plan import RunPlan

    monkeypatch.chdir(tmp_path)
    data = yaml.safe_load((REPO / "configs" / "profiles" / "test.yaml").read_text())
    data["train"].update(iterations=400, val_every=100, log_every=10, val_plates=2)
    prof = tmp_path / "long.yaml"
    prof.write_text(yaml.safe_dump(data))
    plan = RunPlan(methods=["tiny"], scale=8, data="synthetic:0", profile=str(prof), ocr=[], run_dir=tmp_path / "runs", limit=6)
    executor = submitit.AutoExecutor(folder=str(tmp_path / "jobs" / "%j"), cluster="local")
    executor.update_parameters(timeout_min=20)
    jobs, pairs, _ = sw.submit(plan, [3], executor, lambda m: None)
    log = tmp_path / "runs" / "seed-3" / "tiny" / "train.jsonl"
    end = time.time() + 300
    while not (log.exists() and log.read_text().count("\n") >= 2):
        assert not jobs[0].done(), jobs[0].stderr()
        assert time.time() < end
        time.sleep(0.05)
    # what a Slurm job gets before its time limit or on preemption (submitit's --signal USR2@90),
    # sent to the job's process (the local controller's child)
    os.kill(_children(int(jobs[0].job_id))[0], signal.SIGUSR2)
    out = jobs[0].result()
    assert out["status"] == "trained", out
    result = json.loads((tmp_path / "runs" / "seed-3" / "tiny" / "result.json").read_text())
    assert 0 < result["train"]["resumed_from"] < 400 and result["train"]["iterations"] == 400
    logs = (jobs[0].stdout() or "") + (jobs[0].stderr() or "")
    assert "Requeued" in logs or "requeue" in logs.lower(), logs


def _children(pid: int) -> list[int]:
    """PIDs whose parent is ``pid`` (Linux /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    assert out, f"no child of {pid}"
    return out


def test_slurm_options_reach_the_sbatch_script(tmp_path, monkeypatch):
    """Without a cluster: the job array's sbatch script carries partition, GPUs, CPUs, memory,
    time, array parallelism and submitit's pre-timeout signal (checkpoint + requeue)."""
    from submitit.slurm import slurm

    from bench import sweep as sw

    monkeypatch.setattr(slurm.SlurmExecutor, "affinity", classmethod(lambda cls: 1))
    ex = sw.make_executor("slurm", tmp_path / "%j", partition="gpu", gpus=1, cpus=8, mem_gb=64, time_min=240,
                          array_parallelism=4, account="proj", qos=None, constraint="h100", name="lpsr-test")
    text = ex._executor._make_submission_file_text("python -m submitit.core._submit x", "uid")
    for line in ("#SBATCH --partition=gpu", "#SBATCH --gpus-per-node=1", "#SBATCH --cpus-per-task=8", "#SBATCH --mem=64GB",
                 "#SBATCH --time=240", "#SBATCH --account=proj", "#SBATCH --constraint=h100", "#SBATCH --signal=USR2@90",
                 "#SBATCH --job-name=lpsr-test"):
        assert line in text, (line, text)
    assert ex._executor.parameters.get("array_parallelism") == 4


def test_sweep_makes_every_job_use_the_degradations_and_names_the_folder_after_them(tmp_path):
    res = bench("sweep", "--methods", "bicubic,tiny", "--seeds", "0", "--executor", "local", "--profile", "test", "--limit", "6",
                "--ocr", "none", "--scale", "8", "--time", "20", "--degradation", "camera-mild", "--train-degradation", "camera",
                "--leaderboard-dir", str(tmp_path / "lb"), cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    seed0 = tmp_path / "runs" / "sweep-synthetic-x8-test-train-camera-camera-mild" / "seed-0"
    results = {name: json.loads((seed0 / name / "result.json").read_text()) for name in ("bicubic", "tiny")}
    assert {r["degradation"]["name"] for r in results.values()} == {"camera-mild"}  # the test LR of every job
    assert results["tiny"]["train_degradation"]["name"] == "camera"  # the training LR of the job that trains
    assert yaml.safe_load((seed0 / "tiny" / "config.yaml").read_text())["train"]["degradation"] == "camera"


def test_sweep_refuses_an_unknown_degradation_before_submitting(tmp_path):
    res = bench("sweep", "--methods", "tiny", "--seeds", "0", "--executor", "local", "--profile", "test",
                "--train-degradation", "fog", cwd=tmp_path)
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
    assert res.stderr.startswith("error: --train-degradation") and "fog" in res.stderr
    assert not (tmp_path / "runs").exists()


def test_sweep_scores_only_the_test_subsets_asked_for(tmp_path, ccpd_sample):
    from conftest import load_benchmark

    tree = load_benchmark("ccpd_tree").ccpd2019_tree(ccpd_sample, tmp_path / "CCPD2019", n_train=8, n_val=4, per_test_subset=2, n_no_plate=0)
    res = bench("sweep", "--methods", "bicubic", "--seeds", "0", "--executor", "local", "--profile", "test", "--ocr", "none",
                "--scale", "8", "--time", "20", "--data", f"ccpd:{tree}", "--test-subsets", "db,tilt",
                "--run-dir", str(tmp_path / "sw"), "--leaderboard-dir", str(tmp_path / "lb"), cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    result = json.loads((tmp_path / "sw" / "seed-0" / "bicubic" / "result.json").read_text())
    assert result["data"]["test_subsets"] == ["db", "tilt"] and result["data"]["n_test"] == 4
