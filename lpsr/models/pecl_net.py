"""The PECL paper's SR network (Sendjasni & Larabi 2025, Sec. 3.1): residual dense blocks
with learnable residual scales, one RCAN channel-attention block, progressive transposed-
convolution upsampling.

Layout, following the paper's description step by step:

1. ``F0 = Conv3x3(LR)`` (3 -> C channels).
2. N residual dense blocks (RDN style, Zhang et al. 2018): ``L`` densely connected 3x3
   convs, each reading the concatenation of the block input and all earlier outputs and
   adding ``G`` (growth) channels, ReLU after each; a last 1x1 conv fuses the
   ``C + L*G`` channels back to C.  Each block adds its output back scaled by its own
   learnable scalar: ``F_i = alpha_i * Conv_last(...) + F_{i-1}``.
3. One channel-attention block (RCAN, Zhang et al. 2018): global average pool,
   1x1 conv C -> C/r, ReLU, 1x1 conv C/r -> C, sigmoid, rescale; on the last RDB's output.
4. ``log2(s)`` transposed convolutions, each doubling H and W, each followed by ReLU.
5. ``Conv3x3`` to 3 channels (no output activation; ``super_resolve`` clamps to [0, 1]).

Choices the paper leaves open (it gives only "about 2M parameters at x8", Table 1):

* N = 7 blocks, C = 64 channels, G = 32 growth, L = 6 convs per block, r = 16.
  Parameter count (counted by :func:`lpsr.method.count_parameters`):
  x8: 2,059,214; x4: 1,993,614; x2: 1,928,014.  Each x2 stage costs 65,600.
* Transposed convs use kernel 4, stride 2, padding 1 (exact doubling, the usual choice
  that avoids the uneven overlap of kernel 3); they keep C channels.
* ``alpha`` is initialised to 0.2, the residual scale the authors' published code uses.
* No global residual or global feature fusion (the paper describes neither).  Opt-in
  ablation: ``global_residual="bicubic"`` adds the bicubic upsampling of the LR (PIL's
  kernel, a = -0.5, :mod:`lpsr.models.bicubic`) to the output, so the network learns only
  the residual instead of colour and layout from scratch (YAML variants
  ``mse-skip``, ``pecl-pull-skip``); same parameter count.

Adaptation to plates: none is needed; the network is fully convolutional, so it runs on
8x8 LR training patches (64x64 HR) and on whole 24x8 LR plates (192x64 HR) at x8.
"""
from __future__ import annotations

import torch
from torch import nn

from lpsr.models.bicubic import upsample

#: ``none``: the paper's network; ``bicubic``: output + bicubic(LR) (opt-in ablation)
GLOBAL_RESIDUALS = ("none", "bicubic")


class ResidualDenseBlock(nn.Module):
    """RDN block: ``convs`` dense 3x3 conv+ReLU layers, 1x1 fusion, learnable residual scale."""

    def __init__(self, channels: int, growth: int, convs: int, alpha: float = 0.2) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.Conv2d(channels + i * growth, growth, 3, padding=1) for i in range(convs)
        )
        self.fuse = nn.Conv2d(channels + convs * growth, channels, 1)
        self.alpha = nn.Parameter(torch.tensor(float(alpha)))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for conv in self.layers:
            features.append(self.act(conv(torch.cat(features, dim=1))))
        return self.alpha * self.fuse(torch.cat(features, dim=1)) + x


class ChannelAttention(nn.Module):
    """RCAN channel attention: squeeze (global mean), excite (C -> C/r -> C), rescale."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        if channels % reduction:
            raise ValueError(f"channels ({channels}) must be divisible by reduction ({reduction})")
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(channels, channels // reduction, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels // reduction, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


class PeclNet(nn.Module):
    """The paper's network; see the module docstring for the layout and the chosen sizes."""

    def __init__(
        self,
        scale: int = 8,
        channels: int = 64,
        blocks: int = 7,
        growth: int = 32,
        convs: int = 6,
        reduction: int = 16,
        alpha: float = 0.2,
        global_residual: str = "none",
    ) -> None:
        super().__init__()
        if global_residual not in GLOBAL_RESIDUALS:
            raise ValueError(f"PeclNet option 'global_residual' must be one of {', '.join(GLOBAL_RESIDUALS)}, got {global_residual!r}")
        self.global_residual = global_residual
        for key, value in (("channels", channels), ("blocks", blocks), ("growth", growth), ("convs", convs), ("reduction", reduction)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"PeclNet option '{key}' must be a positive integer, got {value!r}")
        self.scale = scale
        self.head = nn.Conv2d(3, channels, 3, padding=1)
        self.body = nn.Sequential(*(ResidualDenseBlock(channels, growth, convs, alpha) for _ in range(blocks)))
        self.attention = ChannelAttention(channels, reduction)
        stages: list[nn.Module] = []
        for _ in range(scale.bit_length() - 1):  # x2 stages: scale is 2, 4, 8, ... (methods/pecl.py)
            stages += [nn.ConvTranspose2d(channels, channels, 4, stride=2, padding=1), nn.ReLU(inplace=True)]
        self.upsample = nn.Sequential(*stages)
        self.tail = nn.Conv2d(channels, 3, 3, padding=1)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        features = self.attention(self.body(self.head(lr)))
        out = self.tail(self.upsample(features))
        if self.global_residual == "bicubic":
            out = out + upsample(lr, self.scale, "pil")
        return out
