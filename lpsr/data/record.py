"""The unit of data every source yields: one rectified HR plate with its true text."""
from __future__ import annotations

from lpsr.errors import UserError

from dataclasses import dataclass, field

import numpy as np


#: the HR plate size (W, H) when nothing else is asked for: the one source of the default
#: (a profile's ``data.hr_size``, every data loader's signature default)
HR_SIZE: tuple[int, int] = (192, 64)
HR_SIZE_TEXT = f"{HR_SIZE[0]}x{HR_SIZE[1]}"
#: the sides an HR plate may have (a plate, not a photo: memory stays bounded)
HR_SIDE_MIN, HR_SIDE_MAX = 8, 1024


class DataError(UserError):
    """Bad data input (missing path, unparsable name, unreadable image): one-line message."""


@dataclass
class PlateRecord:
    """One plate.  ``hr`` is an RGB uint8 array of shape (H, W, 3)."""

    id: str
    hr: np.ndarray
    text: str
    source: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.hr.dtype != np.uint8 or self.hr.ndim != 3 or self.hr.shape[2] != 3:
            raise DataError(f"plate {self.id}: HR image must be uint8 HxWx3, got {self.hr.dtype} {self.hr.shape}")


@dataclass
class PlateSplits:
    """train / val / test lists of plates plus what the data is called in outputs."""

    name: str
    train: list[PlateRecord]
    val: list[PlateRecord]
    test: list[PlateRecord]
    skipped: int = 0
    info: dict = field(default_factory=dict)

    def split(self, which: str) -> list[PlateRecord]:
        if which not in ("train", "val", "test"):
            raise DataError(f"unknown split {which!r}; use train, val or test")
        return getattr(self, which)
