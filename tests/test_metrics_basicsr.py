"""PSNR / PSNR-Y / SSIM-Y parity with the real BasicSR functions (``basicsr.metrics``).

BasicSR 1.4 imports ``torchvision.transforms.functional_tensor``, which current torchvision
renamed to ``_functional_tensor``; the usual shim aliases the old name before the import.
BasicSR works on BGR images (as cv2 loads them); ours take RGB, so the arrays are flipped.
"""
from __future__ import annotations

import sys

import numpy as np
import pytest

from lpsr.metrics.image import psnr, psnr_y, ssim_y


@pytest.fixture(scope="module")
def basicsr_metrics():
    try:
        import torchvision.transforms.functional_tensor  # noqa: F401  (old torchvision)
    except ImportError:
        try:
            import torchvision.transforms._functional_tensor as ft
        except ImportError:  # pragma: no cover
            pytest.skip("torchvision without _functional_tensor")
        sys.modules["torchvision.transforms.functional_tensor"] = ft
    metrics = pytest.importorskip("basicsr.metrics", reason="basicsr is in the test extra: pip install -e '.[test]'")
    return metrics.calculate_psnr, metrics.calculate_ssim


def _pairs():
    rng = np.random.default_rng(7)
    hr = rng.integers(0, 256, (64, 192, 3), dtype=np.uint8)
    noisy = np.clip(hr.astype(int) + rng.integers(-20, 21, hr.shape), 0, 255).astype(np.uint8)
    smooth = np.clip(np.round(hr * 0.8 + 30), 0, 255).astype(np.uint8)
    odd = rng.integers(0, 256, (33, 47, 3), dtype=np.uint8)
    odd_sr = np.clip(odd.astype(int) + rng.integers(-5, 6, odd.shape), 0, 255).astype(np.uint8)
    return [("noisy", noisy, hr), ("smooth", smooth, hr), ("odd-size", odd_sr, odd)]


@pytest.mark.parametrize("crop", [0, 4])
@pytest.mark.parametrize("case", _pairs(), ids=lambda c: c[0])
def test_psnr_and_psnr_y_match_basicsr(basicsr_metrics, case, crop):
    calc_psnr, _ = basicsr_metrics
    _, sr, hr = case
    bgr = lambda x: np.ascontiguousarray(x[..., ::-1])  # noqa: E731
    assert psnr(sr, hr, crop) == pytest.approx(calc_psnr(bgr(sr), bgr(hr), crop, test_y_channel=False), abs=1e-9)
    # BasicSR converts to Y in float32, ours in float64
    assert psnr_y(sr, hr, crop) == pytest.approx(calc_psnr(bgr(sr), bgr(hr), crop, test_y_channel=True), abs=1e-4)


@pytest.mark.parametrize("crop", [0, 4])
@pytest.mark.parametrize("case", _pairs(), ids=lambda c: c[0])
def test_ssim_y_matches_basicsr(basicsr_metrics, case, crop):
    _, calc_ssim = basicsr_metrics
    _, sr, hr = case
    bgr = lambda x: np.ascontiguousarray(x[..., ::-1])  # noqa: E731
    assert ssim_y(sr, hr, crop) == pytest.approx(calc_ssim(bgr(sr), bgr(hr), crop, test_y_channel=True), abs=1e-6)


def test_identical_images(basicsr_metrics):
    calc_psnr, calc_ssim = basicsr_metrics
    hr = np.random.default_rng(1).integers(0, 256, (32, 48, 3), dtype=np.uint8)
    assert psnr(hr, hr) == calc_psnr(hr, hr, 0) == float("inf")
    assert ssim_y(hr, hr) == pytest.approx(calc_ssim(hr, hr, 0, test_y_channel=True))
