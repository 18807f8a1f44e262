"""Checkpoints: network weights as safetensors, the resume checkpoint as ONE atomic file.

Files in ``<run>/<method>/ckpt/``:

* ``best.safetensors``: the weights evaluation and ``--weights`` use (the EMA weights when
  ``train.ema_decay`` > 0), metadata ``iteration`` and ``val_psnr``;
* ``best_raw.safetensors`` (EMA runs only): the raw weights with the best raw val PSNR;
* ``resume.pt``: everything a stopped run needs to continue exactly where it was, in one
  file written by one atomic rename: iteration, raw and EMA weights, optimiser, scaler and
  recipe states, RNG states, sampler state, best scores, the training settings, and the
  text of ``train.jsonl`` up to that iteration.  Weights, state and log therefore cannot
  disagree: a SIGKILL at any moment leaves either the previous or the new checkpoint.

A checkpoint is never deleted here; a run directory holding the old two-file format
(``last.safetensors`` + ``state.pt``) is refused with a message, not overwritten.
"""
from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save
from torch import nn

from lpsr.errors import UserError
from lpsr.io import atomic_path, fsync_dir

RESUME_FILE = "resume.pt"
RESUME_FORMAT = 3  # 3: keyed patch stream (sampler state = batches drawn), running logs, scaler
LEGACY_FILES = ("state.pt", "last.safetensors")


class CheckpointError(UserError):
    pass


def _tensors(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # clone() so tensors that share storage (tied weights, views) serialise independently
    return {k: v.detach().cpu().clone().contiguous() for k, v in state.items()}


def save_weights(model: nn.Module | dict[str, torch.Tensor], path: str | Path, metadata: dict[str, str] | None = None) -> None:
    state = model if isinstance(model, dict) else model.state_dict()
    tensors = _tensors(state)
    blob = canonical_safetensors(save(tensors, metadata=metadata or {}))
    with atomic_path(path) as tmp:
        tmp.write_bytes(blob)


def canonical_safetensors(blob: bytes) -> bytes:
    """The same safetensors file with its header's metadata keys sorted.

    safetensors keeps the metadata in a Rust HashMap, so the key order (and the file's
    sha256) differs from process to process; with sorted keys, identical weights and
    metadata give identical bytes (checkable with ``sha256sum``).  Hand-written because
    the library has no option for it; the tensor entries and data are kept as they are.
    """
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    meta = header.pop("__metadata__", None)
    out = {"__metadata__": dict(sorted(meta.items()))} if meta else {}
    out.update(header)
    text = json.dumps(out, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the format pads its header to 8 bytes with spaces
    return struct.pack("<Q", len(text)) + text + blob[8 + n:]


def weights_metadata(path: str | Path) -> dict[str, str] | None:
    """The metadata of a safetensors file, or ``None`` when it is missing or unreadable."""
    try:
        with safe_open(str(path), framework="pt") as fh:
            return dict(fh.metadata() or {})
    except Exception:
        return None


def load_weights(model: nn.Module, path: str | Path, flag: str = "--weights") -> None:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{flag} {path}: file not found")
    try:
        state = load_file(str(path))
    except Exception as exc:
        raise CheckpointError(f"{flag} {path}: not a readable safetensors file ({exc})") from None
    check_fits(model, state, f"{flag} {path}")
    model.load_state_dict(state)


def check_fits(model: nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise CheckpointError(
            f"{what}: weights do not fit this network "
            f"(missing {len(missing)} keys e.g. {missing[:2]}, unexpected {len(unexpected)} e.g. {unexpected[:2]}); "
            "was it trained for another method or scale?"
        )
    for key, value in state.items():
        if own[key].shape != value.shape:
            raise CheckpointError(f"{what}: tensor {key} has shape {tuple(value.shape)}, network expects {tuple(own[key].shape)}")


def save_resume(path: str | Path, state: dict[str, Any]) -> None:
    """Write the resume checkpoint in one atomic step (temp file, fsync, rename, dir fsync)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save({"format": RESUME_FORMAT, **state}, tmp)
    fsync_dir(path.parent)


def load_resume(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(
            f"{path}: resume checkpoint is unreadable ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); "
            "move it aside to train from the start"
        ) from None
    if not isinstance(state, dict) or state.get("format") != RESUME_FORMAT:
        raise CheckpointError(f"{path}: not a resume checkpoint of format {RESUME_FORMAT}; move it aside to train from the start")
    return state


def legacy_checkpoint(ckpt_dir: str | Path) -> list[Path]:
    """Files of the old two-file resume format present in ``ckpt_dir``."""
    return [Path(ckpt_dir) / name for name in LEGACY_FILES if (Path(ckpt_dir) / name).exists()]
