"""PSNR / PSNR-Y / SSIM-Y follow BasicSR's convention exactly."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from lpsr.metrics.image import psnr, psnr_y, rgb_to_y, ssim_y


def basicsr_psnr_reference(img, img2, crop_border, test_y_channel):
    """A line-by-line transcription of BasicSR 1.4 ``calculate_psnr`` (which works on BGR
    images, as cv2 loads them), kept independent of lpsr's code for the parity check."""
    img = img[..., ::-1].astype(np.float64)  # BasicSR receives BGR
    img2 = img2[..., ::-1].astype(np.float64)
    if crop_border != 0:
        img = img[crop_border:-crop_border, crop_border:-crop_border, ...]
        img2 = img2[crop_border:-crop_border, crop_border:-crop_border, ...]
    if test_y_channel:
        def to_y(x):
            x = x.astype(np.float32) / 255.0
            y = np.dot(x, [24.966, 128.553, 65.481]) + 16.0  # bgr2ycbcr(y_only=True)
            return (y / 255.0)[..., None] * 255.0
        img, img2 = to_y(img), to_y(img2)
    img, img2 = img.astype(np.float64), img2.astype(np.float64)
    mse = np.mean((img - img2) ** 2)
    if mse == 0:
        return float("inf")
    return 10.0 * np.log10(255.0 * 255.0 / mse)


@pytest.fixture
def pair():
    rng = np.random.default_rng(7)
    hr = rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)
    sr = np.clip(hr.astype(int) + rng.integers(-20, 21, hr.shape), 0, 255).astype(np.uint8)
    return sr, hr


@pytest.mark.parametrize("crop", [0, 4])
def test_psnr_matches_basicsr(pair, crop):
    sr, hr = pair
    assert psnr(sr, hr, crop) == pytest.approx(basicsr_psnr_reference(sr, hr, crop, False), abs=1e-9)


@pytest.mark.parametrize("crop", [0, 4])
def test_psnr_y_matches_basicsr(pair, crop):
    sr, hr = pair
    # BasicSR converts to Y in float32; ours is float64: agreement to 1e-4 dB
    assert psnr_y(sr, hr, crop) == pytest.approx(basicsr_psnr_reference(sr, hr, crop, True), abs=1e-4)


def test_psnr_known_values():
    hr = np.full((8, 8, 3), 100, np.uint8)
    assert psnr(hr, hr) == float("inf")
    sr = hr + 5  # every value off by 5 -> MSE 25
    assert psnr(sr, hr) == pytest.approx(10 * np.log10(255**2 / 25))


def test_y_is_studio_range():
    white = np.full((1, 1, 3), 255, np.uint8)
    black = np.zeros((1, 1, 3), np.uint8)
    assert rgb_to_y(white)[0, 0] == pytest.approx(235.0, abs=1e-3)
    assert rgb_to_y(black)[0, 0] == pytest.approx(16.0)


def test_ssim_matches_skimage_style_reference(pair):
    sr, hr = pair
    # identical images: SSIM 1; a noisy copy: below 1; symmetric
    assert ssim_y(hr, hr) == pytest.approx(1.0)
    s = ssim_y(sr, hr)
    assert 0.0 < s < 1.0
    assert ssim_y(hr, sr) == pytest.approx(s)
    # BasicSR's _ssim on Y, transcribed: gaussian 11x11 sigma 1.5 via filter2D, valid part
    y1, y2 = rgb_to_y(sr), rgb_to_y(hr)
    k = cv2.getGaussianKernel(11, 1.5); w = np.outer(k, k.transpose())
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    m1 = cv2.filter2D(y1, -1, w)[5:-5, 5:-5]; m2 = cv2.filter2D(y2, -1, w)[5:-5, 5:-5]
    s1 = cv2.filter2D(y1**2, -1, w)[5:-5, 5:-5] - m1**2
    s2 = cv2.filter2D(y2**2, -1, w)[5:-5, 5:-5] - m2**2
    s12 = cv2.filter2D(y1 * y2, -1, w)[5:-5, 5:-5] - m1 * m2
    ref = (((2 * m1 * m2 + c1) * (2 * s12 + c2)) / ((m1**2 + m2**2 + c1) * (s1 + s2 + c2))).mean()
    assert s == pytest.approx(ref, abs=1e-12)


def test_shape_mismatch_is_an_error(pair):
    sr, hr = pair
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(sr[:-1], hr)
