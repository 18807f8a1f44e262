"""Recognisers by name: ``get_recognizer("ppocr" | "plate" | "paddleocr")``."""
from __future__ import annotations

from lpsr.ocr.base import ModelSpec, OcrError, Recognizer

RECOGNIZERS = ("ppocr", "plate", "paddleocr")
DEFAULT_RECOGNIZER = "ppocr"


def _unknown(name: str, allowed=RECOGNIZERS) -> OcrError:
    return OcrError(f"unknown OCR recogniser {name!r}; use one of {', '.join(allowed)} (option --ocr)")


def get_recognizer(name: str, threads: int = 2, batch_size: int = 6, **options) -> Recognizer:
    """Build recogniser ``name``; extra ``options`` go to its constructor
    (``pad_to_width`` for the ONNX ones, ``model_dir`` for ``paddleocr``)."""
    if name == "ppocr":
        from lpsr.ocr.ppocr import PPOCRRecognizer

        return PPOCRRecognizer(batch_size=batch_size, threads=threads, **options)
    if name == "plate":
        from lpsr.ocr.plate import PlateRecognizer

        return PlateRecognizer(batch_size=batch_size, threads=threads, **options)
    if name == "paddleocr":
        from lpsr.ocr.paddleocr import PaddleOCRRecognizer

        return PaddleOCRRecognizer(batch_size=batch_size, threads=threads, **options)
    raise _unknown(name)


def parse_recognizers(value: str) -> list[str]:
    """``"ppocr,plate"`` -> ``["ppocr", "plate"]`` (validated, duplicates dropped)."""
    names = list(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))
    if not names:
        raise OcrError("--ocr needs at least one recogniser name, e.g. --ocr ppocr,plate")
    for n in names:
        if n not in RECOGNIZERS:
            raise _unknown(n)
    return names


def parse_ocr_option(value: str) -> list[str]:
    """An ``--ocr`` option: ``none``/``off``/empty -> no recogniser, else :func:`parse_recognizers`."""
    return [] if value.strip().lower() in ("", "none", "off") else parse_recognizers(value)


def onnx_model_spec(name: str) -> ModelSpec:
    """Model files and pre-processing of an ONNX recogniser (``ppocr`` or ``plate``)."""
    if name == "ppocr":
        from lpsr.ocr.ppocr import ppocr_spec

        return ppocr_spec()
    if name == "plate":
        from lpsr.ocr.plate import plate_spec

        return plate_spec()
    raise _unknown(name, ("ppocr", "plate"))
