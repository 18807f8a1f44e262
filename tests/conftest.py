"""Shared fixtures.  Tests run on CPU with few threads (CI has 2 cores)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

torch.set_num_threads(2)

REPO = Path(__file__).resolve().parents[1]
CCPD_SAMPLE = REPO.parent / "shared" / "data" / "ccpd-sample"


@pytest.fixture(scope="session")
def ccpd_sample() -> Path:
    if not (CCPD_SAMPLE / "images").is_dir():
        pytest.skip(f"CCPD sample not found at {CCPD_SAMPLE} (it lives in ../shared beside the repo)")
    return CCPD_SAMPLE
