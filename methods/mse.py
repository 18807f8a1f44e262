"""`mse`: the PECL paper's network trained with MSE only (the ablation's baseline, Fig. 8/9)."""
from __future__ import annotations

from typing import Any

from torch import nn

from lpsr.method import TrainRecipe
from methods.pecl import Pecl


class Mse(Pecl):
    """Same network as ``pecl`` (:class:`lpsr.models.pecl_net.PeclNet`), loss MSE(SR, HR)."""

    name = "mse"
    source = "Sendjasni & Larabi 2025 network, MSE loss only (the paper's ablation baseline)"
    order = 71
    loss_keys = ()

    def recipe(self, model: nn.Module) -> TrainRecipe:
        return TrainRecipe(pixel="mse")

    def describe(self) -> dict[str, Any]:
        return {"network": self.network_name(), "loss": "mse"}
