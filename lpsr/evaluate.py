"""Score a method on whole plates: super-resolve in batches, then score every plate with the
metric table (:func:`lpsr.metrics.spec.plate_table`: PSNR / PSNR-Y / SSIM-Y and each
recogniser's reading).  SR is rounded to uint8 before scoring, as a saved image would be.

Also measures a method's cost (parameters, FLOPs per plate at the test LR size, warm
milliseconds per plate on the run's device) and saves SR images for the report's figures."""
from __future__ import annotations

import hashlib
import time
from collections import defaultdict

import numpy as np
import torch
from torch import nn

from lpsr.data.patches import to_tensor, to_uint8
from lpsr.data.record import PlateRecord
from lpsr.degradations import Degradation, default_degradation
from lpsr.errors import UserError
from lpsr.method import Method
from lpsr.metrics.image import psnr
from lpsr.metrics.spec import plate_table
from lpsr.profile import EVAL_BATCH


def super_resolve_plates(
    method: Method, model: nn.Module | None, plates: list[PlateRecord], device: torch.device, batch_size: int = EVAL_BATCH,
    degradation: Degradation | None = None,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Return (SR, HR) uint8 images in plate order; HR is mod-cropped to the scale.  Each
    plate's LR is ``degradation`` (default: today's bicubic) keyed by the plate's id, so
    every method sees the same LR bytes.  An LR-only plate (no HR) is super-resolved from
    its own LR as given; its HR is None."""
    degradation = degradation or default_degradation()
    pairs = [(p.lr, None) if p.hr is None else degradation.pair(p.hr, method.scale, key=p.id) for p in plates]
    by_shape: dict[tuple, list[int]] = defaultdict(list)
    for i, (lr, _) in enumerate(pairs):
        by_shape[lr.shape].append(i)
    srs: list[np.ndarray | None] = [None] * len(plates)
    if model is not None:
        model.eval()
    for idxs in by_shape.values():
        for start in range(0, len(idxs), batch_size):
            chunk = idxs[start : start + batch_size]
            lr = to_tensor([pairs[i][0] for i in chunk]).to(device)
            with torch.no_grad():
                sr = method.super_resolve(model, lr)
            for i, img in zip(chunk, to_uint8(sr)):
                srs[i] = img
    hrs = [hr for _, hr in pairs]
    for sr, (lr, hr), p in zip(srs, pairs, plates):
        want = hr.shape if hr is not None else (lr.shape[0] * method.scale, lr.shape[1] * method.scale, 3)
        if sr.shape != want:
            raise RuntimeError(f"method '{method.name}' returned {sr.shape} for plate {p.id}, expected {want}")
    return srs, hrs  # type: ignore[return-value]


def plates_table(
    plates: list[PlateRecord], srs: list[np.ndarray] | None, hrs: list[np.ndarray] | None, crop_border: int,
    ocr: list[str], done=None,
):
    """``plates.csv`` as a table (image metrics + each recogniser's reads) and OCR speed info.
    LR-only plates (no HR, ``hrs`` of Nones): readability only, with their tracks and frames;
    CCPD plates of subset folders: their ``subset``."""
    from lpsr.score_ocr import read_plates

    reads, info = read_plates(ocr, srs if srs is not None else hrs, done=done)
    has_hr = all(p.hr is not None for p in plates)
    meta = {} if has_hr else {key: [str(p.meta[key]) for p in plates] if all(key in p.meta for p in plates) else None
                              for key in ("track", "frame")}
    # CCPD subsets: a column only when the data has them (the sample's plates.csv stays as it was)
    subsets = [str(p.meta.get("subset") or "") for p in plates] if any(p.meta.get("subset") for p in plates) else None
    table = plate_table([p.id for p in plates], [p.text for p in plates], srs, hrs if has_hr else None, crop_border, reads,
                        has_hr=has_hr, tracks=meta.get("track"), frames=meta.get("frame"), subsets=subsets)
    return table, info


#: how many test plates keep their SR (and HR) image for the report's figures: all of a test
#: set up to this size (the sample's 163), else the same FIGURE_PLATES for every method
FIGURE_PLATES = 512


def figure_ids(ids: list[str], keep: int = FIGURE_PLATES) -> set[str]:
    """The test plates whose images are saved (``sr_test.npz``, ``hr_test.npz``): every one
    of up to ``keep`` plates, else the ``keep`` whose sha256(id) is smallest -- a choice that
    depends on no method, chunk or order, so every method and the HR keep the same plates."""
    if len(ids) <= keep:
        return set(ids)
    return set(sorted(ids, key=lambda i: hashlib.sha256(i.encode("utf-8")).digest())[:keep])


def save_images(path, ids: list[str], images: list[np.ndarray]) -> None:
    """SR (or HR) plates as one compressed ``.npz``: ``ids`` and ``images`` (object array of
    uint8 HxWx3), for figures that need the pictures (``bench report``)."""
    from lpsr.io import atomic_path

    arr = np.empty(len(images), dtype=object)
    for i, im in enumerate(images):
        arr[i] = np.ascontiguousarray(im, dtype=np.uint8)
    shapes = {im.shape for im in images}
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            if len(shapes) == 1:  # the usual case: one stacked array, no pickling needed to read it
                np.savez_compressed(fh, ids=np.array(ids), images=np.stack(list(arr)))
            else:
                np.savez_compressed(fh, ids=np.array(ids), images=arr)


def load_images(path) -> dict[str, np.ndarray]:
    """The plates ``save_images`` wrote, by id; a UserError naming the file when it is
    damaged (truncated, not an .npz, wrong arrays), so a report can skip what needs it."""
    try:
        with np.load(path, allow_pickle=True) as data:
            return {str(i): np.asarray(im) for i, im in zip(data["ids"], data["images"])}
    except Exception as exc:  # zipfile, pickle, KeyError, ...: all mean "this file is damaged"
        raise UserError(f"{path}: unreadable image file ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'damaged'}); "
                        "rerun `bench run` for that method to rewrite it") from None


def measure_cost(method: Method, model: nn.Module | None, lr_hw: tuple[int, int], device: torch.device,
                 batch_size: int, min_seconds: float = 0.5, max_repeats: int = 20) -> dict:
    """Parameters, FLOPs for one plate of LR size ``lr_hw`` (H, W) and warm ms/plate at ``batch_size``.

    FLOPs come from ``torch.utils.flop_counter.FlopCounterMode`` on ``super_resolve`` of one
    plate (2 FLOPs per multiply-add; ops it has no formula for, e.g. interpolation, count 0).
    Timing: two warm-up batches, then repeats until ``min_seconds`` (at most ``max_repeats``),
    CUDA synchronised; the median batch time divided by the batch size.
    """
    from torch.utils.flop_counter import FlopCounterMode

    from lpsr.method import count_parameters

    h, w = lr_hw
    gen = torch.Generator().manual_seed(0)
    one = torch.rand(1, 3, h, w, generator=gen).to(device)
    flops: int | None
    try:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            method.super_resolve(model, one)
        flops = int(counter.get_total_flops())
    except Exception:  # a model the counter cannot trace: say so rather than guess
        flops = None
    batch = torch.rand(batch_size, 3, h, w, generator=gen).to(device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    times: list[float] = []
    with torch.no_grad():
        for _ in range(2):
            method.super_resolve(model, batch)
        sync()
        start = time.perf_counter()
        while len(times) < max_repeats and (len(times) < 3 or time.perf_counter() - start < min_seconds):
            t0 = time.perf_counter()
            method.super_resolve(model, batch)
            sync()
            times.append(time.perf_counter() - t0)
    return {
        "params": count_parameters(model),
        "flops_per_plate": flops,
        "ms_per_plate": round(1000.0 * float(np.median(times)) / batch_size, 4),
        "batch": batch_size,
        "lr_size": [w, h],
        "repeats": len(times),
        "device": str(device),
        "torch": str(torch.__version__),
        "threads": torch.get_num_threads() if device.type == "cpu" else None,
    }


def mean_psnr(method: Method, model: nn.Module | None, plates: list[PlateRecord], device: torch.device, batch_size: int = EVAL_BATCH,
              degradation: Degradation | None = None) -> float:
    """Validation score: mean RGB PSNR over the plates (the checkpoint selection rule), their
    LR made by ``degradation`` (the training one, ``train.degradation``; default bicubic)."""
    srs, hrs = super_resolve_plates(method, model, plates, device, batch_size, degradation)
    return float(np.mean([psnr(s, h) for s, h in zip(srs, hrs)]))
