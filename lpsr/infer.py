"""Apply a method to images without ground truth (``bench upscale``): load it from a run
directory or a weights file, read plate crops of any size (or cut the plate out of a CCPD
photo), super-resolve them in batches of equal size, round to uint8 as ``bench run`` does.

* A run directory gives the method's ``best`` checkpoint and the settings and scale it was
  trained with; those settings must equal the method's current ones (a mismatch names the
  key), so the network built is the one the checkpoint fits.
* Inputs are decoded with Pillow (8-bit RGB / grey / palette, RGBA and grey+alpha composited
  over white, 16-bit grey kept at 16-bit precision; a truncated or non-image file is a
  :class:`DataError` naming it).  Only images of exactly the same size share a batch, so a
  plate's SR never depends on the other inputs (padding one to another's size would change
  its border pixels); sizes a network cannot take are the method's business
  (``Method.super_resolve``), never a silent resize.
* ``precision``: ``fp32``, ``bf16`` (autocast, CPU or CUDA) or ``fp16`` (autocast, CUDA
  only: refused on the CPU with a one-line reason).
"""
from __future__ import annotations

import time
from collections import defaultdict
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import yaml
from torch import nn

from lpsr import registry
from lpsr.data.record import DataError
from lpsr.errors import UserError
from lpsr.method import Method

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
PRECISIONS = ("fp32", "bf16", "fp16")
#: ``--precision auto``: bf16 where the device runs it fast (lpsr.train.precision.bf16_is_fast), else fp32
AUTO = "auto"
#: largest LR input (pixels) taken by default: at x8 it is already a 16-megapixel SR image
MAX_INPUT_PIXELS = 512 * 512
CHECKPOINT = Path("ckpt") / "best.safetensors"


@dataclass
class Loaded:
    """A method ready to super-resolve, and where its network came from."""

    method: Method
    model: nn.Module | None
    origin: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------ the method
def method_dir(run_dir: Path, name: str) -> Path:
    """``run_dir/<name>`` or ``run_dir`` itself when it is that method's folder."""
    run_dir = Path(run_dir)
    for cand in (run_dir / name, run_dir):
        if (cand / "config.yaml").is_file():
            return cand
    raise UserError(f"--from {run_dir}: no {name}/config.yaml there; give a run directory written by `bench run --methods {name}`")


def _first_difference(a: Any, b: Any, path: str = "") -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            found = _first_difference(a.get(key), b.get(key), f"{path}.{key}" if path else str(key))
            if found:
                return found
        return None
    return None if a == b else path or "(settings)"


def load_from_run(name: str, run_dir: Path) -> Loaded:
    """Method ``name`` as trained in ``run_dir`` (its best checkpoint)."""
    from lpsr.train.checkpoint import load_weights

    mdir = method_dir(run_dir, name)
    try:
        cfg = yaml.safe_load((mdir / "config.yaml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UserError(f"--from {mdir}: config.yaml is unreadable ({exc}); rerun `bench run` for {name}") from None
    if not isinstance(cfg, dict) or cfg.get("method") != name or not isinstance(cfg.get("scale"), int):
        raise UserError(f"--from {mdir}: config.yaml is not a finished `bench run` of method {name}")
    if isinstance(cfg.get("weights"), dict):
        raise UserError(f"--from {mdir}: {name} was scored from --weights {cfg['weights'].get('path')}; pass that file with --weights")
    method = registry.get(name).create(int(cfg["scale"]))
    key = _first_difference(cfg.get("settings") or {}, method.config)
    if key is not None:
        trained, now = _get(cfg.get("settings") or {}, key), _get(method.config, key)
        raise UserError(f"--from {mdir}: {name} was trained with {key} = {trained!r}, but {registry.get(name).settings_file()} "
                        f"now gives {now!r}; restore that setting or retrain")
    torch.manual_seed(int(cfg.get("seed") or 0))
    model = method.build()
    origin: dict[str, Any] = {"run": str(mdir), "scale": method.scale, "data": cfg.get("data") or {}, "seed": cfg.get("seed"),
                              # the CPU threads the run evaluated with (float sums, hence a rounded pixel, can depend on them)
                              "threads": (cfg.get("train") or {}).get("threads")}
    if model is not None:
        load_weights(model, mdir / CHECKPOINT, flag=f"--from {mdir}:")
        origin["checkpoint"] = str(mdir / CHECKPOINT)
    return Loaded(method, model, origin)


def _get(d: dict, dotted: str) -> Any:
    for part in dotted.split("."):
        d = d.get(part) if isinstance(d, dict) else None
    return d


# ------------------------------------------------------------------ inputs
def find_inputs(paths: list[Path]) -> list[Path]:
    """Files as given, folders expanded to their image files (recursively, sorted)."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise UserError(f"input folder {path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
            found += files
        elif path.is_file():
            found.append(path)
        else:
            raise UserError(f"input {path}: no such file or folder")
    if not found:
        raise UserError("bench upscale: give at least one image file or folder")
    return list(dict.fromkeys(found))


def read_image(path: Path) -> np.ndarray:
    """An image file -> float32 HxWx3 RGB in [0, 1] (see the module docstring)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()  # decodes everything now: a truncated file fails here
            return _to_rgb(im)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"{path}: not a readable image ({' '.join(str(exc).split())[:120]}); remove or replace it") from None


def _to_rgb(im) -> np.ndarray:
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        peak = 1.0 if im.mode == "F" else 65535.0 if im.mode.startswith("I;16") or np.asarray(im).max() > 255 else 255.0
        grey = np.clip(np.asarray(im, dtype=np.float32) / peak, 0.0, 1.0)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = np.asarray(im.convert("RGBA"), dtype=np.float32) / 255.0
        alpha = rgba[:, :, 3:]
        return rgba[:, :, :3] * alpha + (1.0 - alpha)  # over white
    return np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0


def ccpd_lr(path: Path, scale: int, hr_size: tuple[int, int], crop: str, degradation=None) -> tuple[np.ndarray, np.ndarray, str]:
    """The benchmark's protocol on one CCPD photo: the plate cut by its annotated corners at
    ``hr_size``, then the LR made from it by ``degradation`` (an ``lpsr.degradations``
    ``Degradation``, keyed by the plate's id as in ``bench run``; default today's bicubic):
    (LR float, HR uint8, truth)."""
    from lpsr.data.ccpd import load_ccpd_image
    from lpsr.degradations import default_degradation

    record = load_ccpd_image(path, size=hr_size, crop=crop, scale=scale)
    lr, hr = (degradation or default_degradation()).pair(record.hr, scale, key=record.id)
    return lr.astype(np.float32) / 255.0, hr, record.text


# ------------------------------------------------------------------ super-resolution
def resolve_inference_precision(precision: str, device: torch.device) -> tuple[str, str | None]:
    """``--precision`` as used on ``device``: ``auto`` -> bf16 where it is fast, else fp32 (and why)."""
    if precision != AUTO:
        return precision, None
    from lpsr.train.precision import bf16_is_fast

    fast, where = bf16_is_fast(device)
    return ("bf16" if fast else "fp32"), f"--precision auto: {'bf16' if fast else 'fp32'} ({where})"


def autocast(precision: str, device: torch.device):
    """The autocast context of ``precision`` on ``device`` (fp16 is refused on the CPU)."""
    if precision not in PRECISIONS:
        raise UserError(f"--precision {precision!r}: use {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return nullcontext()
    if precision == "fp16" and device.type != "cuda":
        raise UserError("--precision fp16 needs a CUDA device: half-precision kernels on the CPU are missing or slower than fp32; "
                        "use --precision fp32 or bf16 on the CPU")
    return torch.autocast(device.type, dtype=torch.float16 if precision == "fp16" else torch.bfloat16)


def upscale(loaded: Loaded, images: list[np.ndarray], device: torch.device, batch_size: int = 8, precision: str = "fp32",
            done: Callable[[int], None] | None = None) -> tuple[list[np.ndarray], float]:
    """SR uint8 HxWx3 images in input order, and the seconds spent super-resolving."""
    from lpsr.data.patches import to_uint8

    method, model = loaded.method, loaded.model
    context = autocast(precision, device)
    if model is not None:
        model.to(device).eval()
    by_size: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, im in enumerate(images):
        by_size[im.shape[:2]].append(i)
    out: list[np.ndarray | None] = [None] * len(images)
    seconds, finished = 0.0, 0
    for idxs in by_size.values():
        for start in range(0, len(idxs), batch_size):
            chunk = idxs[start:start + batch_size]
            # NHWC memory seen as NCHW, exactly as lpsr.data.patches.to_tensor gives `bench run` (the memory
            # format picks the convolution kernel, and so the last float bit)
            lr = torch.from_numpy(np.stack([images[i] for i in chunk])).permute(0, 3, 1, 2).to(device)
            t0 = time.perf_counter()
            with torch.no_grad(), context:
                sr = method.super_resolve(model, lr).float()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            seconds += time.perf_counter() - t0
            for i, img in zip(chunk, to_uint8(sr)):
                out[i] = img
            finished += len(chunk)
            if done is not None:
                done(finished)
    return out, seconds  # type: ignore[return-value]
