"""`pecl`: the paper's proposed method -- the RDB + channel-attention network
(:mod:`lpsr.models.pecl_net`) trained with the PECL loss (:mod:`lpsr.losses.pecl`).

Adaptations: none to the network (fully convolutional, x8 by three transposed-conv
stages).  The loss follows the paper with its open points made settings (contrastive form,
Siamese trainable/frozen, learnable or fixed weights, Siamese initialisation); the
defaults and the measurements behind them are in ``docs/pecl.md``.  ``describe()`` gives
the leaderboard the contrastive form and the Siamese initialisation actually used, and
lists the plate recogniser in ``ocr_seen_in_training`` when the Siamese is its backbone.

As printed (the default, ``contrastive: paper-eq17``), Eq. 17's ``max(m - D, 0)^2`` with
Manhattan distance between 128-d unit vectors is exactly 0 at every step (D ~ 11-12 > m =
2): ``pecl`` trains as plain MSE.  ``pecl-pull`` (a YAML variant in ``all``) is the form
the paper meant: SR pulled towards HR in embedding space, plate-recogniser Siamese frozen,
fixed weights balanced on the val split (docs/pecl.md).

``arch: official`` swaps in the authors' published network
(:mod:`lpsr.models.pecl_official`, options under ``official_net``); the YAML variant
``pecl-official-arch`` does that.  ``net.global_residual: bicubic`` is the opt-in
bicubic-skip ablation (variants ``mse-skip``, ``pecl-pull-skip``).

Settings and their defaults: :class:`PeclSettings` / :class:`MseSettings` (the one source).
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator
from torch import nn

from lpsr.losses.pecl import PeclLossSettings, PeclRecipe, siamese_mode
from lpsr.losses.siamese import resolve_init
from lpsr.method import Float, Int, Method, MethodSettings, TrainRecipe
from lpsr.models.pecl_net import PeclNet
from lpsr.models.pecl_official import PeclOfficialNet


class PeclNetSettings(MethodSettings):
    """:class:`lpsr.models.pecl_net.PeclNet` sizes (about 2M parameters at x8)."""

    channels: Int = Field(64, ge=1)
    blocks: Int = Field(7, ge=1)
    growth: Int = Field(32, ge=1)
    convs: Int = Field(6, ge=1)
    reduction: Int = Field(16, ge=1)
    alpha: Float = 0.2
    #: none (the paper's) | bicubic (opt-in ablation: output + bicubic(LR))
    global_residual: Literal["none", "bicubic"] = "none"

    @model_validator(mode="after")
    def _reduction(self) -> "PeclNetSettings":
        if self.channels % self.reduction:
            raise ValueError(f"channels ({self.channels}) must be divisible by reduction ({self.reduction})")
        return self


class OfficialNetSettings(MethodSettings):
    """:class:`lpsr.models.pecl_official.PeclOfficialNet` sizes (the authors' eval.py)."""

    channels: Int = Field(64, ge=1)
    blocks: Int = Field(6, ge=1)
    rdbs: Int = Field(5, ge=1)
    eca_k: Int = Field(3, ge=1)


class MseSettings(MethodSettings):
    arch: Literal["paper", "official"] = "paper"
    net: PeclNetSettings = PeclNetSettings()
    official_net: OfficialNetSettings = OfficialNetSettings()


class PeclSettings(PeclLossSettings, MseSettings):
    pass


class Pecl(Method):
    """RDB + channel attention + transposed-conv upsampling, trained with PECL."""

    name = "pecl"
    source = "Sendjasni & Larabi 2025, Embedding Similarity Guided License Plate Super Resolution (arXiv 2501.01483)"
    scales = "pow2"
    order = 70
    Settings = PeclSettings

    def build(self) -> nn.Module:
        s = self.settings
        if s.arch == "official":
            return PeclOfficialNet(self.scale, **s.official_net.model_dump())
        return PeclNet(self.scale, **s.net.model_dump())

    def loss_settings(self) -> PeclLossSettings:
        return PeclLossSettings(**{k: getattr(self.settings, k) for k in PeclLossSettings.model_fields})

    def recipe(self, model: nn.Module) -> TrainRecipe:
        return PeclRecipe(self.loss_settings())

    def network_name(self) -> str:
        return "PeclNet (paper)" if self.settings.arch == "paper" else "PeclOfficialNet (authors' code)"

    def network_facts(self) -> dict[str, Any]:
        facts: dict[str, Any] = {"network": self.network_name()}
        if self.settings.arch == "paper":
            facts["global_residual"] = self.settings.net.global_residual
        return facts

    def ocr_seen_in_training(self) -> list[str]:
        s = self.settings
        init, _ = resolve_init(s.siamese_init, s.siamese_weights)
        return ["plate"] if init == "plate-ocr" else []

    def describe(self) -> dict[str, Any]:
        s = self.settings
        mode, note = siamese_mode(s.contrastive, s.siamese)
        init, reason = resolve_init(s.siamese_init, s.siamese_weights)
        facts = {
            **super().describe(),
            **self.network_facts(),
            "loss": "pecl",
            "contrastive": s.contrastive,
            "distance": s.distance,
            "embedding_dim": int(s.embedding_dim),
            "siamese": mode,
            "siamese_init": init,
            "siamese_init_reason": reason,
            "weights": s.weights_spec(),
        }
        if note:
            facts["siamese_note"] = note
        return facts
