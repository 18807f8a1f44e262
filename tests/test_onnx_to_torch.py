"""The torch copies of the ONNX recognisers: same outputs as onnxruntime, gradients, backbone."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lpsr.ocr.onnx_to_torch import (load_torch_recognizer, model_spec, recognizer_backbone,
                                     recognizer_input)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # onnx2torch's Slice indexing notice

SHAPES = {"plate": (73, 4, 512), "ppocr": (6625, 8, 480)}  # classes, width per frame, backbone channels


def ort_run(path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


@pytest.fixture(scope="module", params=["plate", "ppocr"])
def converted(request):
    torch.manual_seed(0)
    return request.param, load_torch_recognizer(request.param)


def test_matches_onnxruntime(converted):
    name, model = converted
    spec = model_spec(name)
    classes, stride, _ = SHAPES[name]
    for width in (spec.width, 96):
        x = torch.rand(2, 3, spec.height, width) * 2 - 1
        with torch.no_grad():
            ours = model(x)
        assert ours.shape == (2, width // stride, classes)
        np.testing.assert_allclose(ours.numpy(), ort_run(spec.onnx_path, x.numpy()), atol=1e-4)
        assert torch.allclose(ours.sum(-1), torch.ones(2, width // stride), atol=1e-4)


def test_gradient_reaches_the_input_and_weights_are_frozen(converted):
    name, model = converted
    assert not model.training
    assert not any(p.requires_grad for p in model.parameters())
    images = torch.rand(2, 3, 64, 192, requires_grad=True)
    probs = model(recognizer_input(images, name))
    (1 - probs[..., 0]).sum().backward()   # push frames away from blank
    assert torch.isfinite(images.grad).all()
    assert images.grad.abs().sum() > 0


def test_logits_are_the_pre_softmax_scores(converted):
    name, model = converted
    logits_model = load_torch_recognizer(name, logits=True)
    x = recognizer_input(torch.rand(1, 3, 64, 192), name)
    with torch.no_grad():
        assert torch.allclose(logits_model(x).softmax(-1), model(x), atol=1e-5)


def test_backbone_shape(converted):
    name, _ = converted
    spec = model_spec(name)
    _, stride, channels = SHAPES[name]
    backbone = recognizer_backbone(name)
    x = torch.rand(2, 3, spec.height, 160, requires_grad=True)
    feats = backbone(x)
    assert feats.shape == (2, channels, 1, 160 // stride)
    feats.square().mean().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_recognizer_input_matches_paddleocr_preprocessing():
    from lpsr.ocr.base import resize_norm

    rng = np.random.default_rng(0)
    for name in ("plate", "ppocr"):
        spec = model_spec(name)
        img = rng.integers(0, 256, (64, 192, 3), dtype=np.uint8)
        ours = recognizer_input(torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255, name)
        ref = resize_norm(img, spec.height, spec.width, spec.bgr)
        assert ours.shape == (1, 3, spec.height, spec.width)
        np.testing.assert_allclose(ours[0].numpy(), ref, atol=0.02)   # uint8 rounding in cv2 only
        unpadded = recognizer_input(torch.rand(1, 3, 64, 192), name, pad=False)
        assert unpadded.shape == (1, 3, spec.height, 3 * spec.height)


def test_lstm_converter_matches_onnxruntime(tmp_path):
    """Our LSTM converter on a small bidirectional ONNX LSTM with biases and initial states."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from lpsr.ocr.onnx_to_torch import _convert

    rng = np.random.default_rng(1)
    T, N, I, H = 5, 2, 3, 4
    inits = [numpy_helper.from_array(rng.standard_normal(s).astype(np.float32), n) for n, s in
             [("W", (2, 4 * H, I)), ("R", (2, 4 * H, H)), ("B", (2, 8 * H)),
              ("h0", (2, N, H)), ("c0", (2, N, H))]]
    node = helper.make_node("LSTM", ["x", "W", "R", "B", "", "h0", "c0"], ["y_all", "yh", "yc"],
                            hidden_size=H, direction="bidirectional")
    copy = helper.make_node("Identity", ["y_all"], ["y"])  # onnx2torch outputs single tensors only
    add = helper.make_node("Add", ["yh", "yc"], ["hc"])
    graph = helper.make_graph([node, copy, add], "lstm", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [T, N, I])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None),
                               helper.make_tensor_value_info("hc", TensorProto.FLOAT, None)], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    onnx.save(model, tmp_path / "lstm.onnx")
    x = rng.standard_normal((T, N, I)).astype(np.float32)

    import onnxruntime as ort
    y_ref, hc_ref = ort.InferenceSession(str(tmp_path / "lstm.onnx"), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    y, hc = _convert(model)(torch.from_numpy(x))
    np.testing.assert_allclose(y.detach().numpy(), y_ref, atol=1e-5)
    np.testing.assert_allclose(hc.detach().numpy(), hc_ref, atol=1e-5)


def test_conversion_leaves_onnx2torch_registry_as_it_was():
    from onnx2torch.node_converters import registry

    before = dict(registry._CONVERTER_REGISTRY)
    recognizer_backbone("ppocr")
    assert registry._CONVERTER_REGISTRY == before
