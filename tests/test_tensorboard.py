"""``--log tensorboard``: training losses, learning rate, the recipe's learned loss weights and
validation PSNR go to ``<method dir>/tb/`` (read back with tensorboard's EventAccumulator)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

from lpsr import registry  # noqa: E402
from lpsr.errors import UserError  # noqa: E402
from lpsr.method import TrainRecipe  # noqa: E402
from lpsr.train.loop import train  # noqa: E402
from lpsr.train.settings import TrainSettings  # noqa: E402
from test_train_loop import SETTINGS, _plates, build, log_records  # noqa: E402

CPU = torch.device("cpu")


class WeightedTiny(type(registry.get("tiny").create(4))):
    """tiny with a learned loss weight that the recipe logs (like PECL's w_pixel / w_con)."""

    def recipe(self, model):
        return WeightedRecipe()


class WeightedRecipe(TrainRecipe):
    def __init__(self):
        super().__init__("l1")
        self.theta = nn.Parameter(torch.tensor(0.0))

    def loss(self, sr, batch, iteration, total):
        w = torch.sigmoid(self.theta)
        value = w * self.pixel_loss(sr, batch.hr) + (1 - w) * 0.01
        return value, {"loss": value.detach(), "w_pixel": w.detach()}


def _scalars(folder):
    acc = EventAccumulator(str(folder))
    acc.Reload()
    return {tag: {e.step: e.value for e in acc.Scalars(tag)} for tag in acc.Tags()["scalars"]}


def test_tensorboard_holds_losses_lr_weights_and_val_psnr(tmp_path):
    method = WeightedTiny(4)
    train(method, build(method), _plates(6, 0), _plates(3, 1), TrainSettings(**SETTINGS), tmp_path, CPU, log=("tensorboard",))
    events = list((tmp_path / "tb").glob("events.out.tfevents.*"))
    assert events, "no event file under tb/"
    got = _scalars(tmp_path / "tb")
    assert {"train/loss", "train/lr", "train/w_pixel", "val/psnr"} <= set(got)
    log = log_records(tmp_path)
    for rec in log:  # the same numbers as train.jsonl, at the same iterations
        if "loss" in rec:
            assert got["train/loss"][rec["iteration"]] == pytest.approx(rec["loss"], rel=1e-6)
            assert got["train/w_pixel"][rec["iteration"]] == pytest.approx(rec["w_pixel"], rel=1e-6)
        if "val_psnr" in rec:
            assert got["val/psnr"][rec["iteration"]] == pytest.approx(rec["val_psnr"], rel=1e-6)
    assert sorted(got["val/psnr"]) == [4, 8, 12]


def test_no_tensorboard_folder_unless_asked(tmp_path):
    method = registry.get("tiny").create(4)
    train(method, build(method), _plates(4, 0), _plates(2, 1), TrainSettings(**{**SETTINGS, "iterations": 2, "val_every": 2}), tmp_path, CPU)
    assert not (tmp_path / "tb").exists()


def test_unknown_logger_is_a_user_error(tmp_path):
    method = registry.get("tiny").create(4)
    with pytest.raises(UserError, match="--log wandb: unknown logger"):
        train(method, build(method), _plates(4, 0), _plates(2, 1), TrainSettings(**SETTINGS), tmp_path, CPU, log=("wandb",))


def test_cli_log_option_parses():
    from bench.cli import _parse_log

    assert _parse_log("none") == () and _parse_log("tensorboard") == ("tensorboard",)
    with pytest.raises(UserError, match="unknown logger 'wandb'"):
        _parse_log("wandb")


def test_resumed_run_purges_the_events_past_its_checkpoint(tmp_path):
    method = WeightedTiny(4)

    class Crash(Exception):
        pass

    def crash(it, total, logs):
        if it == 7:  # after the checkpoint at 4: the log line of 6 is written, then dropped on resume
            raise Crash

    settings = TrainSettings(**SETTINGS)
    with pytest.raises(Crash):
        train(method, build(method), _plates(6, 0), _plates(3, 1), settings, tmp_path, CPU, progress=crash, log=("tensorboard",))
    train(method, build(method), _plates(6, 0), _plates(3, 1), settings, tmp_path, CPU, log=("tensorboard",))
    got = _scalars(tmp_path / "tb")
    want = {r["iteration"]: r["loss"] for r in log_records(tmp_path) if "loss" in r}
    assert sorted(got["train/loss"]) == sorted(want)
    for it, loss in want.items():
        assert got["train/loss"][it] == pytest.approx(loss, rel=1e-6)


def test_bench_run_log_tensorboard_and_deterministic(tmp_path):
    """The CLI options reach the training loop (through the method's own process)."""
    import json
    import subprocess
    import sys

    run_dir = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-c", "from bench.cli import main; main()", "run", "--methods", "tiny", "--scale", "4", "--profile", "test",
         "--device", "cpu", "--ocr", "none", "--run-dir", str(run_dir), "--leaderboard-dir", str(tmp_path / "boards"),
         "--log", "tensorboard", "--deterministic"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    got = _scalars(run_dir / "tiny" / "tb")
    assert {"train/loss", "train/lr", "val/psnr"} <= set(got)
    engine = json.loads((run_dir / "tiny" / "result.json").read_text())["train"]["engine"]
    assert engine["deterministic"] is True and engine["log"] == ["tensorboard"]
