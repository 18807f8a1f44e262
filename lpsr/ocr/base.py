"""The recogniser interface, PaddleOCR-style CTC decoding and an ONNX CTC recogniser.

Every recogniser reads already-cropped plates (the crop *is* the text line, so no text
detector runs) and returns ``(text, confidence)`` per image.  Confidence follows PaddleOCR's
``CTCLabelDecode``: greedy arg-max per frame, collapse repeats, drop blanks, and average the
maximum probability of the frames that were kept; an empty reading scores 0.

Pre-processing follows PaddleOCR's ``TextRecognizer.resize_norm_img``: sort crops by aspect
ratio, batch neighbours, resize each to the model height keeping its aspect ratio (cv2
bilinear), pad on the right with zeros to the widest crop of the batch (and at least to the
model's nominal width), and normalise ``(x / 255 - 0.5) / 0.5``.  PaddleOCR models are
trained on cv2 images, so RGB crops are turned into BGR before they reach the network.
"""
from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from lpsr.errors import UserError

BLANK = 0  # index of the CTC blank in every PaddleOCR recogniser


class OcrError(UserError):
    """Bad OCR setup or input (missing model file, unknown recogniser, bad image)."""


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to run one exported PaddleOCR CTC recogniser.

    ``characters`` is the full class list the network scores, blank at index 0.
    ``width`` is the nominal input width (PaddleOCR ``rec_image_shape``); batches are padded
    to at least this width unless padding is switched off.
    """

    name: str
    onnx_path: Path
    characters: tuple[str, ...]
    height: int
    width: int
    bgr: bool = True


def package_file(package: str, *parts: str, pip_name: str | None = None) -> Path:
    """Path of a data file shipped inside an installed package, without importing it.

    Raises OcrError naming the file and what to install when it is missing; never downloads.
    """
    spec = importlib.util.find_spec(package)
    wanted = "/".join(parts)
    if spec is None or not spec.submodule_search_locations:
        raise OcrError(f"{wanted} not found: package {package!r} is not installed; "
                       f"run `pip install {pip_name or package}`")
    for root in spec.submodule_search_locations:
        path = Path(root, *parts)
        if path.is_file():
            return path
    raise OcrError(f"{wanted} is missing from the installed {package!r} package; "
                   f"reinstall it with `pip install --force-reinstall {pip_name or package}`")


class Recognizer:
    """A plate reader: ``read(images) -> [(text, confidence)]``.

    ``images`` are uint8 RGB arrays (H, W, 3) of any size; confidence lies in [0, 1] and
    an empty reading is ``("", 0.0)``.
    """

    name: str = ""

    def read(self, images: Sequence[np.ndarray]) -> list[tuple[str, float]]:
        raise NotImplementedError


def ctc_greedy_decode(probs: np.ndarray, characters: Sequence[str]) -> list[tuple[str, float]]:
    """PaddleOCR's CTC greedy decoding of per-frame probabilities (N, T, C).

    Returns ``(text, confidence)`` per row, confidence = mean max-probability of the kept
    frames (first frame of each run of the same non-blank class), 0.0 when nothing is kept.
    """
    if probs.ndim != 3 or probs.shape[2] != len(characters):
        raise OcrError(f"CTC output of shape {probs.shape} does not match {len(characters)} classes")
    best = probs.argmax(axis=2)
    best_p = probs.max(axis=2)
    out = []
    for idx, p in zip(best, best_p):
        keep = idx != BLANK
        keep[1:] &= idx[1:] != idx[:-1]
        text = "".join(characters[i] for i in idx[keep])
        out.append((text, float(p[keep].mean()) if keep.any() else 0.0))
    return out


def check_image(image: np.ndarray, where: str = "plate crop") -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 \
            or image.shape[2] != 3 or min(image.shape[:2]) < 1:
        got = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise OcrError(f"{where} must be a uint8 RGB array of shape (H, W, 3), got {got}")
    return image


def resize_norm(image: np.ndarray, height: int, width: int, bgr: bool) -> np.ndarray:
    """One crop -> (3, height, width) float32, PaddleOCR's resize, normalisation and padding."""
    import cv2

    h, w = image.shape[:2]
    new_w = min(width, max(1, math.ceil(height * w / h)))
    resized = cv2.resize(image, (new_w, height)).astype(np.float32)
    if bgr:
        resized = resized[:, :, ::-1]
    out = np.zeros((3, height, width), dtype=np.float32)
    out[:, :, :new_w] = (resized.transpose(2, 0, 1) / 255.0 - 0.5) / 0.5
    return out


def batch_width(shapes: Sequence[tuple[int, int]], height: int, min_width: int) -> int:
    """Padded width of a batch: the widest crop at model height, at least ``min_width``."""
    ratio = max(w / h for h, w in shapes)
    return max(min_width, int(height * ratio))  # PaddleOCR truncates here, ceils per crop


class OnnxCtcRecognizer(Recognizer):
    """Runs an exported PaddleOCR CTC recogniser with onnxruntime, batched by aspect ratio.

    ``pad_to_width=True`` reproduces PaddleOCR exactly (every batch at least the nominal
    width, e.g. 320 px); ``False`` pads only to the widest crop, which is faster on plates.
    """

    def __init__(self, spec: ModelSpec, batch_size: int = 6, threads: int = 2,
                 pad_to_width: bool = True):
        import onnxruntime as ort

        if batch_size < 1:
            raise OcrError(f"OCR batch size must be >= 1, got {batch_size}")
        self.spec = spec
        self.name = spec.name
        self.batch_size = batch_size
        self.pad_to_width = pad_to_width
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(spec.onnx_path), sess_options=options,
                                            providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def read(self, images: Sequence[np.ndarray]) -> list[tuple[str, float]]:
        images = [check_image(im) for im in images]
        order = np.argsort([im.shape[1] / im.shape[0] for im in images], kind="stable")
        results: list[tuple[str, float]] = [("", 0.0)] * len(images)
        h = self.spec.height
        for start in range(0, len(images), self.batch_size):
            chunk = order[start:start + self.batch_size]
            shapes = [images[i].shape[:2] for i in chunk]
            width = batch_width(shapes, h, self.spec.width if self.pad_to_width else 1)
            batch = np.stack([resize_norm(images[i], h, width, self.spec.bgr) for i in chunk])
            probs = self.session.run(None, {self.input_name: batch})[0]
            for i, res in zip(chunk, ctc_greedy_decode(probs, self.spec.characters)):
                results[i] = res
        return results
