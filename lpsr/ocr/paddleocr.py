"""The real PaddleOCR recogniser, for users who have PaddlePaddle, ``paddleocr`` and a
recognition model on disk (optional extra: ``pip install 'lpsr-bench[paddleocr]'``).

Only the text-recognition stage runs (the crop is the text line).  The model folder is
required -- ``model_dir=`` (alias ``text_recognition_model_dir=``) or the environment
variable ``LPSR_PADDLEOCR_REC_DIR`` -- because PaddleOCR would otherwise download one;
this wrapper never lets it.  Works with PaddleOCR 3.x (``TextRecognition``) and 2.x
(``PaddleOCR(det=False, rec_model_dir=...)``).  Images are handed over in BGR, as PaddleOCR
reads them with cv2.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from lpsr.ocr.base import OcrError, Recognizer, check_image

ENV_MODEL_DIR = "LPSR_PADDLEOCR_REC_DIR"
_MODEL_FILES = ("inference.pdmodel", "inference.json")


def resolve_model_dir(model_dir: str | Path | None) -> Path:
    model_dir = model_dir or os.environ.get(ENV_MODEL_DIR)
    if not model_dir:
        raise OcrError("the paddleocr recogniser needs a local recognition model: pass "
                       f"model_dir=/path/to/rec_model (or set {ENV_MODEL_DIR}); it never downloads one")
    path = Path(model_dir).expanduser()
    if not path.is_dir() or not any((path / f).is_file() for f in _MODEL_FILES):
        raise OcrError(f"PaddleOCR recognition model folder {path} not found or has no "
                       f"{' / '.join(_MODEL_FILES)}; point model_dir (or {ENV_MODEL_DIR}) at an exported inference model")
    return path


class PaddleOCRRecognizer(Recognizer):
    """PaddleOCR's own text recogniser on a local model folder."""

    name = "paddleocr"

    def __init__(self, model_dir: str | Path | None = None, batch_size: int = 6, threads: int = 2,
                 text_recognition_model_dir: str | Path | None = None, model_name: str = "PP-OCRv4_mobile_rec"):
        path = resolve_model_dir(model_dir or text_recognition_model_dir)
        os.environ.setdefault("PADDLE_PDX_DISABLE_MODEL_SOURCE_CHECK", "True")  # no hub look-ups
        try:
            import paddleocr
        except ImportError as exc:
            raise OcrError("the paddleocr recogniser needs PaddleOCR: "
                           "pip install 'lpsr-bench[paddleocr]' paddlepaddle") from exc
        self.batch_size = batch_size
        if hasattr(paddleocr, "TextRecognition"):  # PaddleOCR 3.x
            self._model = paddleocr.TextRecognition(model_name=model_name, model_dir=str(path),
                                                    device="cpu", cpu_threads=threads)
            self._v3 = True
        else:  # PaddleOCR 2.x
            self._model = paddleocr.PaddleOCR(det=False, use_angle_cls=False, rec_model_dir=str(path),
                                              rec_batch_num=batch_size, cpu_threads=threads, show_log=False)
            self._v3 = False

    def read(self, images: Sequence[np.ndarray]) -> list[tuple[str, float]]:
        bgr = [np.ascontiguousarray(check_image(im)[:, :, ::-1]) for im in images]
        if not bgr:
            return []
        if self._v3:
            out = self._model.predict(input=bgr, batch_size=self.batch_size)
            pairs = [(r["rec_text"], r["rec_score"]) for r in out]
        else:
            pairs = []
            for im in bgr:
                lines = self._model.ocr(im, det=False, cls=False)[0] or [("", 0.0)]
                pairs.append(lines[0])
        return [(str(t or ""), float(s) if t else 0.0) for t, s in pairs]
