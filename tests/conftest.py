"""Shared fixtures.  Tests run on CPU with few threads: CI has 2 cores, and the suite runs
on two pytest-xdist workers (pyproject's addopts), one torch thread each."""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else 2)

REPO = Path(__file__).resolve().parents[1]
CCPD_SAMPLE = REPO.parent / "shared" / "data" / "ccpd-sample"


def load_benchmark(name: str) -> ModuleType:
    """``benchmarks/<name>.py`` (a script folder, not a package) imported as module ``name``."""
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def ccpd_sample() -> Path:
    if not (CCPD_SAMPLE / "images").is_dir():
        pytest.skip(f"CCPD sample not found at {CCPD_SAMPLE} (it lives in ../shared beside the repo)")
    return CCPD_SAMPLE
