"""An ONNX file as a torch module: ``bench run --weights NAME=model.onnx`` and the generic
``onnx`` method score a model that exists only as an exported file.

onnxruntime runs the graph (CPU); the module takes and returns NCHW float RGB in [0, 1] like
every harness network, converting to the file's channel order (``rgb`` / ``bgr``), value
range (``0-1`` / ``0-255``) and input dtype (float32 / float16).  The file's bytes are kept
in the module, so it pickles into ``bench run``'s per-method process (an
``InferenceSession`` does not) and still runs when the file is later moved.  Its float
initialisers are registered as (unused) parameters so that parameter counts see them.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lpsr.errors import UserError

CHANNEL_ORDERS = ("rgb", "bgr")
RANGES = ("0-1", "0-255")
#: metadata keys of an ONNX file that say where it comes from (``bench export`` writes them)
PROVENANCE_KEYS = ("source", "method", "commit", "run")


def _session(data: bytes, quiet: bool = False):
    import onnxruntime as ort

    options = ort.SessionOptions()
    # warnings about unused initialisers are not the user's business; ``quiet``: nor are the
    # errors of a probe whose failure the caller handles (bench export's dynamic-size try)
    options.log_severity_level = 4 if quiet else 3
    return ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])


class OnnxSR(nn.Module):
    """An SR network read from an ONNX file (see the module docstring)."""

    def __init__(self, data: bytes, file_name: str, channel_order: str = "rgb", value_range: str = "0-1", quiet: bool = False) -> None:
        super().__init__()
        import onnx
        from onnx import numpy_helper

        self.data, self.file_name = data, file_name
        self.channel_order, self.value_range = channel_order, value_range
        self.sha256 = hashlib.sha256(data).hexdigest()
        proto = onnx.load_from_string(data)
        meta = {p.key: p.value for p in proto.metadata_props}
        self.provenance: dict[str, Any] = {
            "file": file_name, "sha256": self.sha256, "producer": f"{proto.producer_name} {proto.producer_version}".strip(),
            **{k: meta[k] for k in PROVENANCE_KEYS if k in meta},
        }
        self.weights = nn.ParameterList(
            nn.Parameter(torch.from_numpy(numpy_helper.to_array(t).astype(np.float32)), requires_grad=True)
            for t in proto.graph.initializer if t.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16)
        )
        self._sess = None
        self.quiet = quiet

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_sess"] = None
        return state

    @property
    def session(self):
        if self._sess is None:
            self._sess = _session(self.data, self.quiet)
        return self._sess

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        sess = self.session
        inp = sess.get_inputs()[0]
        x = lr.detach().float().cpu().numpy()
        if self.channel_order == "bgr":
            x = x[:, ::-1]
        if self.value_range == "0-255":
            x = x * 255.0
        x = np.ascontiguousarray(x, dtype=np.float16 if inp.type == "tensor(float16)" else np.float32)
        y = sess.run(None, {inp.name: x})[0].astype(np.float32)
        if self.value_range == "0-255":
            y = y / 255.0
        if self.channel_order == "bgr":
            y = y[:, ::-1]
        return torch.from_numpy(np.ascontiguousarray(y)).to(lr.device)


def load_onnx(path: str | Path, scale: int, flag: str, channel_order: str = "rgb", value_range: str = "0-1") -> OnnxSR:
    """The ONNX file at ``path`` as an :class:`OnnxSR`, checked: it loads in onnxruntime, takes
    one NCHW image batch, and enlarges a 3-channel 8x8 LR by ``scale`` (a one-line
    :class:`UserError` starting with ``flag`` otherwise)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"{flag}: cannot read {path} ({exc.strerror or exc})") from None
    try:
        model = OnnxSR(data, path.name, channel_order, value_range)
        inputs = model.session.get_inputs()
    except Exception as exc:  # onnx / onnxruntime raise many types for a bad file
        raise UserError(f"{flag}: {path} is not a loadable ONNX model ({' '.join(str(exc).split())[:200]})") from None
    if len(inputs) != 1 or len(inputs[0].shape) != 4:
        raise UserError(f"{flag}: {path} must take one NCHW image batch; it takes {[(i.name, i.shape) for i in inputs]}")
    shape = inputs[0].shape
    h, w = (d if isinstance(d, int) else 8 for d in shape[2:])
    try:
        with torch.no_grad():
            out = model(torch.full((1, 3, h, w), 0.5))
    except Exception as exc:
        raise UserError(f"{flag}: {path} fails on a 1x3x{h}x{w} input ({' '.join(str(exc).split())[:200]})") from None
    if tuple(out.shape[1:]) != (3, h * scale, w * scale):
        raise UserError(f"{flag}: {path} maps a 1x3x{h}x{w} LR to {tuple(out.shape)}, not x{scale} (1x3x{h * scale}x{w * scale})")
    return model
