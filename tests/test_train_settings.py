"""Training settings: one typed model, strict, with one-line errors naming the key."""
from __future__ import annotations

import pytest

from lpsr.config import ConfigError
from lpsr.train.settings import TrainSettings


def test_defaults_come_from_the_model_and_round_trip():
    s = TrainSettings.from_dict({})
    assert s == TrainSettings()
    d = s.to_dict()
    assert d["precision"] == "fp32" and d["ema_decay"] == 0.0 and d["warmup_iterations"] == 0
    assert d["betas"] == [0.9, 0.999] and d["lr_d"] is None and d["schedule"] == "cosine"
    assert TrainSettings.from_dict(d) == s


@pytest.mark.parametrize(
    "data, message",
    [
        ({"iterations": 4.7}, r"^profile p.yaml: train.iterations: expected an integer, got 4.7$"),
        ({"iterations": True}, r"^profile p.yaml: train.iterations: expected an integer, got True$"),
        ({"itterations": 5}, r"^profile p.yaml: train.itterations: unknown key 'itterations' \(did you mean 'iterations'\?\)"),
        ({"lr": "fast"}, r"train.lr: expected a number, got 'fast'"),
        ({"lr": True}, r"train.lr: expected a number, got True"),
        ({"batch_size": 0}, r"train.batch_size: must be >= 1, got 0"),
        ({"precision": "fp8"}, r"train.precision: expected one of 'fp32', 'bf16', 'fp16' or 'auto', got 'fp8'"),
        ({"channels_last": 1}, r"train.channels_last: expected true or false, got 1"),
        ({"betas": [0.9]}, r"train.betas: expected a list of two numbers"),
        ({"ema_decay": 1.0}, r"train.ema_decay: must be in \[0, 1\)"),
        ({"warmup_iterations": 300}, r"train.warmup_iterations: must be below iterations \(300\)"),
        ({"schedule": "step"}, r"train.lr_steps: schedule 'step' needs lr_steps"),
        ({"schedule": "step", "lr_steps": [9, 3]}, r"train.lr_steps: must be increasing"),
        ({"lr_steps": [3]}, r"train.lr_steps: only used with schedule 'step'"),
        ({"lr_d": 0}, r"train.lr_d: must be > 0"),
        (5, r"profile p.yaml: train: expected a mapping"),
    ],
)
def test_errors_are_one_line_and_name_the_key(data, message):
    with pytest.raises(ConfigError, match=message) as err:
        TrainSettings.from_dict(data, where="profile p.yaml: train")
    assert "\n" not in str(err.value)


def test_yaml_number_strings_and_lists():
    # PyYAML reads `lr: 1e-4` (no dot) as a string; a float setting accepts it
    s = TrainSettings.from_dict({"lr": "1e-4", "betas": [0.5, 0.99], "schedule": "step", "lr_steps": [100, 200], "lr_gamma": 0.5, "lr_d": 2e-4})
    assert s.lr == 1e-4 and s.betas == (0.5, 0.99) and s.lr_steps == (100, 200) and s.lr_for_discriminator() == 2e-4
    assert TrainSettings().lr_for_discriminator() == TrainSettings().lr


def test_settings_are_frozen():
    s = TrainSettings()
    with pytest.raises(Exception):
        s.iterations = 5  # type: ignore[misc]


def test_profiles_validate():
    from lpsr.config import configs_dir, read_yaml

    for path in sorted((configs_dir() / "profiles").glob("*.yaml")):
        TrainSettings.from_dict(read_yaml(path).get("train", {}), where=f"profile {path.name}: train")
