"""`bench check-method`: passes the built-ins it is run on, and names what a broken method gets wrong."""
from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from bench import check_method as cm
from bench.cli import cli
from lpsr import registry
from lpsr.method import Method


def test_tiny_passes_every_check():
    res = CliRunner().invoke(cli, ["check-method", "tiny", "--steps", "6"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    torch.manual_seed(0)
    net = registry.get("tiny").create(8).build()
    trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
    assert res.output.count("PASS") == 6 and f"{trainable:,} trainable parameters at x8" in res.output
    assert "x8 25x9->200x72" in res.output


def test_parameter_free_method_skips_what_does_not_apply():
    results = {r.name: r for r in cm.check_method("bicubic")}
    assert results["shapes"].status == "PASS" and results["output in [0, 1]"].status == "PASS"
    assert results["training lowers the loss"].status == "SKIP" and results["save/load round trip"].status == "SKIP"


class _Unclamped(nn.Module):
    def __init__(self, scale):
        super().__init__()
        self.scale = scale
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, lr):
        return nn.functional.interpolate(self.conv(lr), scale_factor=self.scale) * 3 - 1 + torch.rand(1).item()


class Broken(Method):
    name = "broken-for-test"
    source = "test"

    def build(self):
        return _Unclamped(self.scale if self.scale != 4 else 3)

    def super_resolve(self, model, lr):  # forgets to clamp
        return model(lr)


@pytest.mark.filterwarnings("ignore::UserWarning")  # the broken network's wrong output size, on purpose
def test_broken_method_fails_with_reasons(monkeypatch):
    entry = registry.Entry(name="broken-for-test", cls=Broken, origin="test")
    real_get = registry.get
    monkeypatch.setattr(registry, "get", lambda n: entry if n == "broken-for-test" else real_get(n))
    results = {r.name: r for r in cm.check_method("broken-for-test", steps=3)}
    assert results["shapes"].status == "FAIL" and "x4" in results["shapes"].detail
    assert results["output in [0, 1]"].status == "FAIL" and "clamp" in results["output in [0, 1]"].detail
    assert results["save/load round trip"].status == "FAIL"  # forward is not deterministic


def test_unknown_method_is_one_line_error():
    res = CliRunner().invoke(cli, ["check-method", "bicubc"])
    assert res.exit_code != 0 and "did you mean bicubic" in str(res.exception)


def test_training_check_runs_the_engine_step(monkeypatch):
    """check-method's training check goes through the engine's own train_step."""
    from lpsr.train import step

    calls = []
    real = step.train_step
    monkeypatch.setattr(step, "train_step", lambda state, batch, it: calls.append(it) or real(state, batch, it))
    result = cm.check_training("tiny", steps=3)
    assert result.status == "PASS" and calls == [1, 2, 3]
