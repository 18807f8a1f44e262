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


@pytest.mark.parametrize("crop", [0, 4])
@pytest.mark.parametrize("shape", [(32, 48, 3), (33, 47, 3)])
def test_ssim_y_matches_skimage_with_basicsr_settings(shape, crop):
    """scikit-image's SSIM with BasicSR's settings (11x11 Gaussian window, sigma 1.5,
    population covariance, K1 0.01, K2 0.03, peak 255, the valid region only) on
    scikit-image's own studio-range Y (``rgb2ycbcr``)."""
    from skimage.color import rgb2ycbcr
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(7)
    hr = rng.integers(0, 256, shape, dtype=np.uint8)
    sr = np.clip(hr.astype(int) + rng.integers(-20, 21, hr.shape), 0, 255).astype(np.uint8)
    y_sr, y_hr = (rgb2ycbcr(im)[..., 0] for im in (sr, hr))
    if crop:
        y_sr, y_hr = y_sr[crop:-crop, crop:-crop], y_hr[crop:-crop, crop:-crop]
    ref = structural_similarity(y_sr, y_hr, win_size=11, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                data_range=255, K1=0.01, K2=0.03)
    assert ssim_y(sr, hr, crop) == pytest.approx(ref, abs=1e-9)
    assert ssim_y(hr, hr, crop) == pytest.approx(1.0)


def test_shape_mismatch_is_an_error(pair):
    sr, hr = pair
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(sr[:-1], hr)
