"""``bench upscale``: apply trained methods to plate crops or CCPD photos (``lpsr.infer``) and
write the SR images, ``reads.csv`` and a contact sheet (``bench.contact_sheet``)."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from lpsr.data.record import DataError
from lpsr.errors import UserError

console = Console(highlight=False)
SHEET, PAGE, READS = "contact_sheet.png", "index.html", "reads.csv"
READ_COLUMNS = ("input", "method", "sr_file", "recogniser", "text", "confidence", "truth")


@dataclass
class Item:
    path: Path
    name: str  # output file stem, unique
    lr: np.ndarray  # float32 HxWx3 in [0, 1]
    hr: np.ndarray | None = None
    truth: str = ""


def load_methods(names: list[str], run_dir: Path | None, weights: Path | None, scale: int | None):
    """One :class:`lpsr.infer.Loaded` per name: from the run, a weights file, or (parameter-free) as is."""
    from bench.weights import load_external_model
    from lpsr import registry
    from lpsr.infer import Loaded, load_from_run

    if weights is not None and len(names) > 1:
        raise UserError("--weights gives one network: use it with one --method, or --from RUN_DIR with --compare")
    if run_dir is not None and weights is not None:
        raise UserError("give --from RUN_DIR or --weights FILE, not both")
    out = []
    for name in names:
        entry = registry.get(name)
        if run_dir is not None and (entry.cls.trainable or (Path(run_dir) / name / "config.yaml").is_file()):
            out.append(load_from_run(name, Path(run_dir)))
            continue
        method = entry.create(scale or (out[0].method.scale if out else 8))
        if weights is not None:
            if not weights.is_file():
                raise UserError(f"--weights {weights}: file not found")
            out.append(Loaded(method, load_external_model(method, method.build(), str(weights)), {"weights": str(weights)}))
        elif not method.trainable:
            out.append(Loaded(method, method.build(), {}))
        else:
            raise UserError(f"method '{name}' is learned: give --from RUN_DIR (a `bench run` with it) or --weights FILE")
    scales = {m.method.scale for m in out}
    if len(scales) > 1:
        raise UserError(f"--compare: the methods have different scales ({', '.join(f'{m.method.name} x{m.method.scale}' for m in out)})")
    if scale is not None and scale not in scales:
        raise UserError(f"--scale {scale}: {out[0].method.name} from {run_dir} is x{out[0].method.scale}; drop --scale")
    return out


def read_inputs(paths: list[Path], ccpd: bool, scale: int, hr_size, crop: str, strict: bool, max_pixels: int, degradation=None):
    """Decoded inputs and the skipped files with their reasons (``degradation``: the LR of a
    CCPD photo's plate, default bicubic)."""
    from lpsr.infer import ccpd_lr, find_inputs, read_image

    items: list[Item] = []
    skipped: list[tuple[Path, str]] = []
    used: set[str] = set()
    for path in find_inputs(paths):
        try:
            if ccpd:
                lr, hr, truth = ccpd_lr(path, scale, hr_size, crop, degradation)
            else:
                lr, hr, truth = read_image(path), None, ""
            h, w = lr.shape[:2]
            if h * w > max_pixels:
                raise DataError(f"{path}: {w}x{h} px is too large for a plate crop (SR would be {w * scale}x{h * scale}); "
                                f"crop the plate first, pass a CCPD photo with --ccpd, or raise --max-input-pixels ({max_pixels})")
        except DataError as exc:
            if strict:
                raise
            skipped.append((path, str(exc)))
            continue
        name, n = path.stem, 1
        while name in used:
            n += 1
            name = f"{path.stem}-{n}"
        used.add(name)
        items.append(Item(path, name, lr, hr, truth))
    return items, skipped


def _png_bytes(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def _nearest(lr: np.ndarray, scale: int) -> np.ndarray:
    return np.round(np.repeat(np.repeat(lr, scale, axis=0), scale, axis=1) * 255.0).astype(np.uint8)


@click.command(name="upscale")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--method", "method_name", required=True, help="the method to apply (its network from --from or --weights)")
@click.option("--compare", default=None, help="more methods side by side (comma-separated; each from the same --from run)")
@click.option("--from", "run_dir", type=click.Path(path_type=Path), default=None, help="a `bench run` directory: best checkpoint + settings")
@click.option("--weights", type=click.Path(path_type=Path), default=None, help="a weights file: harness .safetensors, .onnx or a spandrel checkpoint")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="output folder")
@click.option("--ccpd", is_flag=True, help="inputs are CCPD photos: cut the plate by its annotated corners and downscale it to the run's LR size")
@click.option("--degradation", default=None, metavar="NAME|PATH",
              help="with --ccpd: how the plate's LR is made, as `bench run --degradation` (a preset or preset YAML) [bicubic]")
@click.option("--scale", type=int, default=None, help="scale without --from [8]")
@click.option("--ocr", default="ppocr", show_default=True, help="recognisers: ppocr, plate, paddleocr (comma-separated) or none")
@click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda[:N]")
@click.option("--precision", type=click.Choice(["fp32", "bf16", "fp16", "auto"]), default="fp32", show_default=True,
              help="autocast for SR; auto: bf16 where the device runs it fast (AMX-bf16 CPU, bf16 GPU), else fp32")
@click.option("--batch-size", type=int, default=8, show_default=True, help="images per batch (only images of one size share a batch)")
@click.option("--max-input-pixels", type=int, default=None, help="larger inputs are skipped (--strict: an error) [512x512]")
@click.option("--sheet-limit", type=int, default=24, show_default=True, help="rows of the contact sheet (the first N inputs)")
@click.option("--threads", type=int, default=None,
              help="CPU threads (0: torch's default) [the run's train.threads, so the SR pixels equal the run's]")
@click.option("--strict", is_flag=True, help="stop at the first unreadable input instead of skipping it")
@click.option("--force", is_flag=True, help="overwrite existing outputs")
def upscale_cmd(inputs, method_name, compare, run_dir, weights, out, ccpd, degradation, scale, ocr, device, precision, batch_size,
                max_input_pixels, sheet_limit, threads, strict, force) -> None:
    """Super-resolve plate crops (or CCPD photos with --ccpd): SR PNGs, reads.csv and a contact sheet in --out."""
    from bench.contact_sheet import Row, sheet_html, sheet_png
    from bench.options import resolve_degradation, resolve_device
    from lpsr.paths import check_not_file
    from bench.report.interface import floor_name
    from lpsr import registry
    from lpsr.infer import MAX_INPUT_PIXELS, Loaded, autocast, resolve_inference_precision, upscale
    from lpsr.io import atomic_path

    if batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {batch_size}")
    if scale is not None and scale < 1:
        raise UserError(f"--scale must be a positive integer, got {scale}")
    names = list(dict.fromkeys([method_name] + [n.strip() for n in (compare or "").split(",") if n.strip()]))
    from lpsr.ocr.registry import parse_ocr_option

    recognisers = parse_ocr_option(ocr)
    deg = None
    if degradation is not None:
        if not ccpd:
            raise UserError("--degradation needs --ccpd: a plate crop is already the LR (only a CCPD photo's HR plate is degraded)")
        deg = resolve_degradation(degradation)
    dev = resolve_device(device)
    precision, why = resolve_inference_precision(precision, dev)
    if why:
        console.print(why)
    autocast(precision, dev)  # fp16 on the CPU: refused before anything loads
    check_not_file(Path(out), "--out")
    loaded = load_methods(names, run_dir, weights, scale)
    s = loaded[0].method.scale
    threads = threads if threads is not None else next((m.origin["threads"] for m in loaded if m.origin.get("threads")), None)
    if threads and dev.type == "cpu":
        import torch

        torch.set_num_threads(threads)
    data = next((m.origin.get("data") for m in loaded if m.origin.get("data")), None) or {}
    hr_size = tuple(data.get("hr_size") or (192, 64))
    items, skipped = read_inputs(list(inputs), ccpd, s, hr_size, str(data.get("crop") or "perspective"), strict,
                                 max_input_pixels or MAX_INPUT_PIXELS, deg)
    for path, reason in skipped:
        console.print(f"skipped: {reason}", markup=False, soft_wrap=True)  # the reason names the file
    if not items:
        raise UserError(f"bench upscale: none of the {len(skipped)} inputs is a readable image")

    out = Path(out)
    targets = [out / n / f"{it.name}.png" for n in names for it in items] + [out / READS, out / SHEET, out / PAGE]
    existing = [t for t in targets if t.exists()]
    if existing and not force:
        raise UserError(f"--out {out}: {len(existing)} outputs exist already (e.g. {existing[0]}); pass --force to overwrite them")

    # the floor column (Bicubic): the floor method (Method.floor), run beside the chosen ones
    floor = floor_name()
    if floor is None:
        raise UserError("bench upscale: no floor method registered (a Method with floor = True, e.g. bicubic)")
    floor_col = floor.capitalize()
    floor_run = next((m for m in loaded if m.method.name == floor), None) or Loaded(registry.get(floor).create(s), None)
    chosen = {id(m) for m in loaded}
    runs = loaded if id(floor_run) in chosen else [*loaded, floor_run]
    srs: dict[str, list[np.ndarray]] = {}
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console) as progress:
        for m in runs:
            task = progress.add_task(f"upscale {m.method.name}", total=len(items))
            srs[m.method.name], seconds = upscale(m, [it.lr for it in items], dev, batch_size, precision,
                                                  done=lambda k, t=task: progress.update(t, completed=k))
            if id(m) in chosen:
                sizes = sorted({f"{it.lr.shape[1]}x{it.lr.shape[0]}" for it in items})
                progress.console.print(
                    f"[{m.method.name}] {len(items)} plates in {seconds:.3f} s: {len(items) / max(seconds, 1e-9):.1f} plates/s "
                    f"(LR {', '.join(sizes[:3])}{' ...' if len(sizes) > 3 else ''}; {dev}, {precision}, batch {batch_size}; SR only)",
                    markup=False, highlight=False, soft_wrap=True)
                for it, img in zip(items, srs[m.method.name]):
                    with atomic_path(out / m.method.name / f"{it.name}.png") as tmp:
                        tmp.write_bytes(_png_bytes(img))
        columns = {"LR (nearest)": [_nearest(it.lr, s) for it in items], floor_col: srs[floor],
                   **{m.method.name: srs[m.method.name] for m in loaded if m.method.name != floor}}
        if all(it.hr is not None for it in items):
            columns["HR"] = [it.hr for it in items]
        reads: dict[str, dict[str, list]] = {c: {} for c in columns if c != "LR (nearest)"}
        if recognisers:
            from lpsr.ocr.registry import get_recognizer

            task = progress.add_task("read plates", total=len(recognisers))
            for k, rec_name in enumerate(recognisers, start=1):
                rec = get_recognizer(rec_name)
                for col in reads:
                    reads[col][rec_name] = [(str(t), float(c)) for t, c in rec.read(columns[col])]
                progress.update(task, completed=k)

    method_cols = [m.method.name for m in loaded]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(READ_COLUMNS)
    for i, it in enumerate(items):
        for col in reads:
            name = floor if col == floor_col else col
            sr_file = f"{name}/{it.name}.png" if name in method_cols else ""
            for rec_name in recognisers or [""]:
                text, conf = reads[col][rec_name][i] if rec_name else ("", "")
                writer.writerow([str(it.path), name, sr_file, rec_name, text, conf if conf == "" else f"{conf:.4f}", it.truth])
    with atomic_path(out / READS) as tmp:
        tmp.write_text(buf.getvalue(), encoding="utf-8")

    rows = [Row(it.name, it.truth, {c: columns[c][i] for c in columns},
                {c: [(r, *reads[c][r][i]) for r in recognisers] for c in reads}) for i, it in enumerate(items[:sheet_limit])]
    title = f"bench upscale x{s}: " + ", ".join(f"{m.method.name} ({m.origin.get('run') or m.origin.get('weights') or 'no weights'})" for m in loaded)
    if deg is not None and not deg.is_default:
        title += f"; LR: degradation {deg.name} ({deg.fingerprint})"
    sheet_png(rows, out / SHEET, title)
    sheet_html(rows, out / PAGE, title, SHEET, {(it.name, n): f"{n}/{it.name}.png" for it in items for n in method_cols})
    shown = f" (the first {sheet_limit} of {len(items)} on the sheet)" if len(items) > sheet_limit else ""
    console.print(f"{len(items)} inputs upscaled x{s}{f', {len(skipped)} skipped' if skipped else ''}: SR images in {out}/<method>/, "
                  f"{out / READS}, {out / SHEET}{shown}, {out / PAGE}", markup=False, soft_wrap=True)
