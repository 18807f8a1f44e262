"""One typed model per kind of degradation (pydantic, ``extra="forbid"``, strict types, no
defaults: a preset YAML in ``configs/degradations/`` states every parameter).

Each model turns a mod-cropped uint8 HR plate into its LR with :meth:`lr`, drawing any
random number from the generator it is given (``keys.py`` says which one).
"""
from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from lpsr.data.degrade import bicubic_downscale
from lpsr.degradations.camera import camera_chain, motion_blur
from lpsr.settings_model import Float


def _ordered(values: list) -> list:
    if values[0] > values[1]:
        raise ValueError(f"expected [low, high] with low <= high, got {values}")
    return values


def _odd(values: list) -> list:
    if any(v % 2 == 0 or v < 3 for v in values):
        raise ValueError(f"kernel sizes must be odd and >= 3, got {values}")
    return values


def _probabilities(values: list) -> list:
    if sum(values) <= 0:
        raise ValueError(f"probabilities must not all be 0, got {values}")
    return values


NonNeg = Annotated[Float, Field(ge=0)]
Probability = Annotated[Float, Field(ge=0, le=1)]
Quality = Annotated[int, Field(ge=1, le=100)]
#: ``[low, high]``: a uniform range (inclusive for integers)
Range = Annotated[list[NonNeg], Field(min_length=2, max_length=2), AfterValidator(_ordered)]
QualityRange = Annotated[list[Quality], Field(min_length=2, max_length=2), AfterValidator(_ordered)]
KernelSizes = Annotated[list[int], Field(min_length=2, max_length=2), AfterValidator(_ordered), AfterValidator(_odd)]
Weights = Annotated[list[NonNeg], AfterValidator(_probabilities)]
KernelKind = Literal["iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso"]


class Preset(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    def lr(self, hr: np.ndarray, scale: int, rng: np.random.Generator, plate_id: str = "") -> np.ndarray:
        raise NotImplementedError


class BicubicPreset(Preset):
    """Today's LR: antialiased bicubic / s (``lpsr.data.degrade``), nothing drawn."""
    kind: Literal["bicubic"]

    def lr(self, hr, scale, rng, plate_id=""):
        return bicubic_downscale(hr, scale, plate_id)


class CameraPreset(Preset):
    """Gaussian blur (HR px) -> bicubic / s -> Gaussian noise (0-255) -> JPEG, fixed values."""
    kind: Literal["camera"]
    blur_sigma: NonNeg
    noise_sigma: NonNeg
    jpeg_quality: Quality

    def lr(self, hr, scale, rng, plate_id=""):
        return camera_chain(hr, scale, self.blur_sigma, self.noise_sigma, self.jpeg_quality, rng, plate_id)


class MotionPreset(CameraPreset):
    """Linear motion blur (``length`` HR px at ``angle`` degrees) before the camera chain."""
    kind: Literal["motion"]  # type: ignore[assignment]
    length: NonNeg
    angle: Annotated[Float, Field(ge=-180, le=180)]

    def lr(self, hr, scale, rng, plate_id=""):
        return super().lr(motion_blur(hr, self.length, self.angle), scale, rng, plate_id)


class CameraRandomPreset(Preset):
    """The camera chain with its three values drawn per sample, uniformly from the ranges."""
    kind: Literal["camera-random"]
    blur_sigma: Range
    noise_sigma: Range
    jpeg_quality: QualityRange

    def lr(self, hr, scale, rng, plate_id=""):
        blur = rng.uniform(*self.blur_sigma)
        noise = rng.uniform(*self.noise_sigma)
        quality = int(rng.integers(self.jpeg_quality[0], self.jpeg_quality[1] + 1))
        return camera_chain(hr, scale, blur, noise, quality, rng, plate_id)


class RealEsrganStage(BaseModel):
    """One of Real-ESRGAN's two degradation rounds (the recipe's ``*`` / ``*2`` options)."""
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    blur_prob: Probability
    kernel_sizes: KernelSizes
    kernel_list: Annotated[list[KernelKind], Field(min_length=1)]
    kernel_prob: Weights
    sinc_prob: Probability
    sinc_cutoff_small: Range
    sinc_cutoff_large: Range
    blur_sigma: Range
    betag_range: Range
    betap_range: Range
    resize_prob: Annotated[Weights, Field(min_length=3, max_length=3)]
    resize_range: Range
    gaussian_noise_prob: Probability
    noise_range: Range
    poisson_scale_range: Range
    gray_noise_prob: Probability
    jpeg_range: Range

    @model_validator(mode="after")
    def _one_probability_per_kernel(self) -> "RealEsrganStage":
        if len(self.kernel_prob) != len(self.kernel_list):
            raise ValueError(f"kernel_prob has {len(self.kernel_prob)} entries for {len(self.kernel_list)} kernel_list entries")
        return self


class RealEsrganPreset(Preset):
    """Real-ESRGAN's second-order pipeline (``realesrgan.py``) with ranges scaled for x8."""
    kind: Literal["realesrgan"]
    max_kernel_fraction: Annotated[Float, Field(gt=0, le=1)]
    first: RealEsrganStage
    second: RealEsrganStage
    final_sinc_prob: Probability
    final_sinc_kernel_sizes: KernelSizes
    final_sinc_cutoff: Range

    def lr(self, hr, scale, rng, plate_id=""):
        from lpsr.degradations.realesrgan import realesrgan  # basicsr loads only when used
        return realesrgan(hr, scale, self, rng)


#: kind -> its model; the ``kind:`` key of a preset YAML picks one
KINDS: dict[str, type[Preset]] = {m.model_fields["kind"].annotation.__args__[0]: m  # type: ignore[union-attr]
                                  for m in (BicubicPreset, CameraPreset, MotionPreset, CameraRandomPreset, RealEsrganPreset)}
