"""Take a trained method out of the harness (``bench export``): ONNX or safetensors, with a
model card (markdown + JSON) beside the file.

ONNX: the method's inference path (``Method.super_resolve``: network + clamp) traced by
``torch.onnx.export`` (the TorchScript exporter: the dynamo one needs ``onnxscript``, not a
dependency) with dynamic batch, height and width; NCHW float32 RGB in [0, 1] in and out.
``fp16`` stores the weights in half precision (the interface stays float32).  The export is
verified at once with onnxruntime: on the run's own test plates (their LR, made from
``_hr/hr_test.npz``) the largest absolute difference and the PSNR between onnxruntime's and
PyTorch's SR are stated and the export fails above ``tolerance``; a second, odd-sized input
checks that height and width really are dynamic (a network whose trace bakes in the size,
e.g. one with a size-dependent resampling matrix, is exported with a fixed size instead and
the card says so).
"""
from __future__ import annotations

import io
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lpsr.errors import UserError
from lpsr.infer import Loaded
from lpsr.io import atomic_path, sha256_file, write_json, write_text

FORMATS = ("onnx", "safetensors")
#: largest |onnxruntime - torch| accepted, in [0, 1] units (fp32: float rounding only)
TOLERANCE = {"fp32": 1e-4, "fp16": 2e-2}
OPSET = 17


class ExportError(UserError):
    pass


class _Inference(nn.Module):
    """``method.super_resolve(model, lr)`` as a module (what is traced)."""

    def __init__(self, loaded: Loaded, fp16: bool) -> None:
        super().__init__()
        self.loaded, self.fp16 = loaded, fp16
        self.net = loaded.model.half() if fp16 and loaded.model is not None else loaded.model

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        x = lr.half() if self.fp16 else lr
        return self.loaded.method.super_resolve(self.net, x).float()


def test_lr(run_dir: Path, scale: int, limit: int = 32) -> list[np.ndarray]:
    """LR images (uint8) of the run's test plates: ``_hr/hr_test.npz`` degraded as in ``bench run``."""
    from lpsr.data.degrade import make_pair
    from lpsr.evaluate import load_images

    path = Path(run_dir) / "_hr" / "hr_test.npz"
    if not path.is_file():
        raise ExportError(f"--from {run_dir}: no {path.name} (the run's test plates) under _hr/; finish the run with `bench run` first")
    return [make_pair(hr, scale, pid)[0] for pid, hr in list(load_images(path).items())[:limit]]


def _to_onnx_bytes(module: nn.Module, example: torch.Tensor, dynamic_hw: bool, metadata: dict[str, str]) -> bytes:
    import onnx

    axes = {0: "batch", 2: "height", 3: "width"} if dynamic_hw else {0: "batch"}
    buf = io.BytesIO()
    fastpath = torch.backends.mha.get_fastpath_enabled()
    # nn.MultiheadAttention's inference fast path is one fused op (aten::_native_multi_head_attention)
    # that the ONNX exporter has no symbol for (TBSRN failed with UnsupportedOperatorError);
    # without it the same attention is traced as matmuls and softmax
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer warnings
            torch.onnx.export(module, (example,), buf, input_names=["lr"], output_names=["sr"], opset_version=OPSET,
                              dynamic_axes={"lr": axes, "sr": dict(axes)}, dynamo=False)
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    proto = onnx.load_from_string(buf.getvalue())
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    return proto.SerializeToString()


def _compare(data: bytes, module: nn.Module, batches: list[torch.Tensor], quiet: bool = False) -> dict[str, float]:
    """Max |ort - torch| (float, [0, 1]) and PSNR (dB) between the two uint8 SR images."""
    from lpsr.data.patches import to_uint8
    from lpsr.metrics.image import psnr
    from lpsr.onnx_model import OnnxSR

    ort_model = OnnxSR(data, "export", quiet=quiet)
    worst, psnrs = 0.0, []
    for lr in batches:
        with torch.no_grad():
            ref = module(lr)
            got = ort_model(lr)
        if got.shape != ref.shape:
            raise ValueError(f"onnxruntime gives {tuple(got.shape)}, torch {tuple(ref.shape)}")
        worst = max(worst, float((got - ref).abs().max()))
        psnrs += [psnr(a, b) for a, b in zip(to_uint8(got.clamp(0, 1)), to_uint8(ref.clamp(0, 1)))]
    finite = [p for p in psnrs if np.isfinite(p)]
    return {"max_abs_diff": worst, "max_abs_diff_levels": round(worst * 255.0, 4),
            "psnr_db_min": min(finite) if finite else float("inf"), "identical_uint8_plates": len(psnrs) - len(finite),
            "plates": len(psnrs)}


def export_onnx(loaded: Loaded, out: Path, lrs: list[np.ndarray], fp16: bool = False, tolerance: float | None = None,
                metadata: dict[str, str] | None = None) -> dict[str, Any]:
    """Write ``out`` (ONNX) and return the parity report; :class:`ExportError` above ``tolerance``."""
    from lpsr.data.patches import to_tensor

    if not lrs:
        raise ExportError("bench export: no test plates to verify the export on")
    tol = TOLERANCE["fp16" if fp16 else "fp32"] if tolerance is None else tolerance
    module = _Inference(loaded, fp16).eval()
    by_size: dict[tuple, list[np.ndarray]] = {}
    for lr in lrs:
        by_size.setdefault(lr.shape, []).append(lr)
    batches = [to_tensor(group) for group in by_size.values()]
    h, w = batches[0].shape[2:]
    odd = torch.rand(2, 3, h + 3, w + 5, generator=torch.Generator().manual_seed(0))
    meta = dict(metadata or {})
    try:
        data = _to_onnx_bytes(module, batches[0][:1], True, meta)
        try:
            dynamic = _compare(data, module, [odd], quiet=True)["max_abs_diff"] <= tol
        except Exception:  # onnxruntime refuses the other size: the trace baked it in
            dynamic = False
        if not dynamic:
            data = _to_onnx_bytes(module, batches[0][:1], False, meta)
        parity = _compare(data, module, batches)
    except ExportError:
        raise
    except Exception as exc:
        raise ExportError(f"bench export: {loaded.method.name} cannot be exported to ONNX ({type(exc).__name__}: "
                          f"{' '.join(str(exc).split())[:200]}); use --format safetensors") from None
    parity.update({"tolerance": tol, "dynamic_height_width": dynamic, "input_size": None if dynamic else [int(w), int(h)],
                   "fp16_weights": fp16})
    if parity["max_abs_diff"] > tol:
        raise ExportError(f"bench export: onnxruntime differs from PyTorch by up to {parity['max_abs_diff']:.3g} "
                          f"(PSNR between them {parity['psnr_db_min']:.2f} dB) on {parity['plates']} test plates, "
                          f"above the tolerance {tol:g}; nothing written")
    with atomic_path(out) as tmp:
        tmp.write_bytes(data)
    return parity


def export_safetensors(loaded: Loaded, out: Path, metadata: dict[str, str]) -> None:
    from lpsr.train.checkpoint import save_weights

    if loaded.model is None:
        raise ExportError(f"bench export: {loaded.method.name} has no network to save; use --format onnx")
    save_weights(loaded.model, out, metadata=metadata)


# ------------------------------------------------------------------ the model card
def card(loaded: Loaded, out: Path, fmt: str, parity: dict[str, Any] | None, commit: str) -> dict[str, Any]:
    """The model card's facts: method, scale, interface, training, results with CIs, file hash."""
    from lpsr.io import read_json_or_none

    method, origin = loaded.method, loaded.origin
    run = Path(origin.get("run", "."))
    result = read_json_or_none(run / "result.json") or {}
    cfg_train = (result.get("train") or {})
    return {
        "file": out.name,
        "format": fmt,
        "sha256": sha256_file(out),
        "method": method.name,
        "source": method.source,
        "settings": method.config,
        "scale": method.scale,
        "input": {"layout": "NCHW", "channels": "RGB", "dtype": "float32", "range": [0.0, 1.0],
                  "size": "any height and width" if not parity or parity.get("dynamic_height_width") else
                  f"fixed {parity['input_size'][0]}x{parity['input_size'][1]} (W x H)",
                  "output": f"NCHW RGB float32 in [0, 1], {method.scale}x height and width"},
        "trained_on": {"data": origin.get("data"), "profile": result.get("profile"), "seed": origin.get("seed"),
                       "iterations": cfg_train.get("iterations"), "best_iteration": cfg_train.get("best_iteration"),
                       "train_seconds": cfg_train.get("train_seconds"), "device": result.get("device"),
                       "lr": result.get("train_degradation")},  # how its training and val LR were made
        "results": results_with_ci(run),
        "results_lr": result.get("degradation"),  # how the test LR of those results was made (None: LR-only data)
        "run": str(run),
        "run_commit": result.get("commit"),
        "export_commit": commit,
        "parity": parity,
    }


def results_with_ci(run: Path) -> dict[str, dict[str, float]]:
    """Every metric of the run's ``plates.csv`` as the leaderboard aggregates it, with its
    bootstrap 95% CI (``lpsr.metrics``: the leaderboard's definitions)."""
    import pandas as pd

    from lpsr.metrics.spec import IMAGE_METRICS, OCR_METRICS, aggregate_with_ci, recognisers_in

    path = run / "plates.csv"
    if not path.is_file():
        return {}
    table = pd.read_csv(path, keep_default_na=False)
    specs = [(m, None) for m in IMAGE_METRICS] + [(m, o) for o in recognisers_in(table) for m in OCR_METRICS]
    out: dict[str, dict[str, float]] = {}
    for spec, ocr in specs:
        if spec.col(ocr) not in table:
            continue
        values = pd.to_numeric(table[spec.col(ocr)], errors="coerce")
        out[spec.name(ocr)] = {"label": spec.title(ocr), **aggregate_with_ci(spec, values)}
    return out


def card_markdown(c: dict[str, Any]) -> str:
    t, p = c["trained_on"], c.get("parity")
    data = t.get("data") or {}
    lines = [
        f"# Model card: {c['method']} x{c['scale']} ({c['format']})", "",
        f"- file: `{c['file']}`, sha256 `{c['sha256']}`",
        f"- method: {c['method']} ({c['source']})",
        f"- input: {c['input']['layout']} {c['input']['channels']} {c['input']['dtype']} in [0, 1], {c['input']['size']}; "
        f"output: {c['input']['output']}",
        f"- trained on: {data.get('name')} (fingerprint {data.get('fingerprint')}, {data.get('n_train')} train / "
        f"{data.get('n_val')} val / {data.get('n_test')} test plates, HR {'x'.join(map(str, data.get('hr_size') or []))}, "
        f"crop {data.get('crop')}), profile `{t.get('profile')}`, seed {t.get('seed')}",
        f"- budget: {t.get('iterations')} iterations ({t.get('train_seconds')} s on {t.get('device')}), best checkpoint at "
        f"iteration {t.get('best_iteration')}",
        f"- LR: trained on {_lr_text(t.get('lr'))}; the test results below on {_lr_text(c.get('results_lr'))} "
        f"(parameters in the card's JSON)",
        f"- run: `{c['run']}` (commit {c['run_commit']}); exported at commit {c['export_commit']}",
    ]
    if p:
        lines.append(f"- export parity (onnxruntime vs PyTorch on {p['plates']} test plates): max |diff| {p['max_abs_diff']:.3g} "
                     f"({p['max_abs_diff_levels']:.3g} grey levels), PSNR between them >= {p['psnr_db_min']:.2f} dB "
                     f"({p['identical_uint8_plates']} plates identical after rounding), tolerance {p['tolerance']:g}"
                     + (", fp16 weights" if p.get("fp16_weights") else ""))
    if c["results"]:
        lines += ["", "## Test results of the run (median or rate, ± std, bootstrap 95% CI)", "", "| metric | value | std | 95% CI | n |",
                  "|---|---|---|---|---|"]
        for r in c["results"].values():
            ci = r.get("ci95")
            lines.append(f"| {r['label']} | {r['value']:.4g} | {r['std']:.3g} | "
                         f"{f'{ci[0]:.4g} .. {ci[1]:.4g}' if ci else '-'} | {r['n']} |")
    return "\n".join(lines) + "\n"


def _lr_text(record: dict[str, Any] | None) -> str:
    """A degradation record of ``result.json`` (name, params, fingerprint) in a few words."""
    if not record:
        return "the data's own LR (LR-only data)"
    return f"`{record.get('name')}` (degradation fingerprint {record.get('fingerprint')})"


def write_card(c: dict[str, Any], out: Path) -> tuple[Path, Path]:
    md, js = out.with_name(out.name + ".card.md"), out.with_name(out.name + ".card.json")
    write_text(md, card_markdown(c))
    write_json(js, json.loads(json.dumps(c, default=str)))
    return md, js
