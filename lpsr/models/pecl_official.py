"""The network in the authors' published code (sendjasni/Extreme-LPSR ``model.py``), which
differs from the paper's description (see ``docs/pecl.md``).  Written from a reading of
that file, not copied.

Layout:

1. Input normalised with ImageNet mean/std (the output is *not* de-normalised: the last
   conv learns to emit [0, 1] images directly, as in their code).
2. ``Conv3x3`` 3 -> C.
3. ``blocks`` residual-in-residual dense blocks (RRDB).  Each RRDB chains ``rdbs`` = 5
   dense blocks and adds its output back scaled by a learnable scalar (init 0.2).  Each
   dense block has 3 convs of ``C`` channels (conv k reads the concatenation of the block
   input and the k-1 earlier outputs; ReLU after every conv, also the last; no 1x1
   fusion) and adds back its last conv's output scaled by its own learnable scalar (0.2).
4. One ECA layer (Wang et al. 2020): global average pool, 1-D conv across channels
   (k = 3, no bias), sigmoid, rescale.
5. One-shot upsampling: ``Conv3x3`` C -> C*s^2, ``PixelShuffle(s)`` (no activation).
6. ``Conv3x3`` C -> 3.

Defaults (their ``eval.py``): 6 RRDBs, 64 channels, which is 9,008,234 parameters at x8
(7,235,690 at x4; 6,792,554 at x2): the published model is ~4.5x the paper's 2M.
Adaptation: their code accepts only x2/x4/x8; here any power of two works (the
one-shot conv simply emits C*s^2 channels).  Their docstring mentions spectral
normalisation, which their code never applies; it is left out here too.
"""
from __future__ import annotations

import torch
from torch import nn


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class DenseBlock3(nn.Module):
    """Three densely connected 3x3 conv+ReLU layers; output = 0.2-scaled last conv + input."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(channels * (i + 1), channels, 3, padding=1) for i in range(3))
        self.scale = nn.Parameter(torch.tensor(0.2))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for conv in self.convs:
            features.append(self.act(conv(torch.cat(features, dim=1))))
        return features[-1] * self.scale + x


class RRDB(nn.Module):
    """A chain of dense blocks with an outer learnable-scaled residual (init 0.2)."""

    def __init__(self, channels: int, rdbs: int = 5) -> None:
        super().__init__()
        self.chain = nn.Sequential(*(DenseBlock3(channels) for _ in range(rdbs)))
        self.scale = nn.Parameter(torch.tensor(0.2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.chain(x) * self.scale + x


class ECA(nn.Module):
    """Efficient channel attention: a k-tap 1-D conv over the pooled channel vector."""

    def __init__(self, k: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 1, k, padding=(k - 1) // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = x.mean(dim=(2, 3)).unsqueeze(1)  # N x 1 x C
        gate = torch.sigmoid(self.conv(pooled)).squeeze(1)
        return x * gate[:, :, None, None]


class PeclOfficialNet(nn.Module):
    """The authors' published variant; see the module docstring."""

    def __init__(self, scale: int = 8, channels: int = 64, blocks: int = 6, rdbs: int = 5, eca_k: int = 3) -> None:
        super().__init__()
        for key, value in (("channels", channels), ("blocks", blocks), ("rdbs", rdbs), ("eca_k", eca_k)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"pecl-official-arch option '{key}' must be a positive integer, got {value!r}")
        self.scale = scale
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.head = nn.Conv2d(3, channels, 3, padding=1)
        self.body = nn.Sequential(*(RRDB(channels, rdbs) for _ in range(blocks)))
        self.attention = ECA(eca_k)
        self.upsample = nn.Sequential(nn.Conv2d(channels, channels * scale * scale, 3, padding=1), nn.PixelShuffle(scale))
        self.tail = nn.Conv2d(channels, 3, 3, padding=1)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        x = (lr - self.mean) / self.std
        return self.tail(self.upsample(self.attention(self.body(self.head(x)))))
