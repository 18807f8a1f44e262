"""PECL: pixel and embedding consistency loss (Sendjasni & Larabi 2025, Sec. 3.2).

``L = w_pixel * MSE(SR, HR) + w_con * L_con(D)``, where ``D`` is the distance between the
L2-normalised Siamese embeddings of SR and HR (:mod:`lpsr.losses.siamese`).

Distances (``distance``): ``manhattan`` (L1, the paper's) or ``euclidean`` (L2).

Contrastive forms (``contrastive``), margin ``m`` (paper: 2):

* ``paper-eq17`` -- ``max(m - D, 0)^2``, Eq. 17 as printed.  This is the *dissimilar*-pair
  term of Hadsell et al. (2006): minimising it pushes SR and HR embeddings apart.
* ``pull`` -- ``D^2``, the similar-pair term (what the text says the loss should do).
  Forces a frozen Siamese: a trainable one would collapse to a constant embedding.
* ``hadsell`` -- the full contrastive loss over the batch: SR_i is pulled to HR_i and
  pushed at least ``m`` from every HR_j, j != i:
  ``0.5 * mean_i D_ii^2 + 0.5 * mean_{i!=j} max(m - D_ij, 0)^2``
  (the negative term is 0 for a batch of one).

Loss weights (``weights``):

* ``learnable`` (the paper's: learnable, clipped to [0, 1], summing to 1).  Implemented as
  one parameter ``theta``: ``w_pixel = theta``, ``w_con = 1 - theta``, and ``after_step()``
  clips ``theta`` to [0, 1] (projection).  Why one parameter: with two free weights and
  "clip, then renormalise to sum 1", Adam moves both weights by about the same step
  (both gradients, the two loss terms, are positive) and the renormalisation undoes it,
  so the weights would never move.  With ``theta`` the gradient is ``L_pixel - L_con``:
  the weights drift toward whichever term is smaller, as the paper's set-up implies.
* ``{pixel: a, con: b}`` -- fixed weights (any non-negative values).

``loss()`` logs ``w_pixel``, ``w_con``, ``l_pixel``, ``l_con`` and ``D`` (mean SR-HR
distance) every step.
"""
from __future__ import annotations

from typing import Any, Literal, Union

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator
from torch import nn

from lpsr.losses.siamese import INITS, Siamese, build_embedding
from lpsr.method import Batch, Float, MethodError, MethodSettings, TrainRecipe

FORMS = ("paper-eq17", "pull", "hadsell")
DISTANCES = ("manhattan", "euclidean")
#: the paper's Eq. 17 as printed (docs/pecl.md: inert with Manhattan distance; ``pecl-pull``
#: is the form the paper meant)
DEFAULT_FORM = "paper-eq17"


class FixedWeights(MethodSettings):
    pixel: Float = Field(ge=0.0)
    con: Float = Field(ge=0.0)


class PeclLossSettings(MethodSettings):
    """The PECL loss settings and their defaults (the one source of them)."""

    contrastive: Literal[FORMS] = DEFAULT_FORM  # type: ignore[valid-type]
    distance: Literal[DISTANCES] = "manhattan"  # type: ignore[valid-type]
    margin: Float = Field(2.0, gt=0.0)  # m in Eq. 17
    embedding_dim: Literal[64, 128, 256, 512] = 128
    siamese: Literal["trainable", "frozen"] = "trainable"
    siamese_init: str = "auto"  # auto | imagenet | scratch | plate-ocr | file:PATH
    siamese_weights: str | None = None
    weights: Union[Literal["learnable"], FixedWeights] = "learnable"
    weights_init: Float = Field(0.5, ge=0.0, le=1.0)  # initial w_pixel when learnable

    @field_validator("siamese_init")
    @classmethod
    def _init(cls, value: str) -> str:
        if value in ("auto", "imagenet", "scratch", "plate-ocr") or (value.startswith("file:") and len(value) > 5):
            return value
        raise ValueError(f"siamese_init must be one of {', '.join(INITS)}")

    def weights_spec(self) -> Any:
        return self.weights if self.weights == "learnable" else self.weights.model_dump()


def cross_distance(a: torch.Tensor, b: torch.Tensor, distance: str) -> torch.Tensor:
    """``D[i, j]`` = distance between rows ``a[i]`` and ``b[j]`` (N x M)."""
    diff = a[:, None, :] - b[None, :, :]
    if distance == "manhattan":
        return diff.abs().sum(dim=2)
    if distance == "euclidean":
        # clamp keeps the gradient finite (zero) where the two embeddings coincide
        return diff.pow(2).sum(dim=2).clamp_min(1e-12).sqrt()
    raise MethodError(f"distance must be one of {', '.join(DISTANCES)}, got {distance!r}")


def contrastive_loss(sr: torch.Tensor, hr: torch.Tensor, form: str, distance: str, margin: float = 2.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(L_con, mean positive-pair distance D) for embeddings ``sr``, ``hr`` (N x d)."""
    if form not in FORMS:
        raise MethodError(f"contrastive must be one of {', '.join(FORMS)}, got {form!r}")
    dist = cross_distance(sr, hr, distance)
    positive = dist.diagonal()
    if form == "paper-eq17":
        value = F.relu(margin - positive).pow(2).mean()
    elif form == "pull":
        value = positive.pow(2).mean()
    else:
        n = dist.shape[0]
        value = 0.5 * positive.pow(2).mean()
        if n > 1:
            off = ~torch.eye(n, dtype=torch.bool, device=dist.device)
            value = value + 0.5 * F.relu(margin - dist[off]).pow(2).mean()
    return value, positive.mean()


def siamese_mode(contrastive: str, siamese: str) -> tuple[str, str]:
    """The Siamese mode actually used (``pull`` forces ``frozen``) and a note saying so."""
    if siamese not in ("trainable", "frozen"):
        raise MethodError(f"siamese must be 'trainable' or 'frozen', got {siamese!r}")
    if contrastive == "pull" and siamese == "trainable":
        return "frozen", "frozen forced: 'pull' with a trainable Siamese collapses to a constant embedding"
    return siamese, ""


class LossWeights(nn.Module):
    """``w_pixel`` and ``w_con``: learnable (``theta``, ``1 - theta``) or fixed."""

    def __init__(self, spec: Any = "learnable", init: float = 0.5) -> None:
        super().__init__()
        self.learnable = spec == "learnable"
        if self.learnable:
            if not 0.0 <= float(init) <= 1.0:
                raise MethodError(f"weights_init (initial w_pixel) must be in [0, 1], got {init!r}")
            self.theta = nn.Parameter(torch.tensor(float(init)))
            return
        if not (isinstance(spec, dict) and set(spec) == {"pixel", "con"}):
            raise MethodError(f"weights must be 'learnable' or {{pixel: A, con: B}}, got {spec!r}")
        values = [float(spec["pixel"]), float(spec["con"])]
        if min(values) < 0:
            raise MethodError(f"fixed weights must be >= 0, got {spec!r}")
        self.register_buffer("fixed", torch.tensor(values))

    @property
    def w_pixel(self) -> torch.Tensor:
        return self.theta if self.learnable else self.fixed[0]

    @property
    def w_con(self) -> torch.Tensor:
        return 1.0 - self.theta if self.learnable else self.fixed[1]

    @torch.no_grad()
    def project(self) -> None:
        if self.learnable:
            self.theta.clamp_(0.0, 1.0)

    def describe(self) -> str:
        if self.learnable:
            return "learnable (w_pixel = theta, w_con = 1 - theta, theta clipped to [0, 1] after each step)"
        return f"fixed (w_pixel = {float(self.fixed[0]):g}, w_con = {float(self.fixed[1]):g})"


class PeclRecipe(TrainRecipe):
    """The PECL training loss as a :class:`TrainRecipe` (see the module docstring).

    ``PeclRecipe(settings | **values)``: values of :class:`PeclLossSettings` (defaults
    there); ``embedding`` passes a ready embedding network (tests)."""

    def __init__(self, settings: PeclLossSettings | None = None, embedding: nn.Module | None = None, **values: Any) -> None:
        super().__init__(pixel="mse")
        if settings is None:
            settings = PeclLossSettings.parse(values, "pecl")
        self.settings = settings
        self.contrastive, self.distance, self.margin = settings.contrastive, settings.distance, float(settings.margin)
        siamese, self.siamese_note = siamese_mode(settings.contrastive, settings.siamese)
        if embedding is None:
            embedding, self.init_facts = build_embedding(settings.siamese_init, int(settings.embedding_dim), settings.siamese_weights)
        else:
            self.init_facts = {"siamese_init": "given", "siamese_init_reason": "embedding passed in", "siamese_loaded": "given"}
        self.embedding_dim = int(settings.embedding_dim)
        self.siamese = Siamese(embedding, frozen=siamese == "frozen")
        self.weights = LossWeights(settings.weights_spec(), settings.weights_init)

    def loss(self, sr: torch.Tensor, batch: Batch, iteration: int, total: int) -> tuple[torch.Tensor, dict[str, torch.Tensor | float]]:
        l_pixel = self.pixel_loss(sr, batch.hr)
        embeddings = self.siamese(torch.cat([sr, batch.hr], dim=0))
        sr_emb, hr_emb = embeddings.split(sr.shape[0], dim=0)
        l_con, dist = contrastive_loss(sr_emb, hr_emb, self.contrastive, self.distance, self.margin)
        w_pixel, w_con = self.weights.w_pixel, self.weights.w_con
        value = w_pixel * l_pixel + w_con * l_con
        logs = {
            "loss": value.detach(),
            "l_pixel": l_pixel.detach(),
            "l_con": l_con.detach(),
            "D": dist.detach(),
            "w_pixel": w_pixel.detach(),
            "w_con": w_con.detach(),
        }
        return value, logs

    def after_step(self) -> None:
        self.weights.project()

    def describe(self) -> dict[str, Any]:
        facts = {
            "loss": "pecl",
            "pixel_loss": "mse",
            "contrastive": self.contrastive,
            "distance": self.distance,
            "margin": self.margin,
            "embedding_dim": self.embedding_dim,
            "siamese": "frozen" if self.siamese.frozen else "trainable",
            **self.init_facts,
            "weights": self.weights.describe(),
            "ocr_seen_in_training": ["plate"] if self.init_facts.get("siamese_init") == "plate-ocr" else [],
        }
        if self.siamese_note:
            facts["siamese_note"] = self.siamese_note
        return facts
