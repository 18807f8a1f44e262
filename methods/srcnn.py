"""`srcnn`: SRCNN (Dong et al., TPAMI 2015), 9-5-5 with 64/32 channels, on the bicubic-upsampled plate.

Adaptation to plates and x8: RGB in and out (the paper: Y only, 57K parameters; here
69,251 at every scale, since the network never depends on the scale), "same" zero padding
so the output keeps the plate size, and the bicubic upsampling by x s done inside the
network (torch bicubic, a = -0.75) so that training and inference call the same module.
Pixel loss MSE, as in the paper (``pixel_loss: mse`` in configs/methods/srcnn.yaml).
"""
from __future__ import annotations

from torch import nn

from lpsr.method import Method
from lpsr.models.srcnn import SRCNN
from methods._settings import int_tuple, setting


class SRCNNMethod(Method):
    name = "srcnn"
    source = "Dong, Loy, He, Tang: Image Super-Resolution Using Deep Convolutional Networks, TPAMI 2015"
    scales = "any"
    order = 10

    def build(self) -> nn.Module:
        return SRCNN(
            self.scale,
            channels=setting(self, "channels", (64, 32), int_tuple),
            kernels=setting(self, "kernels", (9, 5, 5), int_tuple),
        )
