"""Reading plate images from disk and resizing them to the benchmark's HR size."""
from __future__ import annotations

import io
import os
from pathlib import Path

import cv2
import numpy as np

from lpsr.data.record import HR_SIDE_MAX, HR_SIDE_MIN, HR_SIZE_TEXT, DataError
from lpsr.errors import UserError

#: the most pixels (width x height) an image file may have; ``$LPSR_MAX_IMAGE_PIXELS`` overrides
MAX_IMAGE_PIXELS = 40_000_000
MAX_PIXELS_ENV = "LPSR_MAX_IMAGE_PIXELS"


def max_image_pixels() -> int:
    """The decoded-size limit for image files: ``$LPSR_MAX_IMAGE_PIXELS`` or 40 megapixels."""
    raw = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not raw:
        return MAX_IMAGE_PIXELS
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise UserError(f"${MAX_PIXELS_ENV}={raw!r}: expected a positive number of pixels, e.g. {MAX_IMAGE_PIXELS}")
    return value


def header_size(data: bytes) -> tuple[int, int] | None:
    """(W, H) from an image file's header without decoding it (Pillow reads the header
    lazily); ``None`` when Pillow does not know the format (cv2 then decides)."""
    from PIL import Image

    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None  # our limit applies, not Pillow's bomb check (it hides the size)
    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.size
    except Exception:  # not an image Pillow knows: cv2 decides below
        return None
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def read_rgb(path: str | Path) -> np.ndarray:
    """Decode an image file at full resolution -> RGB uint8 HxWx3; DataError if unreadable
    or larger than :func:`max_image_pixels` (checked on the header, before decoding).

    Decodes via the file's bytes + ``cv2.imdecode`` so non-ASCII paths work too.  Grey and
    RGBA files are converted to 3-channel RGB.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read image {path}: {exc.strerror or exc}") from None
    size, limit = header_size(data), max_image_pixels()
    if size is not None and size[0] * size[1] > limit:
        raise DataError(f"image {path} is {size[0]}x{size[1]} px, more than the {limit} px limit "
                        f"(set ${MAX_PIXELS_ENV} to raise it); shrink or remove it")
    try:
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR) if data else None
    except cv2.error:
        image = None
    if image is None:
        raise DataError(f"cannot decode image {path}: file is empty or not a valid image; remove or replace it")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def resize_to(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize to ``size`` = (W, H): area averaging when shrinking both sides, else bicubic."""
    w, h = size
    if image.shape[1] == w and image.shape[0] == h:
        return np.ascontiguousarray(image)
    shrink = image.shape[1] >= w and image.shape[0] >= h
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def check_hr_size(hr_size) -> tuple[int, int]:
    """Validate an (W, H) plate size and return it as a tuple of ints."""
    try:
        w, h = (int(v) for v in hr_size)
    except (TypeError, ValueError):
        raise DataError(f"hr_size must be two integers (width, height), got {hr_size!r}") from None
    if w < HR_SIDE_MIN or h < HR_SIDE_MIN:
        raise DataError(f"hr_size {w}x{h} is too small; use at least {HR_SIDE_MIN}x{HR_SIDE_MIN} (default {HR_SIZE_TEXT})")
    if w > HR_SIDE_MAX or h > HR_SIDE_MAX:
        raise DataError(f"hr_size {w}x{h} is too large; each side must be at most {HR_SIDE_MAX} px (default {HR_SIZE_TEXT})")
    return w, h


def check_source_region(name: str, width: float, height: float, hr_size: tuple[int, int], scale: int | None) -> None:
    """A plate's region in its source image must hold real detail: DataError when it has
    collapsed (corners on one point, a 2x1 px crop) or is smaller than the LR size the
    benchmark feeds the network (``hr_size / scale``): its HR would be an upscaled blur and
    its scores meaningless."""
    if not (width >= 2 and height >= 2):
        raise DataError(f"{name}: degenerate plate, its source region is {width:.0f}x{height:.0f} px (corners collapsed or crop too small)")
    if scale:
        need_w, need_h = hr_size[0] / scale, hr_size[1] / scale
        if width < need_w or height < need_h:
            raise DataError(
                f"{name}: degenerate plate, its source region is {width:.0f}x{height:.0f} px, smaller than the "
                f"{need_w:.0f}x{need_h:.0f} px LR size at x{scale} (its HR would be an upscaled blur)"
            )
