"""`pecl`: the paper's proposed method -- the RDB + channel-attention network
(:mod:`lpsr.models.pecl_net`) trained with the PECL loss (:mod:`lpsr.losses.pecl`).

Adaptations: none to the network (fully convolutional, x8 by three transposed-conv
stages).  The loss follows the paper with its open points made options (contrastive form,
Siamese trainable/frozen, learnable or fixed weights, Siamese initialisation); the
defaults and the measurements behind them are in ``docs/pecl.md``.  ``describe()`` gives
the leaderboard the contrastive form and the Siamese initialisation actually used.

``arch: official`` swaps in the authors' published network
(:mod:`lpsr.models.pecl_official`, options under ``official_net``); the YAML variant
``pecl-official-arch`` does that.
"""
from __future__ import annotations

from typing import Any

from torch import nn

from lpsr.losses.pecl import DEFAULT_FORM, PeclRecipe, siamese_mode
from lpsr.losses.siamese import resolve_init
from lpsr.method import Method, MethodError, TrainRecipe
from lpsr.models.pecl_net import PeclNet
from lpsr.models.pecl_official import PeclOfficialNet

ARCHS = {
    "paper": ("net", PeclNet, ("channels", "blocks", "growth", "convs", "reduction", "alpha")),
    "official": ("official_net", PeclOfficialNet, ("channels", "blocks", "rdbs", "eca_k")),
}
LOSS_KEYS = ("contrastive", "distance", "margin", "embedding_dim", "siamese", "siamese_init",
             "siamese_weights", "weights", "weights_init")
NET_SETTINGS = ("arch", "net", "official_net")
IGNORED_KEYS = ("train",)  # the profile override block, read by the runner


class Pecl(Method):
    """RDB + channel attention + transposed-conv upsampling, trained with PECL."""

    name = "pecl"
    source = "Sendjasni & Larabi 2025, Embedding Similarity Guided License Plate Super Resolution (arXiv 2501.01483)"
    scales = "pow2"
    order = 70
    #: loss settings this method reads (``mse`` reads none)
    loss_keys: tuple[str, ...] = LOSS_KEYS

    def __init__(self, scale: int, config: dict[str, Any] | None = None) -> None:
        super().__init__(scale, config)
        known = (*NET_SETTINGS, *self.loss_keys, *IGNORED_KEYS)
        unknown = sorted(set(self.config) - set(known))
        if unknown:
            raise MethodError(f"method '{self.name}': unknown setting(s) {', '.join(unknown)}; known: {', '.join(known)}")
        self.arch = self.config.get("arch", "paper")
        if self.arch not in ARCHS:
            raise MethodError(f"method '{self.name}': arch must be one of {', '.join(ARCHS)}, got {self.arch!r}")
        key, self.net_class, allowed = ARCHS[self.arch]
        options = self.config.get(key) or {}
        if not isinstance(options, dict):
            raise MethodError(f"method '{self.name}': '{key}' must be a mapping, got {options!r}")
        bad = sorted(set(options) - set(allowed))
        if bad:
            raise MethodError(f"method '{self.name}': unknown {key} option(s) {', '.join(bad)}; known: {', '.join(allowed)}")
        self.net_options = dict(options)

    def build(self) -> nn.Module:
        return self.net_class(self.scale, **self.net_options)

    def loss_options(self) -> dict[str, Any]:
        return {k: self.config[k] for k in self.loss_keys if k in self.config}

    def recipe(self, model: nn.Module) -> TrainRecipe:
        return PeclRecipe(**self.loss_options())

    def network_name(self) -> str:
        return "PeclNet (paper)" if self.arch == "paper" else "PeclOfficialNet (authors' code)"

    def describe(self) -> dict[str, Any]:
        opts = self.loss_options()
        form = opts.get("contrastive", DEFAULT_FORM)
        mode, note = siamese_mode(form, opts.get("siamese", "trainable"))
        init, reason = resolve_init(opts.get("siamese_init", "auto"), opts.get("siamese_weights"))
        facts = {
            "network": self.network_name(),
            "loss": "pecl",
            "contrastive": form,
            "distance": opts.get("distance", "manhattan"),
            "embedding_dim": int(opts.get("embedding_dim", 128)),
            "siamese": mode,
            "siamese_init": init,
            "siamese_init_reason": reason,
            "weights": opts.get("weights", "learnable"),
        }
        if note:
            facts["siamese_note"] = note
        return facts
