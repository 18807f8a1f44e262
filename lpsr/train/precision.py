"""Numeric precision of a training run: which one the device can honour, autocast, GradScaler.

bf16 / fp16 autocast runs where it is native (CUDA; a CPU with avx512/amx bf16 or fp16);
elsewhere the run falls back to fp32 with a note (emulated half precision is slower).  fp16
trains with a ``GradScaler`` whose state is part of the checkpoint.
"""
from __future__ import annotations

import contextlib

import torch


def resolve_precision(requested: str, device: torch.device) -> tuple[str, str | None]:
    """(precision actually used, note when it differs from the requested one)."""
    if requested == "fp32":
        return "fp32", None
    if device.type == "cuda":
        if requested == "bf16" and not torch.cuda.is_bf16_supported():
            return "fp32", "train.precision bf16: this GPU has no bf16 support; trained in fp32"
        return requested, None
    if device.type != "cpu":
        return "fp32", f"train.precision {requested}: autocast is only used on cpu and cuda; trained in fp32 on {device.type}"
    probe = {"bf16": "_is_mkldnn_bf16_supported", "fp16": "_is_mkldnn_fp16_supported"}[requested]
    try:
        native = bool(getattr(torch.ops.mkldnn, probe)())
    except Exception:
        native = False
    if not native:
        isa = "avx512_bf16 / amx_bf16" if requested == "bf16" else "avx512_fp16 / amx_fp16"
        return "fp32", f"train.precision {requested}: this CPU has no native {requested} ({isa}); trained in fp32 (emulated {requested} would be slower)"
    return requested, None


def autocast(device: torch.device, precision: str):
    """The forward/loss context of ``precision`` (nothing for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler | None:
    """A GradScaler for fp16 (gradients would underflow without one), else ``None``."""
    return torch.amp.GradScaler(device.type) if precision == "fp16" else None
