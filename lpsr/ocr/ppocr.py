"""PP-OCRv4 Chinese text recogniser (PaddleOCR's default), run from the ONNX export that
``rapidocr-onnxruntime`` ships inside its wheel (the same weights as PaddleOCR's
``ch_PP-OCRv4_rec_infer``).  Only the recogniser is used: the plate crop is the text line.

Input 3 x 48 x W (nominal W = 320), BGR, ``(x / 255 - 0.5) / 0.5``; 6625 CTC classes =
blank + the 6623-character dictionary stored in the model's ``character`` metadata + space.
"""
from __future__ import annotations

from functools import lru_cache

from lpsr.ocr.base import ModelSpec, OcrError, OnnxCtcRecognizer, package_file

ONNX_FILE = ("models", "ch_PP-OCRv4_rec_infer.onnx")
PACKAGE = "rapidocr_onnxruntime"
PIP_NAME = "rapidocr-onnxruntime"


@lru_cache(maxsize=1)
def ppocr_spec() -> ModelSpec:
    import onnx

    path = package_file(PACKAGE, *ONNX_FILE, pip_name=PIP_NAME)
    meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    if "character" not in meta:
        raise OcrError(f"{path} has no 'character' metadata; reinstall {PIP_NAME}")
    # PaddleOCR: blank first, the dictionary, then the space character (use_space_char).
    chars = ("",) + tuple(meta["character"].splitlines()) + (" ",)
    return ModelSpec(name="ppocr", onnx_path=path, characters=chars, height=48, width=320, bgr=True)


class PPOCRRecognizer(OnnxCtcRecognizer):
    """PaddleOCR PP-OCRv4 recognition (Chinese), via onnxruntime."""

    def __init__(self, batch_size: int = 6, threads: int = 2, pad_to_width: bool = True):
        super().__init__(ppocr_spec(), batch_size=batch_size, threads=threads, pad_to_width=pad_to_width)
