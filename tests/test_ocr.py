"""Recognisers: reading rendered plates, empty readings, decoding, batching, errors."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lpsr.metrics.text import exact_match
from lpsr.ocr.base import OcrError, ctc_greedy_decode, package_file
from lpsr.ocr.registry import RECOGNIZERS, get_recognizer, parse_recognizers

FONT = Path(__file__).resolve().parents[1] / "lpsr" / "assets" / "NotoSansCJKsc-Bold-plate.otf"


def render_plate(text: str, size=(192, 64)) -> np.ndarray:
    """A clean blue Chinese plate: white characters evenly spaced on a blue field."""
    from PIL import Image, ImageDraw, ImageFont

    if not FONT.is_file():
        pytest.skip(f"plate font {FONT} missing")
    font = ImageFont.truetype(str(FONT), 46)
    w, h = 440, 140
    im = Image.new("RGB", (w, h), (18, 62, 170))
    draw = ImageDraw.Draw(im)
    draw.rectangle([5, 5, w - 6, h - 6], outline=(235, 235, 235), width=4)
    step = (w - 40) / len(text)
    for i, c in enumerate(text):
        draw.text((20 + step * (i + 0.5), h / 2), c, font=font, fill=(240, 240, 240), anchor="mm")
    return np.asarray(im.resize(size, Image.LANCZOS))


@pytest.fixture(scope="module", params=["ppocr", "plate"])
def recognizer(request):
    return get_recognizer(request.param, threads=1, batch_size=4)


def test_reads_rendered_plates(recognizer):
    texts = ["皖A12345", "苏E7K9P2"]
    grey = np.full((64, 192, 3), 128, np.uint8)
    results = recognizer.read([render_plate(t) for t in texts] + [grey])
    for (text, conf), truth in zip(results, texts):
        assert exact_match(text, truth), (recognizer.name, text, truth)
        assert 0.5 < conf <= 1.0
    assert results[-1] == ("", 0.0)


def test_batching_keeps_order_and_matches_single_reads(recognizer):
    plate = render_plate("皖A12345")
    images = [plate, plate[:, :150], np.ascontiguousarray(plate[8:56]), plate[:, 20:]]
    batched = recognizer.read(images)
    single = [recognizer.read([im])[0] for im in images]
    assert [t for t, _ in batched] == [t for t, _ in single]
    for (_, cb), (_, cs) in zip(batched, single):
        assert cb == pytest.approx(cs, abs=1e-4)
    assert recognizer.read([]) == []


def test_bad_image_is_a_clear_error(recognizer):
    with pytest.raises(OcrError, match="uint8 RGB"):
        recognizer.read([np.zeros((64, 192), np.uint8)])
    with pytest.raises(OcrError, match="uint8 RGB"):
        recognizer.read([np.zeros((64, 192, 3), np.float32)])


def test_ctc_greedy_decode_follows_paddleocr():
    chars = ["", "A", "B"]
    # frames: A A blank A B B blank -> "AAB": repeats collapse, a blank separates two A's
    idx = [1, 1, 0, 1, 2, 2, 0]
    p = [0.9, 0.8, 0.7, 0.6, 0.5, 0.95, 0.99]
    probs = np.zeros((1, len(idx), 3), np.float32)
    for t, (i, q) in enumerate(zip(idx, p)):
        probs[0, t] = (1 - q) / 2
        probs[0, t, i] = q
    (text, conf), = ctc_greedy_decode(probs, chars)
    assert text == "AAB"
    assert conf == pytest.approx(np.mean([0.9, 0.6, 0.5]))   # first frame of each kept run
    blank = np.zeros((2, 5, 3), np.float32)
    blank[..., 0] = 1
    assert ctc_greedy_decode(blank, chars) == [("", 0.0), ("", 0.0)]
    with pytest.raises(OcrError):
        ctc_greedy_decode(blank, ["", "A"])


def test_registry_names_and_errors():
    assert parse_recognizers("ppocr, plate,ppocr") == ["ppocr", "plate"]
    assert set(RECOGNIZERS) >= {"ppocr", "plate", "paddleocr"}
    with pytest.raises(OcrError, match="unknown OCR recogniser 'tesseract'"):
        get_recognizer("tesseract")
    with pytest.raises(OcrError, match="--ocr"):
        parse_recognizers("ppocr,nope")
    with pytest.raises(OcrError):
        parse_recognizers(" , ")


def test_missing_model_file_names_file_and_package():
    with pytest.raises(OcrError, match="models/nope.onnx.*rapidocr-onnxruntime"):
        package_file("rapidocr_onnxruntime", "models", "nope.onnx", pip_name="rapidocr-onnxruntime")
    with pytest.raises(OcrError, match="pip install no-such-pkg"):
        package_file("no_such_pkg_xyz", "m.onnx", pip_name="no-such-pkg")


def test_paddleocr_needs_a_local_model_and_never_downloads(tmp_path, monkeypatch):
    monkeypatch.delenv("LPSR_PADDLEOCR_REC_DIR", raising=False)
    with pytest.raises(OcrError, match="model_dir"):
        get_recognizer("paddleocr")
    with pytest.raises(OcrError, match="not found"):
        get_recognizer("paddleocr", model_dir=tmp_path / "absent")
    try:
        import paddleocr  # noqa: F401
        pytest.skip("paddleocr is installed; the missing-package error cannot be shown")
    except ImportError:
        pass
    (tmp_path / "inference.json").write_text("{}")
    with pytest.raises(OcrError, match="pip install"):
        get_recognizer("paddleocr", model_dir=tmp_path)


def test_hr_ccpd_plates_are_read(ccpd_sample):
    from lpsr.data.ccpd import load_ccpd

    plates = load_ccpd(ccpd_sample, limit={"train": 0, "val": 0, "test": 12}).test
    for name in ("ppocr", "plate"):
        results = get_recognizer(name, threads=1).read([p.hr for p in plates])
        exact = np.mean([exact_match(t, p.text) for (t, _), p in zip(results, plates)])
        assert exact >= 0.6, (name, exact)
        assert all(0.0 <= c <= 1.0 for _, c in results)
