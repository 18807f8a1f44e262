"""Device-wide settings for a training run: cudnn autotuning or the deterministic settings."""
from __future__ import annotations

import contextlib
import os

import torch

#: cuBLAS workspace setting that makes its GEMMs deterministic (CUDA docs, "Reproducibility")
CUBLAS_DETERMINISTIC = ":4096:8"


@contextlib.contextmanager
def device_settings(device: torch.device, deterministic: bool):
    """cudnn.benchmark on CUDA (autotuned convolutions), or the documented deterministic
    settings (torch "Reproducibility" notes); the previous values are restored after."""
    prev = (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic,
            torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    try:
        if deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_DETERMINISTIC)
            torch.backends.cudnn.benchmark = False
            torch.backends.cudnn.deterministic = True
            torch.use_deterministic_algorithms(True)
        elif device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        yield
    finally:
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = prev[0], prev[1]
        torch.use_deterministic_algorithms(prev[2], warn_only=prev[3])
