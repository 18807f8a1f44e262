"""The Bicubic floor upsamples with the degradation's kernel (PIL bicubic, a = -0.5)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from lpsr import registry
from lpsr.data.degrade import bicubic_downscale
from lpsr.data.patches import to_tensor, to_uint8
from lpsr.models.bicubic import pil_bicubic_resize, resize_matrix, upsample


def _plate(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("h, w, scale", [(8, 24, 8), (7, 13, 4), (5, 5, 2), (8, 24, 3)])
def test_bicubic_method_matches_pil_upsampling(h, w, scale):
    lr = _plate(h, w, seed=scale)
    ref = np.asarray(Image.fromarray(lr).resize((w * scale, h * scale), Image.BICUBIC)).astype(int)
    method = registry.get("bicubic").create(scale)
    sr = to_uint8(method.super_resolve(None, to_tensor([lr])))[0].astype(int)
    diff = np.abs(sr - ref)
    assert diff.max() <= 1  # PIL's fixed-point weights, at most one grey level
    assert (diff > 0).mean() < 0.005


def test_float_resize_is_within_rounding_of_pil_and_differentiable():
    lr = _plate(8, 24)
    ref = np.asarray(Image.fromarray(lr).resize((192, 64), Image.BICUBIC)).astype(float) / 255
    x = to_tensor([lr]).requires_grad_(True)
    out = pil_bicubic_resize(x, (64, 192))
    got = out.detach()[0].permute(1, 2, 0).clamp(0, 1).numpy()
    assert np.abs(got - ref).max() <= 1.5 / 255  # unrounded vs PIL rounding twice
    out.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_downscaling_weights_reproduce_the_degradation():
    hr = _plate(64, 192, seed=5)
    lr = bicubic_downscale(hr, 8).astype(int)
    got = to_uint8(pil_bicubic_resize(to_tensor([hr]), (8, 24), quantize=True))[0].astype(int)
    assert np.abs(got - lr).max() <= 1


def test_kernel_rows_sum_to_one_and_use_a_minus_half():
    m = resize_matrix(8, 64)
    assert torch.allclose(m.sum(1), torch.ones(64, dtype=torch.float64))
    # an interior output pixel at offset 0.25: Keys' cubic with a = -0.5
    from lpsr.models.bicubic import cubic

    assert cubic(0.5) == pytest.approx(0.5625) and cubic(1.5) == pytest.approx(-0.0625)
    assert cubic(1.5, a=-0.75) == pytest.approx(-0.09375)


def _keys(x: float, a: float) -> float:
    """Keys' (1981) cubic convolution kernel with parameter ``a``."""
    x = abs(x)
    if x <= 1:
        return (a + 2) * x**3 - (a + 3) * x**2 + 1
    if x < 2:
        return a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a
    return 0.0


def test_torch_variant_is_keys_a_075_and_describe_states_the_kernel():
    # oracle: an impulse of 0.25 on a grey row, x2; each output pixel is grey + 0.25 x the
    # Keys a = -0.75 weight at its distance from the impulse (half-pixel centres:
    # source position of output j is (j + 0.5) / 2 - 0.5), weights summing to one
    row = torch.full((1, 3, 4, 12), 0.5)
    row[..., 6] += 0.25
    torch_variant = registry.get("bicubic-torch").create(2)
    got = torch_variant.super_resolve(None, row)[0, :, 3]
    for j in range(6, 20):
        want = 0.5 + 0.25 * _keys((j + 0.5) / 2 - 0.5 - 6, a=-0.75)
        assert torch.allclose(got[:, j], torch.full((3,), want), atol=1e-6), j
    assert _keys(0.75, -0.75) != _keys(0.75, -0.5)  # the kernels differ where this checks them
    assert torch_variant.describe()["kernel"] == "torch" and "-0.75" in torch_variant.describe()["kernel_description"]
    default = registry.get("bicubic").create(8).describe()
    assert default["kernel"] == "pil" and "-0.5" in default["kernel_description"]
    assert default["ocr_seen_in_training"] == []
    assert "bicubic-torch" not in registry.groups()["all"]
    with pytest.raises(ValueError, match="kernel"):
        upsample(row, 2, "lanczos")
