"""`tbsrn`: TBSRN, the Scene Text Telescope's network (Chen et al., CVPR 2021), with its text-focused loss.

Adaptation to plates / x8 (``lpsr.models.tbsrn``): the 2-D positional encoding and the TPS
sampling grid are built for the input's own size at run time (the original hard-codes a
16x64 LR input), the STN's localisation net sees the input resized to that 16x64, x8 uses
three pixel-shuffle stages, and nothing calls ``.cuda()``.  The STN rectifies the LR at
training time only, as in the original.  3,275,884 parameters at x8 with STN (2,980,460 at
x2, 3,128,172 at x4); the official code's 3,505,759 include 229,875 parameters it builds
but never uses (two GRU blocks per residual block, a spare conv + BN, one Linear(4, 1) per
attention layer), which are left out.

Loss (``lpsr.losses.text_focus``): MSE + 10 x position-aware + 5e-4 x content-aware, with the
CCPD plate CTC recogniser in place of the original's transformer recogniser; the content
target is the plate label on whole-plate batches and the recogniser's reading of the HR
patch on patch batches.  ``text_loss: none`` trains with MSE only.
"""
from __future__ import annotations

from typing import Any

from torch import nn

from lpsr.method import Method, MethodError, TrainRecipe
from lpsr.models.tbsrn import TBSRN
from methods._settings import setting


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise TypeError(value)


_flag.__name__ = "true or false"


class TBSRNMethod(Method):
    name = "tbsrn"
    source = "Chen, Li, Xue: Scene Text Telescope: Text-Focused Scene Image Super-Resolution, CVPR 2021"
    scales = "pow2"
    order = 50

    def build(self) -> nn.Module:
        return TBSRN(
            self.scale,
            channels=setting(self, "channels", 64),
            blocks=setting(self, "blocks", 5),
            stn=setting(self, "stn", True, _flag),
        )

    def recipe(self, model: nn.Module) -> TrainRecipe:
        text_loss = setting(self, "text_loss", "plate")
        pixel = setting(self, "pixel_loss", "mse")
        if text_loss == "none":
            return TrainRecipe(pixel=pixel)
        if text_loss not in ("plate", "ppocr"):
            raise MethodError(f"configs/methods/{self.name}.yaml: text_loss must be plate, ppocr or none, got {text_loss!r}")
        from lpsr.losses.text_focus import TextFocusRecipe

        return TextFocusRecipe(
            pixel=pixel,
            position_weight=setting(self, "position_weight", 10.0),
            content_weight=setting(self, "content_weight", 5e-4),
            recognizer=text_loss,
            recognizer_pad=setting(self, "recognizer_pad", False, _flag),
            whole_plate_aspect=setting(self, "whole_plate_aspect", 2.0),
        )
