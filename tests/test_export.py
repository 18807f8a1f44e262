"""`bench export` and ONNX files as leaderboard rows: the round trip torch -> ONNX -> `bench run
--weights`, the model card, the generic `onnx` method and bad files."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from cli_helpers import run_main
from lpsr import registry
from lpsr.errors import UserError
from lpsr.evaluate import load_images
from lpsr.onnx_model import load_onnx


def _bench(*args: str) -> None:
    done = subprocess.run([sys.executable, "-c", "from bench.cli import main; main()", *args], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """`tiny` trained on the test profile, exported to ONNX, and scored again from the file."""
    out = tmp_path_factory.mktemp("export")
    common = ["--profile", "test", "--limit", "6", "--ocr", "none", "--isolation", "none", "--leaderboard-dir", str(out / "lb")]
    _bench("run", "--methods", "tiny", "--run-dir", str(out / "run"), *common)
    _bench("export", "--method", "tiny", "--from", str(out / "run"), "--out", str(out / "tiny.onnx"))
    _bench("run", "--methods", "tiny", "--weights", f"tiny={out / 'tiny.onnx'}", "--run-dir", str(out / "run-onnx"), *common)
    return out


def test_onnx_row_matches_the_torch_row_per_plate(exported):
    torch_rows = pd.read_csv(exported / "run" / "tiny" / "plates.csv")
    onnx_rows = pd.read_csv(exported / "run-onnx" / "tiny" / "plates.csv")
    assert list(torch_rows["id"]) == list(onnx_rows["id"]) and len(torch_rows) == 6
    assert (torch_rows["psnr"] - onnx_rows["psnr"]).abs().max() < 0.01
    assert (torch_rows["psnr_y"] - onnx_rows["psnr_y"]).abs().max() < 0.01
    result = json.loads((exported / "run-onnx" / "tiny" / "result.json").read_text())
    assert result["status"] == "loaded" and result["weights"]["path"].endswith("tiny.onnx")
    assert result["params"] == registry.get("tiny").create(8).param_count()  # the file's weights are counted


def test_model_card_states_the_file_the_run_and_the_parity(exported):
    card = json.loads((exported / "tiny.onnx.card.json").read_text())
    assert card["sha256"] == hashlib.sha256((exported / "tiny.onnx").read_bytes()).hexdigest()
    assert card["scale"] == 8 and card["trained_on"]["profile"] == "test" and card["trained_on"]["iterations"] == 6
    parity = card["parity"]
    assert parity["plates"] == 6 and parity["max_abs_diff"] <= parity["tolerance"] and parity["dynamic_height_width"]
    assert card["results"]["psnr_y"]["ci95"][0] <= card["results"]["psnr_y"]["value"] <= card["results"]["psnr_y"]["ci95"][1]
    md = (exported / "tiny.onnx.card.md").read_text()
    assert card["sha256"] in md and "export parity" in md and "PSNR-Y dB" in md
    assert card["trained_on"]["lr"]["name"] == card["results_lr"]["name"] == "bicubic"
    assert "- LR: trained on `bicubic`" in md


def test_model_card_names_the_training_and_the_test_lr(tmp_path):
    common = ["--profile", "test", "--limit", "6", "--ocr", "none", "--isolation", "none", "--leaderboard-dir", str(tmp_path / "lb")]
    _bench("run", "--methods", "tiny", "--run-dir", str(tmp_path / "run"), "--train-degradation", "camera",
           "--degradation", "camera-mild", *common)
    out = tmp_path / "tiny.safetensors"
    _bench("export", "--method", "tiny", "--from", str(tmp_path / "run"), "--format", "safetensors", "--out", str(out))
    card = json.loads(out.with_name(out.name + ".card.json").read_text())
    assert card["trained_on"]["lr"]["name"] == "camera" and card["trained_on"]["lr"]["params"]["jpeg_quality"] == 75
    assert card["results_lr"]["name"] == "camera-mild" and card["results_lr"]["params"]["jpeg_quality"] == 90
    md = out.with_name(out.name + ".card.md").read_text()
    assert "trained on `camera` (degradation fingerprint" in md and "the test results below on `camera-mild`" in md


def test_model_card_numbers_are_the_leaderboards(exported, tmp_path):
    """Every value and CI on the card is the run's leaderboard cell (same statistic: the
    median's CI for median metrics, the rate's for rates)."""
    card = json.loads((exported / "tiny.onnx.card.json").read_text())
    _bench("report", str(exported / "run"), "--out", str(tmp_path / "lb"), "--no-figures")
    row = pd.read_csv(tmp_path / "lb.csv").set_index("method").loc["tiny"]
    with_ci = [name for name, r in card["results"].items() if "ci95" in r]
    assert {"psnr", "psnr_y", "ssim_y"} <= set(with_ci)
    for name in with_ci:
        r = card["results"][name]
        assert r["value"] == pytest.approx(row[name]), name
        assert r["ci95"] == pytest.approx([row[f"{name}.ci_low"], row[f"{name}.ci_high"]]), name


def test_onnx_file_takes_any_batch_and_size_like_the_network(exported):
    from lpsr.infer import load_from_run

    net = load_from_run("tiny", exported / "run").model.eval()
    onnx = load_onnx(exported / "tiny.onnx", 8, "test")
    for shape in [(1, 3, 1, 1), (3, 3, 3, 7), (2, 3, 8, 24)]:
        x = torch.rand(*shape, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            torch.testing.assert_close(onnx(x), net(x).clamp(0, 1), atol=1e-4, rtol=0)


def test_generic_onnx_method_from_settings_and_from_weights(exported, tmp_path, capsys):
    method = registry.get("onnx").create(8, {"file": str(exported / "tiny.onnx"), "source": "exported by the test"})
    model = method.build()
    lr = torch.rand(2, 3, 8, 24, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(method.super_resolve(model, lr), model(lr).clamp(0, 1))
    prov = method.describe()["provenance"]
    assert prov["sha256"] == hashlib.sha256((exported / "tiny.onnx").read_bytes()).hexdigest()
    assert prov["method"] == "tiny" and prov["claimed_source"] == "exported by the test"
    with pytest.raises(UserError, match="the file is x4, the run is x8"):
        registry.get("onnx").create(8, {"file": str(exported / "tiny.onnx"), "scale": 4})
    # `bench upscale --weights FILE.onnx` gives the torch run's SR pixels (to within a grey level)
    folder = tmp_path / "lr"
    folder.mkdir()
    from lpsr.data.degrade import make_pair

    for pid, hr in load_images(exported / "run" / "_hr" / "hr_test.npz").items():
        Image.fromarray(make_pair(hr, 8, pid)[0]).save(folder / f"{pid}.png")
    code, _, err = run_main(capsys, "upscale", str(folder), "--method", "onnx", "--weights", str(exported / "tiny.onnx"),
                            "--out", str(tmp_path / "out"), "--ocr", "none")
    assert code == 0, err
    for pid, sr in load_images(exported / "run" / "tiny" / "sr_test.npz").items():
        got = np.asarray(Image.open(tmp_path / "out" / "onnx" / f"{pid}.png")).astype(int)
        assert np.abs(got - sr).max() <= 1


def test_bad_onnx_files_are_one_line_errors(tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(UserError, match="is not a loadable ONNX model"):
        load_onnx(junk, 8, "--weights tiny=junk.onnx")
    from bench.weights import load_external_model

    with pytest.raises(UserError, match=r"--weights tiny=.*junk.onnx: .* not a loadable ONNX model"):
        load_external_model(registry.get("tiny").create(8), None, str(junk))


def test_export_safetensors_and_refusals(exported, tmp_path, capsys):
    from lpsr.infer import load_from_run
    from lpsr.train.checkpoint import load_weights

    out = tmp_path / "tiny.safetensors"
    code, _, err = run_main(capsys, "export", "--method", "tiny", "--from", str(exported / "run"), "--format", "safetensors", "--out", str(out))
    assert code == 0, err
    net = registry.get("tiny").create(8).build()
    load_weights(net, out)
    ref = load_from_run("tiny", exported / "run").model
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), ref.state_dict().values()))
    code, _, err = run_main(capsys, "export", "--method", "tiny", "--from", str(exported / "run"), "--format", "safetensors", "--out", str(out))
    assert code == 2 and "--force" in err
    code, _, err = run_main(capsys, "export", "--method", "tiny", "--from", str(tmp_path), "--out", str(tmp_path / "x.onnx"))
    assert code == 2 and "no tiny/config.yaml" in err


def test_attention_networks_export_to_onnx_and_match_torch(tmp_path):
    """TBSRN's nn.MultiheadAttention: its fused inference op has no ONNX symbol; the export
    traces the unfused attention and still matches PyTorch within the tolerance."""
    from lpsr.export import TOLERANCE, export_onnx
    from lpsr.infer import Loaded

    torch.manual_seed(0)
    method = registry.get("tbsrn").create(8)
    rng = np.random.default_rng(0)
    lrs = [rng.integers(0, 256, (8, 24, 3), dtype=np.uint8) for _ in range(3)]
    assert torch.backends.mha.get_fastpath_enabled()
    parity = export_onnx(Loaded(method, method.build().eval()), tmp_path / "tbsrn.onnx", lrs)
    assert parity["max_abs_diff"] <= TOLERANCE["fp32"] and parity["plates"] == 3
    assert torch.backends.mha.get_fastpath_enabled()  # restored for everything after the export
