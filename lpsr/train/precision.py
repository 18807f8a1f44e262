"""Numeric precision of a training run: which one the device can honour, autocast, GradScaler.

bf16 / fp16 autocast runs where it is native (CUDA; a CPU with avx512/amx bf16 or fp16);
elsewhere the run falls back to fp32 with a note (emulated half precision is slower).  fp16
trains with a ``GradScaler`` whose state is part of the checkpoint.

``auto`` picks bf16 where it pays and is known to keep quality: the hardware runs it fast
(a CUDA GPU with bf16; a CPU with AMX tiles: Sapphire Rapids and later, 2-5x over fp32
there, while avx512_bf16 without AMX -- e.g. AMD Zen 4 -- is slower than fp32) **and** the
method's bf16 quality at equal iterations was measured (``Method.bf16_quality`` names the
report); fp32 otherwise.  The choice is recorded in ``result.json`` (``train.engine``).
Evaluation always runs in fp32, so scores compare across machines.
"""
from __future__ import annotations

import contextlib

import torch


def cpu_has_amx() -> bool:
    """Whether this CPU has AMX tiles (the bf16 matrix unit ``auto`` wants)."""
    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)
    if probe is not None:
        try:
            return bool(probe())
        except Exception:
            pass
    try:  # older torch: the kernel's flags
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            return "amx_bf16" in fh.read().split()
    except OSError:
        return False


def bf16_is_fast(device: torch.device) -> tuple[bool, str]:
    """Whether ``device`` runs bf16 natively fast (a CUDA GPU with bf16, a CPU with AMX), and why."""
    if device.type == "cuda":
        ok = torch.cuda.is_bf16_supported()
        return ok, "this GPU has bf16" if ok else "this GPU has no bf16"
    if device.type == "cpu":
        ok = cpu_has_amx()
        return ok, "this CPU has AMX-bf16" if ok else "this CPU has no AMX-bf16, where bf16 is slower than fp32"
    return False, f"autocast is only used on cpu and cuda, not {device.type}"


def resolve_auto(device: torch.device, quality: str | None) -> tuple[str, str]:
    """``train.precision: auto`` on ``device`` for a method whose bf16 quality report is
    ``quality`` (None: never measured): (precision, why)."""
    fast, where = bf16_is_fast(device)
    if fast and quality:
        return "bf16", f"train.precision auto: bf16 ({where}; quality at equal iterations: {quality})"
    if fast:
        return "fp32", f"train.precision auto: fp32 ({where}, but this method's bf16 quality was never measured)"
    return "fp32", f"train.precision auto: fp32 ({where})"


def resolve_precision(requested: str, device: torch.device, quality: str | None = None) -> tuple[str, str | None]:
    """(precision actually used, note when it differs from the requested one or was chosen
    by ``auto``); ``quality``: the method's bf16 quality report (:func:`resolve_auto`)."""
    if requested == "auto":
        return resolve_auto(device, quality)
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
