"""The camera chain, written with PIL and numpy so that anyone can check it (issue 21):

    HR --(motion blur)--> --GaussianBlur(radius=sigma)--> antialiased bicubic / s
       --> + N(0, noise_sigma) per channel on 0-255, clipped and rounded --> JPEG(quality)

blur: PIL ``ImageFilter.GaussianBlur(radius=sigma)`` on the HR (sigma in HR pixels);
downscale: ``lpsr.data.degrade.bicubic_downscale`` (today's LR, not a copy of it);
noise: on the LR, drawn from the sample's own generator; JPEG: PIL's encoder on the LR at
that quality with its default 4:2:0 chroma subsampling.
"""
from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image, ImageFilter

from lpsr.data.degrade import bicubic_downscale


def gaussian_blur(hr: np.ndarray, sigma: float) -> np.ndarray:
    """PIL's Gaussian blur with ``radius=sigma`` (PIL's radius is the standard deviation)."""
    if sigma <= 0:
        return hr
    return np.asarray(Image.fromarray(hr).filter(ImageFilter.GaussianBlur(radius=sigma)))


def add_noise(lr: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise of std ``sigma`` (0-255 scale) per pixel and channel, clipped, rounded.
    Always draws (also for sigma 0), so a sample's later draws do not depend on it."""
    noise = rng.normal(0.0, 1.0, lr.shape) * sigma
    return np.clip(np.round(lr.astype(np.float64) + noise), 0, 255).astype(np.uint8)


def jpeg(lr: np.ndarray, quality: int) -> np.ndarray:
    """Encode and decode with PIL's JPEG encoder at ``quality`` (default 4:2:0 subsampling)."""
    buf = io.BytesIO()
    Image.fromarray(lr).save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"))


def motion_kernel(length: float, angle: float) -> np.ndarray:
    """Normalised kernel of a straight motion ``length`` HR pixels long at ``angle`` degrees
    (counter-clockwise from the image's x axis): the segment is cut into many equal pieces
    whose midpoints are splatted bilinearly, so sub-pixel lengths and any angle are exact in
    the mean.  Hand-written: neither PIL nor OpenCV offers one, and kornia/albumentations
    (which do) are not dependencies of the project for one 10-line kernel."""
    size = 2 * int(np.ceil(length / 2)) + 1
    c = size // 2
    n = max(2, int(np.ceil(length * 16)))
    t = ((np.arange(n) + 0.5) / n - 0.5) * length
    a = np.deg2rad(angle)
    x, y = c + t * np.cos(a), c - t * np.sin(a)
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = x - x0, y - y0
    kernel = np.zeros((size, size))
    for dy, dx, w in ((0, 0, (1 - fx) * (1 - fy)), (0, 1, fx * (1 - fy)), (1, 0, (1 - fx) * fy), (1, 1, fx * fy)):
        np.add.at(kernel, (y0 + dy, x0 + dx), w)
    return kernel / kernel.sum()


def motion_blur(hr: np.ndarray, length: float, angle: float) -> np.ndarray:
    """The HR convolved with :func:`motion_kernel` (OpenCV, mirrored border), rounded to uint8."""
    if length <= 0:
        return hr
    out = cv2.filter2D(hr.astype(np.float32), -1, motion_kernel(length, angle).astype(np.float32),
                       borderType=cv2.BORDER_REFLECT_101)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def camera_chain(hr: np.ndarray, scale: int, blur_sigma: float, noise_sigma: float, jpeg_quality: int,
                 rng: np.random.Generator, plate_id: str = "") -> np.ndarray:
    """blur on the HR -> antialiased bicubic / ``scale`` -> noise -> JPEG, all on uint8 RGB."""
    lr = bicubic_downscale(gaussian_blur(hr, blur_sigma), scale, plate_id)
    return jpeg(add_noise(lr, noise_sigma, rng), jpeg_quality)
