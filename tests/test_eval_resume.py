"""Evaluation in resumable chunks (issue 19, bench/eval_chunks.py): a `bench run` SIGKILLed
during its evaluation resumes without redoing the chunks it finished and writes the same
plates.csv as a run never killed; chunks made by another network or setting are discarded;
a large test set keeps the images of FIGURE_PLATES plates, the same for every method."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from bench.eval_chunks import EvalChunks
from lpsr.evaluate import FIGURE_PLATES, figure_ids

REPO = Path(__file__).resolve().parents[1]
N_TEST, CHUNK = 96, 8


@pytest.fixture(scope="module")
def profile(tmp_path_factory) -> Path:
    prof = yaml.safe_load((REPO / "configs" / "profiles" / "test.yaml").read_text(encoding="utf-8"))
    prof["data"]["synthetic"]["test"] = N_TEST
    prof["eval"]["chunk_plates"] = CHUNK
    path = tmp_path_factory.mktemp("profile") / "chunked.yaml"
    path.write_text(yaml.safe_dump(prof), encoding="utf-8")
    return path


def _bench(profile: Path, run_dir: Path, **popen) -> subprocess.Popen:
    args = [sys.executable, "-c", "from bench.cli import main; main()", "run", "--methods", "bicubic", "--profile", str(profile),
            "--ocr", "ppocr", "--run-dir", str(run_dir), "--leaderboard-dir", str(run_dir.parent / "lb")]
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    return subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def test_sigkill_during_evaluation_resumes_the_unfinished_chunks_only(profile: Path, tmp_path: Path):
    straight = _bench(profile, tmp_path / "straight" / "runs")
    out, err = straight.communicate(timeout=600)
    assert straight.returncode == 0, err
    expected = (tmp_path / "straight" / "runs" / "bicubic" / "plates.csv").read_bytes()
    expected_hr = (tmp_path / "straight" / "runs" / "_hr" / "plates.csv").read_bytes()  # the ceiling, read in chunks too
    assert len(pd.read_csv(tmp_path / "straight" / "runs" / "bicubic" / "plates.csv")) == N_TEST

    run_dir = tmp_path / "killed" / "runs"
    eval_dir = run_dir / "bicubic" / "eval"
    proc = _bench(profile, run_dir, start_new_session=True)
    deadline = time.monotonic() + 600
    finished: list[Path] = []
    while time.monotonic() < deadline and proc.poll() is None:
        finished = sorted(eval_dir.glob("chunk-*.json")) if eval_dir.is_dir() else []
        if len(finished) >= 2:
            os.killpg(proc.pid, signal.SIGKILL)  # the bench process and the method's own process
            break
        time.sleep(0.005)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the evaluation ended before it could be killed"
    done = len(sorted(eval_dir.glob("chunk-*.json")))  # a chunk may have finished as the signal came
    assert 2 <= done < N_TEST // CHUNK and not (run_dir / "bicubic" / "result.json").exists()

    again = _bench(profile, run_dir)
    out, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    assert f"[bicubic] evaluation resumes: {done} of {N_TEST // CHUNK} chunks of {CHUNK} plates already scored" in out
    assert (run_dir / "bicubic" / "plates.csv").read_bytes() == expected
    assert (run_dir / "_hr" / "plates.csv").read_bytes() == expected_hr
    assert not eval_dir.exists() and not (run_dir / "_hr" / "eval").exists()  # removed once the results are written


def test_chunks_of_another_key_are_discarded(tmp_path: Path):
    floats = np.random.default_rng(0).random(2) * 40
    table = pd.DataFrame({"id": ["a", "b"], "text": ["X1", ""], "ocr_ppocr_text": ["", "007"], "psnr": [20.123456789012345, 1 / 3],
                          "psnr_y": floats})
    first = EvalChunks(tmp_path / "eval", {"weights": "aaa"}, 8)
    first.write(0, table, {"a": np.zeros((8, 24, 3), np.uint8)}, {"sr_seconds": 0.1, "ocr": {}})
    same = EvalChunks(tmp_path / "eval", {"weights": "aaa"}, 8)
    assert same.done(0)
    back, images, infos = same.read(1)
    pd.testing.assert_frame_equal(back, table)  # '' stays '' and floats round-trip to the last bit
    assert list(images) == ["a"] and infos[0]["plates"] == 2
    other = EvalChunks(tmp_path / "eval", {"weights": "bbb"}, 8)
    assert not other.done(0) and not (tmp_path / "eval" / "chunk-00000.csv").exists()


def test_figure_plates_are_all_of_a_small_test_set_and_the_same_few_of_a_large_one():
    small = [f"p{k}" for k in range(FIGURE_PLATES)]
    assert figure_ids(small) == set(small)
    large = [f"p{k}" for k in range(5000)]
    kept = figure_ids(large)
    assert len(kept) == FIGURE_PLATES and kept == figure_ids(list(reversed(large)))  # not the order
    assert kept <= set(large) and kept == figure_ids(large[:4000] + large[4000:])
