"""LR from HR the paper's way: antialiased bicubic downscaling by the scale, nothing else.

CCPD photos already carry blur, noise and JPEG, so no extra degradation is added (paper,
Sec. 4.1).  PIL's BICUBIC resize is antialiased when shrinking (its filter support widens
with the factor), which is what "antialiased bicubic" means here; the LR is kept as uint8,
as a real small image would be.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from lpsr.data.record import DataError


def modcrop(hr: np.ndarray, scale: int, plate_id: str = "") -> np.ndarray:
    """Crop HR so both sides are multiples of ``scale``; error if the plate is smaller."""
    h, w = hr.shape[:2]
    if h < scale or w < scale:
        raise DataError(f"plate {plate_id or '?'} is {w}x{h} px, smaller than the scale x{scale}; use a smaller --scale or a larger --hr-size")
    return hr[: h - h % scale, : w - w % scale]


def bicubic_downscale(hr: np.ndarray, scale: int, plate_id: str = "") -> np.ndarray:
    """uint8 HxWx3 -> uint8 (H/s)x(W/s)x3, antialiased bicubic."""
    hr = modcrop(hr, scale, plate_id)
    h, w = hr.shape[:2]
    return np.asarray(Image.fromarray(hr).resize((w // scale, h // scale), Image.BICUBIC))


def make_pair(hr: np.ndarray, scale: int, plate_id: str = "") -> tuple[np.ndarray, np.ndarray]:
    """(LR, HR) with HR mod-cropped to the scale."""
    hr = modcrop(hr, scale, plate_id)
    return bicubic_downscale(hr, scale, plate_id), hr
