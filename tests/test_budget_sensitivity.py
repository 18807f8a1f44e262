"""benchmarks/budget_sensitivity.py: the base study profile with chosen methods' budgets
multiplied, a valid profile the runner loads."""
from __future__ import annotations

import pytest

from conftest import load_benchmark
from lpsr.config import ConfigError
from lpsr.profile import load_profile, validate_profile


@pytest.fixture(scope="module")
def budget():
    return load_benchmark("budget_sensitivity")


def test_budgets_and_milestones_scale_and_the_rest_is_the_base(budget):
    _, cpu = load_profile("cpu")
    raw = budget.scaled_profile("cpu", ["msrn", "pecl-pull-skip"], 3)
    assert sorted(raw["per_method"]) == ["msrn", "pecl-pull-skip"]
    for m in ("msrn", "pecl-pull-skip"):
        base = cpu.per_method[m]
        assert raw["per_method"][m]["iterations"] == 3 * base["iterations"]
        assert raw["per_method"][m]["val_every"] == 3 * base["val_every"]
    assert raw["per_method"]["msrn"]["lr_steps"] == [3 * s for s in cpu.per_method["msrn"]["lr_steps"]]
    assert raw["per_method"]["msrn"]["lr_gamma"] == cpu.per_method["msrn"]["lr_gamma"]
    assert raw["train"] == cpu.train.to_dict() and raw["seed"] == cpu.seed
    assert "3x the budget of msrn, pecl-pull-skip" in raw["description"]
    prof = validate_profile(raw, "scaled")
    assert prof.train_for("msrn").iterations == 3 * cpu.per_method["msrn"]["iterations"]


def test_a_method_without_a_budget_is_a_one_line_error(budget, tmp_path, capsys):
    with pytest.raises(ConfigError, match=r"--methods bicubic: profile cpu gives it no per_method iterations to scale; choose among .*msrn"):
        budget.scaled_profile("cpu", ["bicubic"], 2)
    assert budget.main(["--methods", "nope", "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--methods nope" in err
    assert not (tmp_path / "r").exists()
