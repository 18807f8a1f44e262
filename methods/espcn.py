"""`espcn`: ESPCN (Shi et al., CVPR 2016): 5-3-3 convs with tanh on the LR plate, PixelShuffle(s).

Adaptation to x8 / plates: RGB in and out (the paper's experiments use Y), so the last conv
has 3 * s^2 outputs: 78,816 parameters at x8 (26,796 at x2, 37,200 at x4).  Works on any
LR size (fully convolutional, "same" padding).  Pixel loss MSE, as in the paper
(``pixel_loss: mse`` in configs/methods/espcn.yaml).
"""
from __future__ import annotations

from torch import nn

from lpsr.method import Method
from lpsr.models.espcn import ESPCN
from methods._settings import int_tuple, setting


class ESPCNMethod(Method):
    name = "espcn"
    source = "Shi et al.: Real-Time Single Image and Video Super-Resolution Using an Efficient Sub-Pixel CNN, CVPR 2016"
    scales = "any"
    order = 30

    def build(self) -> nn.Module:
        return ESPCN(self.scale, channels=setting(self, "channels", (64, 32), int_tuple))
