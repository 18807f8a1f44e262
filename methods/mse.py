"""`mse`: the PECL paper's network trained with MSE only (the ablation's baseline, Fig. 8/9)."""
from __future__ import annotations

from typing import Any

from torch import nn

from lpsr.method import TrainRecipe
from methods.pecl import MseSettings, Pecl


class Mse(Pecl):
    """Same network as ``pecl`` (:class:`lpsr.models.pecl_net.PeclNet`), loss MSE(SR, HR).
    Settings: the network's only (:class:`methods.pecl.MseSettings`)."""

    name = "mse"
    source = "Sendjasni & Larabi 2025 network, MSE loss only (the paper's ablation baseline)"
    order = 71
    Settings = MseSettings

    @property
    def bf16_quality(self) -> str | None:  # type: ignore[override]
        """Measured for the paper's network as ``mse`` trains it (``train.precision: auto``);
        not for the official architecture or the bicubic-skip variant (``mse-skip``)."""
        s = self.settings
        if s is None or s.arch != "paper" or s.net != type(s.net)():
            return None
        return "benchmarks/bf16_quality.md (mse on the CCPD sample, 200 iterations: val PSNR within 0.03 dB of fp32)"

    def recipe(self, model: nn.Module) -> TrainRecipe:
        return TrainRecipe(pixel="mse")

    def ocr_seen_in_training(self) -> list[str]:
        return []

    def describe(self) -> dict[str, Any]:
        return {"ocr_seen_in_training": [], **self.network_facts(), "loss": "mse"}
