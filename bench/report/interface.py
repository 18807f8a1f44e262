"""What the reports ask the :class:`lpsr.method.Method` interface, through the registry, and
nothing else: a method's leaderboard position (``order``) and whether it is the floor
(``floor``: the no-parameter upsampler learned methods are compared with).  A row whose
method is no longer registered (a plug-in uninstalled since the run) sorts last and is
not a floor."""
from __future__ import annotations

import numpy as np
import torch

from lpsr import registry
from lpsr.errors import UserError

UNREGISTERED_ORDER = 10_000


def order(name: str) -> tuple[int, str]:
    """Sort key of a method's rows: its class's ``order``, then its name."""
    try:
        return (registry.get(name).cls.order, name)
    except UserError:
        return (UNREGISTERED_ORDER, name)


def is_floor(name: str) -> bool:
    """Whether ``name`` is a floor method (its class declares ``floor``; its variants too)."""
    try:
        return bool(registry.get(name).cls.floor)
    except UserError:
        return False


def is_the_floor(name: str) -> bool:
    """Whether ``name`` is THE floor method (a floor class under its own name, not a variant
    with other settings): the method the figures' floor column shows."""
    try:
        entry = registry.get(name)
    except UserError:
        return False
    return bool(entry.cls.floor) and not entry.base


def floor_name() -> str | None:
    """The registered floor method (first in leaderboard order), or None."""
    return next((n for n in registry.names() if is_the_floor(n)), None)


def floor_upscale(name: str, scale: int, lr: np.ndarray) -> np.ndarray:
    """``lr`` (uint8 HxWx3) enlarged by the floor method ``name`` exactly as its row was
    made: its own ``super_resolve`` (kernel included), rounded to uint8."""
    from lpsr.data.patches import to_tensor, to_uint8

    method = registry.get(name).create(scale)
    with torch.no_grad():
        return to_uint8(method.super_resolve(None, to_tensor([lr])))[0]
