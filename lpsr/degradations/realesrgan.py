"""Real-ESRGAN's second-order degradation (Wang et al. 2021), built from Real-ESRGAN's own
code in ``basicsr`` (``basicsr.data.degradations`` for the blur and sinc kernels and the JPEG
encoder, ``basicsr.utils.img_process_util.filter2D`` for the filtering) and following
``RealESRGANDataset.__getitem__`` + ``RealESRGANModel.feed_data`` step by step:

    blur(k1) -> resize(up/down/keep) -> Gaussian|Poisson noise -> JPEG
    -> [p] blur(k2) -> resize -> noise -> either [resize to LR + sinc -> JPEG] or [JPEG -> resize + sinc]
    -> clamp, round

What differs, and why:
- Every random number comes from the sample's own numpy generator (``keys.py``): basicsr's
  ``random_*`` helpers draw from the global ``random`` / ``np.random`` / torch RNGs, which would
  make test LR depend on what ran before.  So the draws (kernel type, sigmas, angles, betas,
  scales, modes, noise, qualities) are made here, with the recipe's distributions, and the
  deterministic basicsr builders (``bivariate_Gaussian`` ...) are called with them.  The noise
  itself is drawn here with basicsr's formulas (``generate_gaussian_noise_pt`` /
  ``generate_poisson_noise_pt``) for the same reason.
- JPEG is basicsr's OpenCV encoder (``add_jpg_compression``'s bytes, integer quality) rather
  than the recipe's differentiable ``DiffJPEG``: a real encoder, one sample at a time.
- The HR is degraded as it is (the recipe degrades an USM-sharpened HR because its targets
  are sharpened; ours are the plain HR plates).
- Kernel sizes are capped for x8 plates (``max_kernel_fraction``, see the preset YAML and
  docs/degradations.md): a kernel never spans more than that fraction of the short side of
  the image it filters, so the recipe's 7-21 px kernels stay as they are on the 64-px HR and
  shrink on the small intermediate and 24x8 LR images.
"""
from __future__ import annotations

import math
import sys
from functools import lru_cache
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from lpsr.errors import UserError

# ``stage`` / ``preset`` below are presets.RealEsrganStage / RealEsrganPreset; not imported
# (not even for type checking) because presets.py imports this module: imports run one way
RealEsrganStage = RealEsrganPreset = Any

_MODES = ("area", "bilinear", "bicubic")


@lru_cache(maxsize=1)
def basicsr_parts() -> Any:
    """``basicsr.data.degradations`` and ``filter2D``, imported once.

    basicsr 1.4 imports ``torchvision.transforms.functional_tensor``, which torchvision 0.17+
    renamed ``_functional_tensor``; the usual shim (as in tests/test_metrics_basicsr.py)
    aliases the old name first."""
    try:
        import torchvision.transforms.functional_tensor  # noqa: F401  (old torchvision)
    except ImportError:
        try:
            import torchvision.transforms._functional_tensor as ft
        except ImportError as exc:  # pragma: no cover
            raise UserError("degradation 'realesrgan' needs torchvision's functional_tensor module; install torchvision>=0.19") from exc
        sys.modules["torchvision.transforms.functional_tensor"] = ft
    try:
        import basicsr.data.degradations as degradations
        from basicsr.utils.img_process_util import filter2D
    except ImportError as exc:
        raise UserError("degradation 'realesrgan' uses Real-ESRGAN's own code from basicsr: pip install 'basicsr>=1.4.2'") from exc
    return degradations, filter2D


def kernel_cap(short_side: int, fraction: float) -> int:
    """The largest odd kernel size <= ``fraction`` x ``short_side``, at least 3."""
    cap = int(math.floor(fraction * short_side))
    return max(3, cap if cap % 2 else cap - 1)


def _kernel_size(sizes: tuple[int, int], rng: np.random.Generator, short_side: int, fraction: float) -> int:
    """An odd size drawn uniformly from ``sizes`` (inclusive), capped by :func:`kernel_cap`."""
    lo, hi = sizes
    size = int(rng.choice(np.arange(lo, hi + 1, 2)))
    return min(size, kernel_cap(short_side, fraction))


def _sinc_kernel(rng: np.random.Generator, size: int, cutoff: tuple[float, float]) -> np.ndarray:
    degradations, _ = basicsr_parts()
    return degradations.circular_lowpass_kernel(rng.uniform(*cutoff), size, pad_to=False)


def blur_kernel(stage: RealEsrganStage, rng: np.random.Generator, short_side: int, fraction: float) -> np.ndarray:
    """One of the recipe's kernels (iso/aniso/generalised/plateau Gaussian, or a sinc with
    ``sinc_prob``), drawn as ``RealESRGANDataset`` and ``random_mixed_kernels`` draw it."""
    degradations, _ = basicsr_parts()
    size = _kernel_size(stage.kernel_sizes, rng, short_side, fraction)
    if rng.uniform() < stage.sinc_prob:
        return _sinc_kernel(rng, size, stage.sinc_cutoff_small if size < 13 else stage.sinc_cutoff_large)
    kind = stage.kernel_list[int(rng.choice(len(stage.kernel_list), p=np.asarray(stage.kernel_prob) / sum(stage.kernel_prob)))]
    iso = kind.endswith("iso") and not kind.endswith("aniso")
    sig_x = rng.uniform(*stage.blur_sigma)
    sig_y = sig_x if iso else rng.uniform(*stage.blur_sigma)
    theta = 0.0 if iso else rng.uniform(-math.pi, math.pi)
    if kind in ("iso", "aniso"):
        return degradations.bivariate_Gaussian(size, sig_x, sig_y, theta, isotropic=iso)
    if kind.startswith("generalized"):
        beta = rng.uniform(*stage.betag_range)
        return degradations.bivariate_generalized_Gaussian(size, sig_x, sig_y, theta, beta, isotropic=iso)
    beta = rng.uniform(*stage.betap_range)
    return degradations.bivariate_plateau(size, sig_x, sig_y, theta, beta, isotropic=iso)


def _filter(img: torch.Tensor, kernel: np.ndarray) -> torch.Tensor:
    """basicsr's ``filter2D`` (mirrored border); an image too small to mirror the kernel's
    half-width (a 1-px side) is left as it is."""
    _, filter2D = basicsr_parts()
    if min(img.shape[-2:]) <= kernel.shape[0] // 2:
        return img
    return filter2D(img, torch.from_numpy(np.ascontiguousarray(kernel, dtype=np.float32))[None])


def _resize(img: torch.Tensor, size: tuple[int, int], rng: np.random.Generator) -> torch.Tensor:
    mode = _MODES[int(rng.integers(len(_MODES)))]
    size = (max(1, size[0]), max(1, size[1]))
    return F.interpolate(img, size=size, mode=mode)


def _noise(img: torch.Tensor, stage: RealEsrganStage, rng: np.random.Generator) -> torch.Tensor:
    """Gaussian (``gaussian_noise_prob``) or Poisson noise, grey with ``gray_noise_prob``:
    basicsr's ``generate_gaussian_noise_pt`` / ``generate_poisson_noise_pt`` formulas, drawn
    from ``rng``; clipped to [0, 1] and not rounded, as in ``feed_data``."""
    x = img[0].numpy().astype(np.float64)
    gray = rng.uniform() < stage.gray_noise_prob
    if rng.uniform() < stage.gaussian_noise_prob:
        sigma = rng.uniform(*stage.noise_range)
        noise = rng.standard_normal(x.shape[1:])[None].repeat(3, 0) if gray else rng.standard_normal(x.shape)
        noise = noise * sigma / 255.0
    else:
        scale = rng.uniform(*stage.poisson_scale_range)
        src = (0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2])[None] if gray else x  # torchvision's rgb_to_grayscale
        src = np.clip(np.round(src * 255.0), 0, 255) / 255.0
        vals = 2 ** np.ceil(np.log2(len(np.unique(src))))
        noise = (rng.poisson(src * vals) / vals - src) * scale
        noise = noise.repeat(3, 0) if gray else noise
    return torch.from_numpy(np.clip(x + noise, 0, 1).astype(np.float32))[None]


def jpeg_cv2(img: np.ndarray, quality: int) -> np.ndarray:
    """float HxWx3 RGB in [0, 1] -> the same after OpenCV's JPEG at ``quality``: the bytes of
    basicsr's ``add_jpg_compression`` (tested), which hands OpenCV a float image that OpenCV
    rounds to uint8 with a warning on every call; rounding here first avoids the warning."""
    bgr = np.clip(np.round(np.clip(img, 0, 1)[..., ::-1] * 255.0), 0, 255).astype(np.uint8)
    _, enc = cv2.imencode(".jpg", bgr, [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
    return np.float32(cv2.imdecode(enc, cv2.IMREAD_COLOR)[..., ::-1]) / 255.0


def _jpeg(img: torch.Tensor, quality_range: list[float], rng: np.random.Generator) -> torch.Tensor:
    quality = int(round(rng.uniform(*quality_range)))
    out = jpeg_cv2(img[0].permute(1, 2, 0).numpy(), quality)
    return torch.from_numpy(np.ascontiguousarray(out)).permute(2, 0, 1)[None]


def _resize_factor(stage: RealEsrganStage, rng: np.random.Generator) -> float:
    updown = int(rng.choice(3, p=np.asarray(stage.resize_prob) / sum(stage.resize_prob)))
    lo, hi = stage.resize_range
    return (rng.uniform(1, hi), rng.uniform(lo, 1), 1.0)[updown]


def realesrgan(hr: np.ndarray, scale: int, preset: RealEsrganPreset, rng: np.random.Generator) -> np.ndarray:
    """uint8 HxWx3 RGB HR (mod-cropped to ``scale``) -> uint8 (H/s)x(W/s)x3 LR."""
    h, w = hr.shape[:2]
    frac = preset.max_kernel_fraction
    # a copy: a cached plate is a read-only view of the plate cache's memory map (torch warns on those)
    img = torch.from_numpy(np.array(hr, dtype=np.uint8, order="C")).permute(2, 0, 1)[None].float().div_(255.0)
    with torch.no_grad():
        # first degradation, on the HR
        first = preset.first
        if rng.uniform() < first.blur_prob:
            img = _filter(img, blur_kernel(first, rng, min(img.shape[-2:]), frac))
        s = _resize_factor(first, rng)
        img = _resize(img, (int(h * s), int(w * s)), rng)
        img = _noise(img, first, rng)
        img = _jpeg(img, first.jpeg_range, rng)
        # second degradation
        second = preset.second
        if rng.uniform() < second.blur_prob:
            img = _filter(img, blur_kernel(second, rng, min(img.shape[-2:]), frac))
        s = _resize_factor(second, rng)
        img = _resize(img, (int(h / scale * s), int(w / scale * s)), rng)
        img = _noise(img, second, rng)
        lr_size = (h // scale, w // scale)
        sinc = None
        if rng.uniform() < preset.final_sinc_prob:
            size = _kernel_size(preset.final_sinc_kernel_sizes, rng, min(lr_size), frac)
            sinc = _sinc_kernel(rng, size, preset.final_sinc_cutoff)
        if rng.uniform() < 0.5:  # [resize back + sinc] then JPEG
            img = _resize(img, lr_size, rng)
            img = _filter(img, sinc) if sinc is not None else img
            img = _jpeg(img, second.jpeg_range, rng)
        else:  # JPEG then [resize back + sinc]
            img = _jpeg(img, second.jpeg_range, rng)
            img = _resize(img, lr_size, rng)
            img = _filter(img, sinc) if sinc is not None else img
    return img.mul(255.0).round().clamp(0, 255).byte()[0].permute(1, 2, 0).numpy().copy()
