"""`onnx`: any exported SR model as a leaderboard row, without a plug-in.

Settings: ``file`` (the ``.onnx`` file; relative paths are read from the working
directory), ``scale`` (what the file does; checked against ``--scale`` and against the file
itself), ``channel_order`` (``rgb`` / ``bgr``) and ``range`` (``0-1`` / ``0-255``) of the
file's input and output, and ``source`` (where the file claims to come from; printed with the
file name and sha256 as the row's provenance).  One YAML file makes a row::

    # configs/methods/my-model.yaml
    base: onnx
    file: exported/my-model.onnx

or, without a YAML, ``bench run --methods onnx --weights onnx=model.onnx``.  Nothing is
trained; onnxruntime runs the file on the CPU (:mod:`lpsr.onnx_model`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch

from lpsr.method import Int, Method, MethodError, MethodSettings
from lpsr.onnx_model import OnnxSR, load_onnx


class OnnxSettings(MethodSettings):
    file: str = ""
    #: the file's scale; ``None``: whatever ``--scale`` says (still checked against the file)
    scale: Int | None = None
    channel_order: Literal["rgb", "bgr"] = "rgb"
    range: Literal["0-1", "0-255"] = "0-1"
    source: str = ""


class OnnxMethod(Method):
    """Super-resolves with an ONNX file through onnxruntime; no training."""

    name = "onnx"
    source = "an exported ONNX model (file, sha256 and claimed source in the row's settings)"
    scales = "any"
    trainable = False
    in_all = False
    order = 950
    Settings = OnnxSettings

    def __init__(self, scale: int, config: dict[str, Any] | None = None, *, where: str = "") -> None:
        super().__init__(scale, config, where=where)
        if self.settings.scale is not None and self.settings.scale != scale:
            raise MethodError(f"{where or 'onnx'}: scale: the file is x{self.settings.scale}, the run is x{scale}; "
                              f"use --scale {self.settings.scale}")
        self._model: OnnxSR | None = None

    def build(self) -> OnnxSR | None:
        """The file as a module (``None`` without ``file``: ``--weights NAME=FILE`` brings it)."""
        if not self.settings.file:
            return None
        if self._model is None:
            s = self.settings
            self._model = load_onnx(Path(s.file), self.scale, f"method {self.name}: file", s.channel_order, s.range)
        return self._model

    @torch.no_grad()
    def super_resolve(self, model: OnnxSR | None, lr: torch.Tensor) -> torch.Tensor:
        if model is None:
            raise MethodError(f"method '{self.name}' needs a model file: set `file:` in its YAML or pass --weights {self.name}=FILE.onnx")
        return model(lr).clamp(0.0, 1.0)

    def describe(self) -> dict[str, Any]:
        model = self.build()
        return {**super().describe(), **({"provenance": {**model.provenance, "claimed_source": self.settings.source}} if model else {})}
