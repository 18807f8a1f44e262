"""Data-parallel training with torchrun: 2 CPU processes, gloo.

After N steps both ranks hold identical weights (network, EMA and the recipe's own learned
parameter, whose gradients the loop all-reduces itself); rank 0 alone writes the log and the
checkpoint; a run stopped by a crash resumes under DDP to the uninterrupted run's weights."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from lpsr.train.checkpoint import load_resume
from lpsr.train.ddp import DistContext, distributed_context
from test_train_loop import assert_same_weights, log_records
from cli_helpers import timeless_log

HERE = Path(__file__).resolve().parent
pytestmark = [pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="torch.distributed with gloo is needed"),
              pytest.mark.slow]

WORKER = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, {here!r})
    import torch
    from torch import nn
    from lpsr import registry
    from lpsr.method import TrainRecipe
    from lpsr.train import ddp, loop
    from lpsr.train.errors import TrainingInterrupted
    from lpsr.train.settings import TrainSettings
    from test_train_loop import _plates, build

    out, crash_at, term_at = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    ctx = ddp.distributed_context()
    assert ctx.enabled and ctx.world_size == 2

    class Recipe(TrainRecipe):
        def __init__(self):
            super().__init__("l1")
            self.gain = nn.Parameter(torch.tensor(1.0))  # a recipe parameter outside the DDP module

        def loss(self, sr, batch, iteration, total):
            value = self.gain * self.pixel_loss(sr, batch.hr) + 0.01 * (self.gain - 1.0) ** 2
            return value, {{"loss": value.detach(), "gain": self.gain.detach()}}

    Tiny = type(registry.get("tiny").create(4))

    class Scaled(Tiny):
        def recipe(self, model):
            self.last_recipe = Recipe()
            return self.last_recipe

    def progress(it, total, logs):
        if it == crash_at:
            raise SystemExit(3)
        if it == term_at and ctx.rank == 0:
            os.kill(os.getpid(), signal.SIGTERM)  # one rank gets the signal; all must stop at one iteration

    method = Scaled(4)
    model = build(method)
    settings = TrainSettings(iterations=8, batch_size=2, patch_size=32, lr=2e-3, val_every=4, log_every=2, val_plates=2,
                             threads=1, ema_decay=0.9)
    try:
        res = loop.train(method, model, _plates(6, 0), _plates(2, 1), settings, out, torch.device("cpu"), seed=3, progress=progress)
    except TrainingInterrupted as exc:
        print(f"rank {{ctx.rank}}: {{exc}}", flush=True)
        ddp.finish(143)
    state = {{"model": {{k: v.detach().clone() for k, v in model.state_dict().items()}},
             "gain": method.last_recipe.gain.detach().clone(), "best": res.best_iteration, "world": res.engine["world_size"]}}
    torch.save(state, os.path.join(out, f"rank{{ctx.rank}}.pt"))
    ddp.finish(0)  # not the interpreter's exit: see lpsr.train.ddp.finish
    """
)


def _env() -> dict[str, str]:
    """A launcher's environment: the repository importable, one thread, no torchrun variables inherited."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")]), "OMP_NUM_THREADS": "1"}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    return env


def _torchrun(out: Path, crash_at: int = 0, term_at: int = 0) -> subprocess.CompletedProcess:
    script = out.parent / f"{out.name}-worker.py"
    script.write_text(WORKER.format(here=str(HERE)))
    env = _env()
    out.mkdir(parents=True, exist_ok=True)
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(script), str(out), str(crash_at), str(term_at)], capture_output=True, text=True, timeout=600, env=env)


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp") / "straight"
    proc = _torchrun(out)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


def test_both_ranks_hold_identical_weights(straight):
    r0, r1 = torch.load(straight / "rank0.pt"), torch.load(straight / "rank1.pt")
    assert r0["world"] == r1["world"] == 2
    assert_same_weights(r0["model"], r1["model"], atol=0)
    assert torch.equal(r0["gain"], r1["gain"]) and float(r0["gain"]) != 1.0  # the recipe's parameter trained, in sync
    assert r0["best"] == r1["best"] > 0
    state = load_resume(straight / "ckpt" / "resume.pt")
    assert state["world_size"] == 2 and state["iteration"] == 8 and len(state["rng_ranks"]) == 2
    assert_same_weights(state["model"], r0["model"], atol=0)


def test_rank_zero_alone_logs_and_checkpoints(straight):
    its = [r["iteration"] for r in log_records(straight)]
    assert its == sorted(set(its)) == [2, 4, 6, 8]  # one line each: only rank 0 wrote
    assert sorted(p.name for p in (straight / "ckpt").iterdir()) == ["best.safetensors", "best_raw.safetensors", "resume.pt"]


def test_resume_under_ddp_gives_the_uninterrupted_weights(straight, tmp_path):
    out = tmp_path / "resumed"
    crashed = _torchrun(out, crash_at=6)
    assert crashed.returncode != 0
    assert load_resume(out / "ckpt" / "resume.pt")["iteration"] == 4
    proc = _torchrun(out)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for rank in (0, 1):
        assert_same_weights(torch.load(out / f"rank{rank}.pt")["model"], torch.load(straight / "rank0.pt")["model"], atol=0)
    assert timeless_log(out / "train.jsonl") == timeless_log(straight / "train.jsonl")


def test_sigterm_on_one_rank_stops_every_rank_at_one_checkpoint(straight, tmp_path):
    out = tmp_path / "stopped"
    stopped = _torchrun(out, term_at=5)
    assert stopped.returncode != 0
    text = stopped.stdout + stopped.stderr
    # the signal reached rank 0 during iteration 5; the ranks agree at the next log interval (6)
    assert "rank 0: method 'tiny': stopped by SIGTERM at iteration 6 of 8" in text, text[-3000:]
    assert "rank 1: method 'tiny': stopped by" in text, text[-3000:]
    assert load_resume(out / "ckpt" / "resume.pt")["iteration"] == 6
    proc = _torchrun(out)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for rank in (0, 1):
        assert_same_weights(torch.load(out / f"rank{rank}.pt")["model"], torch.load(straight / "rank0.pt")["model"], atol=0)
    assert timeless_log(out / "train.jsonl") == timeless_log(straight / "train.jsonl")


def test_distributed_context_from_the_environment(monkeypatch):
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    assert distributed_context() == DistContext(0, 1, 0) and not distributed_context().enabled
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("LOCAL_RANK", "0")
    ctx = distributed_context()
    assert ctx.enabled and not ctx.is_main and (ctx.rank, ctx.world_size, ctx.local_rank) == (2, 4, 0)


def test_torchrun_bench_run_ends_with_a_normal_result_and_leaderboard(tmp_path):
    """`torchrun --nproc_per_node 2 -m bench.cli run ...`: each method trains data-parallel in
    the torchrun processes; rank 0 writes result.json and the leaderboard."""
    import json

    env = _env()
    run_dir, boards = tmp_path / "run", tmp_path / "boards"
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "bench.cli", "run",
         "--methods", "bicubic,tiny", "--scale", "4", "--profile", "test", "--device", "cpu", "--ocr", "none",
         "--run-dir", str(run_dir), "--leaderboard-dir", str(boards)],
        capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads((run_dir / "tiny" / "result.json").read_text())
    assert result["status"] == "trained" and result["train"]["engine"]["world_size"] == 2
    assert json.loads((run_dir / "bicubic" / "result.json").read_text())["status"] != "failed"
    assert list(boards.glob("*.md")) and "tiny" in next(boards.glob("*.md")).read_text()
    state = load_resume(run_dir / "tiny" / "ckpt" / "resume.pt")
    assert state["world_size"] == 2 and state["iteration"] == 6
    assert not (run_dir / ".lock").exists()


FINISH_WORKER = textwrap.dedent(
    """
    import sys
    import torch
    import torch.distributed as dist
    from torch import nn
    from lpsr.train import ddp

    ctx = ddp.init_distributed("cpu")
    net = nn.parallel.DistributedDataParallel(nn.Linear(3, 3))  # DDP keeps gloo's threads past destroy
    net(torch.ones(2, 3)).sum().backward()
    agreed = ddp.broadcast_object({"rank": ctx.rank})  # the collective whose work outlived the rank in CI
    print(f"rank {ctx.rank} agreed on {agreed}", end="")  # no newline: shows that finish flushes
    ddp.finish(int(sys.argv[1]) if ctx.rank == 1 else 0)
    """
)


def _torchrun_finish(tmp_path: Path, rank1_code: int) -> subprocess.CompletedProcess:
    script = tmp_path / "finish-worker.py"
    script.write_text(FINISH_WORKER)
    env = _env()
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(script), str(rank1_code)], capture_output=True, text=True, timeout=300, env=env)


def test_finish_ends_every_rank_with_its_output_flushed(tmp_path):
    proc = _torchrun_finish(tmp_path, 0)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for rank in (0, 1):
        assert f"rank {rank} agreed on {{'rank': 0}}" in proc.stdout


def test_a_rank_that_finishes_with_an_error_fails_the_run(tmp_path):
    proc = _torchrun_finish(tmp_path, 3)
    assert proc.returncode != 0  # torchrun reports the failed rank; the other never waits forever
    assert "rank 1 agreed on {'rank': 0}" in proc.stdout


def test_finish_in_a_single_process_exits_with_the_code_and_flushes():
    code = "import sys; from lpsr.train import ddp; print('kept', end=''); sys.stderr.write('said'); ddp.finish(7)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=_env())
    assert (proc.returncode, proc.stdout, proc.stderr) == (7, "kept", "said")
