"""Checkpoints: network weights as safetensors, the resume checkpoint as ONE atomic file.

Files in ``<run>/<method>/ckpt/``:

* ``best.safetensors``: the weights evaluation and ``--weights`` use (the EMA weights when
  ``train.ema_decay`` > 0), metadata ``iteration`` and ``val_psnr``;
* ``best_raw.safetensors`` (EMA runs only): the raw weights with the best raw val PSNR;
* ``resume.pt``: everything a stopped run needs to continue exactly where it was, in one
  file written by one atomic rename (:func:`write_checkpoint`): the run's identity
  (method, scale, seed, processes, training settings), the training state
  (:meth:`lpsr.train.state.TrainState.state_dict`: raw and EMA weights, optimiser, scaler
  and recipe states, RNG states, sampler position, best scores) and the run log's part
  (the text of ``train.jsonl`` up to that iteration, the interval's step logs, seconds).
  Weights, state and log therefore cannot disagree: a SIGKILL at any moment leaves either
  the previous or the new checkpoint.  :func:`restore` loads it back (refusing one of
  another run) and makes ``train.jsonl`` and the exported best weights agree with it.

A checkpoint is never deleted here; a run directory holding the old two-file format
(``last.safetensors`` + ``state.pt``) is refused with a message, not overwritten.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save
from torch import nn

from lpsr.errors import UserError
from lpsr.io import atomic_path, fsync_dir, is_stray_temp, write_text
from lpsr.train import ddp
from lpsr.train.runlog import RunLog, reconcile_log
from lpsr.train.state import TrainState, rng_state

RESUME_FILE = "resume.pt"
RESUME_FORMAT = 3  # 3: keyed patch stream (sampler state = batches drawn), running logs, scaler
LEGACY_FILES = ("state.pt", "last.safetensors")
#: settings that may change between a run and its resume (they do not change the maths)
RESUME_FREE_SETTINGS = ("threads", "compile", "loader_workers")


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


# --------------------------------------------------------------------------- a run's checkpoint folder
def prepare_folder(ckpt: Path, out_dir: Path, main: bool) -> list[str]:
    """Remove temporary files of writes a killed process never finished (rank 0; never a
    checkpoint) and refuse the old two-file format.  Returns notes for the result."""
    notes = []
    stray = _clean_stray_temps(ckpt, out_dir) if main else []
    if stray:
        notes.append(f"removed {len(stray)} unfinished temporary file(s) of a killed write: {', '.join(stray[:3])}")
    if not (ckpt / RESUME_FILE).exists() and legacy_checkpoint(ckpt):
        raise CheckpointError(
            f"{ckpt}: holds a checkpoint in the old two-file format ({', '.join(p.name for p in legacy_checkpoint(ckpt))}), "
            "which cannot be resumed safely; move that folder aside to train from the start"
        )
    return notes


def _clean_stray_temps(*folders: Path) -> list[str]:
    removed = []
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            if path.is_file() and is_stray_temp(path):
                try:
                    path.unlink()
                    removed.append(path.name)
                except OSError:
                    pass
    return removed


def write_checkpoint(path: Path, state: TrainState, log: RunLog, run: dict[str, Any], main: bool) -> None:
    """Write the resume checkpoint (rank 0; a collective under DDP: every rank calls it).
    ``run``: the run's identity (method, scale, seed, world_size, settings)."""
    rngs = ddp.agree(rng_state(), "all") if run["world_size"] > 1 else None
    if main:
        save_resume(path, {**run, **state.state_dict(), "rng_ranks": rngs, **log.state_dict()})
    ddp.barrier()


def restore(path: Path, state: TrainState, log: RunLog, run: dict[str, Any], rank: int, main: bool, notes: list[str]) -> None:
    """Continue from ``path`` when it exists (weights, state, RNG, log), else start afresh
    (an attempt killed before its first checkpoint leaves log lines: they are dropped)."""
    if not path.exists():
        if main and log.path.exists():
            write_text(log.path, "")
        ddp.barrier()
        return
    saved = load_resume(path)
    _check_same_run(saved, run, path)
    check_fits(state.model, saved["model"], f"{path}")
    rngs = saved.get("rng_ranks")
    state.load_state_dict(saved, rng=rngs[rank] if run["world_size"] > 1 and rngs else None)
    log.load_state_dict(saved)
    error = None
    if main:
        try:
            reconcile_log(log.path, log.text, state.iteration, notes)
            ema = state.ema is not None
            _reconcile_best(path.parent / BEST_FILE, state.scores.best, state.iteration, saved["ema" if ema else "model"], notes)
            if ema:
                _reconcile_best(path.parent / BEST_RAW_FILE, state.scores.best_raw, state.iteration, saved["model"], notes)
        except CheckpointError as exc:
            error = str(exc)
    error = ddp.agree(error, "main")  # every rank stops with rank 0's error, none waits for it
    if error:
        raise CheckpointError(error)
    ddp.barrier()


def _check_same_run(saved: dict, run: dict[str, Any], path: Path) -> None:
    if saved.get("method") != run["method"] or saved.get("scale") != run["scale"]:
        raise CheckpointError(
            f"{path}: checkpoint of method '{saved.get('method')}' x{saved.get('scale')}, not '{run['method']}' x{run['scale']}; "
            "move it aside to train from the start"
        )
    if saved.get("seed") != run["seed"]:
        raise CheckpointError(f"{path}: checkpoint of seed {saved.get('seed')}, this run has seed {run['seed']}; move it aside to train from the start")
    old, new = dict(saved.get("settings") or {}), run["settings"]
    changed = sorted(k for k in set(old) | set(new) if k not in RESUME_FREE_SETTINGS and old.get(k) != new.get(k))
    if changed:
        diffs = ", ".join(f"{k} {old.get(k)!r} -> {new.get(k)!r}" for k in changed[:4])
        raise CheckpointError(f"{path}: checkpoint made with other training settings ({diffs}); move it aside to train from the start")
    if int(saved.get("world_size", 1)) != run["world_size"]:
        raise CheckpointError(
            f"{path}: checkpoint of a run on {saved.get('world_size', 1)} process(es), this run has {run['world_size']}; "
            "resume with the same number of processes, or move it aside to train from the start"
        )


# --------------------------------------------------------------------------- best weights
BEST_FILE, BEST_RAW_FILE = "best.safetensors", "best_raw.safetensors"


def export_best(path: Path, model: nn.Module | dict[str, torch.Tensor], best: dict) -> None:
    save_weights(model, path, {"iteration": str(best["iteration"]), "val_psnr": f"{best['psnr']:.4f}"})


def _reconcile_best(path: Path, best: dict, iteration: int, weights: dict[str, torch.Tensor], notes: list[str]) -> None:
    """Make the exported best weights agree with the checkpoint's record of the best.

    The best weights are exported right after the checkpoint that records them, so a crash
    in between leaves an older file: its weights are then the checkpoint's own weights."""
    if best["iteration"] == 0:
        return
    meta = weights_metadata(path)
    if meta is not None and meta.get("iteration") == str(best["iteration"]):
        return
    if best["iteration"] == iteration:
        export_best(path, weights, best)
        notes.append(f"{path.name} re-exported from the checkpoint at iteration {iteration} (the run stopped before writing it)")
        return
    found = "missing or unreadable" if meta is None else f"from iteration {meta.get('iteration')}"
    raise CheckpointError(
        f"{path}: is {found}, but the resume checkpoint's best is iteration {best['iteration']}; "
        "the run directory was changed by hand: restore that file or move ckpt/ aside to train from the start"
    )
