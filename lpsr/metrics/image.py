"""PSNR, PSNR-Y and SSIM-Y with the SR community's convention (BasicSR's ``calculate_psnr`` /
``calculate_ssim``), on uint8-range float64 arrays.

Written by hand because the reference (basicsr) no longer imports with current
torchvision, and the convention is a few lines: Y is ITU-R BT.601 *studio range*
(16-235) computed from RGB in [0, 1] and scaled back to [0, 255]; PSNR uses peak 255;
SSIM uses an 11x11 Gaussian window (sigma 1.5) applied with ``cv2.filter2D`` and keeps the
valid region only.  ``crop_border`` pixels are removed from every side first.  Full-range
YCbCr (PIL/OpenCV ``YCbCr``) gives different numbers; outputs state the convention.
"""
from __future__ import annotations

import cv2
import numpy as np

Y_CONVENTION = "BT.601 studio-range Y (16-235), BasicSR calculate_psnr(test_y_channel=True)"

# BT.601 studio-range luma weights for R, G, B in [0, 1]; offset 16 (on the 0-255 scale).
_Y_WEIGHTS = np.array([65.481, 128.553, 24.966])


def _prepare(img: np.ndarray, crop_border: int) -> np.ndarray:
    img = np.asarray(img, dtype=np.float64)
    if crop_border:
        img = img[crop_border:-crop_border, crop_border:-crop_border, ...]
    return img


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """RGB HxWx3 on [0, 255] -> studio-range Y (HxW) on [0, 255], float64."""
    img = np.asarray(img, dtype=np.float64) / 255.0
    return img @ _Y_WEIGHTS + 16.0


def _check(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(f"image shapes differ: {a.shape} vs {b.shape}")


def psnr(sr: np.ndarray, hr: np.ndarray, crop_border: int = 0) -> float:
    """PSNR in dB over all RGB values (peak 255)."""
    _check(sr, hr)
    a, b = _prepare(sr, crop_border), _prepare(hr, crop_border)
    mse = np.mean((a - b) ** 2)
    return float("inf") if mse == 0 else float(10.0 * np.log10(255.0**2 / mse))


def psnr_y(sr: np.ndarray, hr: np.ndarray, crop_border: int = 0) -> float:
    """PSNR in dB on studio-range Y."""
    _check(sr, hr)
    return psnr(rgb_to_y(_prepare(sr, crop_border)), rgb_to_y(_prepare(hr, crop_border)))


def _ssim_single(a: np.ndarray, b: np.ndarray) -> float:
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    k = cv2.getGaussianKernel(11, 1.5)
    window = k @ k.T
    mu1 = cv2.filter2D(a, -1, window)[5:-5, 5:-5]
    mu2 = cv2.filter2D(b, -1, window)[5:-5, 5:-5]
    mu1_sq, mu2_sq, mu12 = mu1**2, mu2**2, mu1 * mu2
    s1 = cv2.filter2D(a**2, -1, window)[5:-5, 5:-5] - mu1_sq
    s2 = cv2.filter2D(b**2, -1, window)[5:-5, 5:-5] - mu2_sq
    s12 = cv2.filter2D(a * b, -1, window)[5:-5, 5:-5] - mu12
    ssim_map = ((2 * mu12 + c1) * (2 * s12 + c2)) / ((mu1_sq + mu2_sq + c1) * (s1 + s2 + c2))
    return float(ssim_map.mean())


def ssim_y(sr: np.ndarray, hr: np.ndarray, crop_border: int = 0) -> float:
    """SSIM on studio-range Y (needs at least 11x11 pixels after cropping)."""
    _check(sr, hr)
    a, b = rgb_to_y(_prepare(sr, crop_border)), rgb_to_y(_prepare(hr, crop_border))
    if min(a.shape) < 11:
        raise ValueError(f"SSIM needs images of at least 11x11 after crop_border, got {a.shape[1]}x{a.shape[0]}")
    return _ssim_single(a, b)
