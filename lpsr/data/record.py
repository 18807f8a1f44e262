"""The unit of data every source yields: one rectified HR plate with its true text (or, for
LR-only data, one LR plate as a camera gave it, with no HR)."""
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
    """One plate.  ``hr`` is an RGB uint8 array of shape (H, W, 3); LR-only data (a real LR
    crop, no HR) has ``hr=None`` and the LR plate, at the run's LR size, in ``lr``."""

    id: str
    hr: np.ndarray | None
    text: str
    source: str = ""
    meta: dict = field(default_factory=dict)
    lr: np.ndarray | None = None

    def __post_init__(self) -> None:
        if (self.hr is None) == (self.lr is None):
            raise DataError(f"plate {self.id}: give either an HR image or (LR-only data) an LR image, not {'both' if self.hr is not None else 'neither'}")
        for what, image in (("HR", self.hr), ("LR", self.lr)):
            if image is not None and (image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3):
                raise DataError(f"plate {self.id}: {what} image must be uint8 HxWx3, got {image.dtype} {image.shape}")


@dataclass
class PlateSplits:
    """train / val / test lists of plates plus what the data is called in outputs."""

    name: str
    train: list[PlateRecord]
    val: list[PlateRecord]
    test: list[PlateRecord]
    skipped: int = 0
    info: dict = field(default_factory=dict)

    @property
    def lr_only(self) -> bool:
        """LR-only data: its plates are real LR crops without HR (readability-only scoring)."""
        return any(r.hr is None for r in self.train + self.val + self.test)

    def split(self, which: str) -> list[PlateRecord]:
        if which not in ("train", "val", "test"):
            raise DataError(f"unknown split {which!r}; use train, val or test")
        return getattr(self, which)
