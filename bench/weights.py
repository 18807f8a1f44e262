"""``--weights METHOD=PATH``: published or earlier checkpoints scored instead of training."""
from __future__ import annotations

from pathlib import Path

import torch

from lpsr.errors import UserError
from lpsr.io import sha256_file
from lpsr.method import Method
from lpsr.train.checkpoint import load_weights


def parse_weights(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"--weights {item!r}: expected METHOD=PATH")
        name, path = item.split("=", 1)
        name = name.strip()
        if not name or not path:
            raise UserError(f"--weights {item!r}: expected METHOD=PATH")
        if Path(path).is_dir():
            raise UserError(f"--weights {item}: {path} is a folder, not a checkpoint file")
        if not Path(path).is_file():
            raise UserError(f"--weights {item}: file {path} not found")
        if name in out:
            raise UserError(f"--weights names {name} twice; give one checkpoint per method")
        out[name] = path
    return out


def file_sha256(path: Path) -> str:
    """The short (16 hex digits) sha256 a run records for a --weights file."""
    return sha256_file(path)[:16]


def load_external_model(method: Method, model: torch.nn.Module | None, path: str) -> torch.nn.Module:
    """Weights for ``--weights``: the harness's own safetensors, or an authors' checkpoint
    that spandrel recognises (ESRGAN, SwinIR, ...), or an ONNX file, whose network then replaces ours."""
    if path.endswith(".onnx"):
        from lpsr.onnx_model import load_onnx

        return load_onnx(path, method.scale, flag=f"--weights {method.name}={path}")
    if model is not None and path.endswith(".safetensors"):
        load_weights(model, path, flag=f"--weights {method.name}:")
        return model
    try:
        from spandrel import ModelLoader

        descriptor = ModelLoader().load_from_file(path)
    except Exception as exc:
        raise UserError(f"--weights {method.name}={path}: neither a harness .safetensors checkpoint nor a model spandrel recognises ({exc})") from None
    if descriptor.scale != method.scale:
        raise UserError(f"--weights {method.name}={path}: checkpoint is x{descriptor.scale}, the run is x{method.scale}")
    return descriptor.model
