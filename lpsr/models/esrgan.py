"""ESRGAN's generator (Wang et al., ECCV-W 2018): RRDBNet from spandrel, true x8.

23 residual-in-residual dense blocks (3 dense blocks of 5 convs each, growth 32, residual
scale 0.2), 64 features, then one "nearest x2 + conv3x3 + LeakyReLU" stage per factor of 2
and two HR convs.  The published net is x4 (two stages); x8 adds a third stage, which
spandrel's ``RRDBNet`` does for ``scale=8`` (basicsr's RRDBNet stays x4 whatever the scale
and no longer imports with current torchvision).  16,734,915 parameters at x8.

Initialisation follows the paper ("smaller initialisation"): Kaiming-normal weights scaled
by 0.1 in every dense-block convolution, zero biases; the other convs keep torch's default.
"""
from __future__ import annotations

from torch import nn


def build_rrdbnet(scale: int, features: int = 64, blocks: int = 23, init_scale: float = 0.1) -> nn.Module:
    """``scale``: 2, 4, 8, ... (x2 stages; the method declares it: ``methods/esrgan.py``)."""
    # imported here: spandrel takes seconds to import, and `bench list` imports every method
    from spandrel.architectures.ESRGAN import ESRGAN as SpandrelRRDBNet

    net = SpandrelRRDBNet(in_nc=3, out_nc=3, num_filters=features, num_blocks=blocks, scale=scale)
    for name, module in net.named_modules():
        if isinstance(module, nn.Conv2d) and ".RDB" in name:
            nn.init.kaiming_normal_(module.weight, a=0, mode="fan_in")
            module.weight.data.mul_(init_scale)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    return net
