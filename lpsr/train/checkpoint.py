"""Checkpoints: network weights as safetensors, training state for resume as a torch file.

``best.safetensors`` / ``last.safetensors`` hold the SR network only (what ``--weights``
loads and what evaluation uses).  ``state.pt`` holds everything else needed to continue
exactly where a run stopped: iteration, optimiser and scheduler states, the loss recipe's
state (learnable weights, discriminator, trainable Siamese), RNG states, the best score.
All are written atomically.
"""
from __future__ import annotations

from lpsr.errors import UserError

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from lpsr.io import atomic_path


class CheckpointError(UserError):
    pass


def save_weights(model: nn.Module, path: str | Path, metadata: dict[str, str] | None = None) -> None:
    # clone() so tensors that share storage (tied weights, views) serialise independently
    tensors = {k: v.detach().cpu().clone().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata or {})


def load_weights(model: nn.Module, path: str | Path, flag: str = "--weights") -> None:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{flag} {path}: file not found")
    try:
        state = load_file(str(path))
    except Exception as exc:
        raise CheckpointError(f"{flag} {path}: not a readable safetensors file ({exc})") from None
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise CheckpointError(
            f"{flag} {path}: weights do not fit this network "
            f"(missing {len(missing)} keys e.g. {missing[:2]}, unexpected {len(unexpected)} e.g. {unexpected[:2]}); "
            "was it trained for another method or scale?"
        )
    for key, value in state.items():
        if own[key].shape != value.shape:
            raise CheckpointError(f"{flag} {path}: tensor {key} has shape {tuple(value.shape)}, network expects {tuple(own[key].shape)}")
    model.load_state_dict(state)


def save_state(path: str | Path, state: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_state(path: str | Path) -> dict[str, Any]:
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise CheckpointError(f"{path}: training state is unreadable ({exc}); delete it to start over") from None
