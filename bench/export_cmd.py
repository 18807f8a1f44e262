"""``bench export``: a method trained by ``bench run`` as ONNX (verified with onnxruntime) or
safetensors, with a model card beside it (``lpsr.export``)."""
from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from lpsr.errors import UserError

console = Console(highlight=False)


@click.command(name="export")
@click.option("--method", "method_name", required=True, help="the method to export")
@click.option("--from", "run_dir", type=click.Path(path_type=Path), required=True, help="the `bench run` directory it was trained in")
@click.option("--format", "fmt", type=click.Choice(["onnx", "safetensors"]), default="onnx", show_default=True)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="the file to write (model card: OUT.card.md/.json)")
@click.option("--fp16", is_flag=True, help="ONNX: store the weights in half precision (input and output stay float32)")
@click.option("--tolerance", type=float, default=None, help="largest |onnxruntime - PyTorch| accepted [fp32 1e-4, fp16 2e-2]")
@click.option("--force", is_flag=True, help="overwrite an existing file")
def export_cmd(method_name, run_dir, fmt, out, fp16, tolerance, force) -> None:
    """Export a trained method (ONNX with dynamic batch/height/width, or safetensors) and its model card."""
    from bench.environment import git_commit
    from lpsr.export import card, export_onnx, export_safetensors, test_lr, write_card
    from lpsr.infer import load_from_run, method_dir

    out = Path(out)
    if out.is_dir():
        raise UserError(f"--out {out} is a folder; give a file name, e.g. {out / (method_name + '.' + fmt)}")
    if out.exists() and not force:
        raise UserError(f"--out {out} exists already; pass --force to overwrite it")
    if fp16 and fmt != "onnx":
        raise UserError("--fp16 applies to --format onnx only")
    if tolerance is not None and not tolerance > 0:
        raise UserError(f"--tolerance must be > 0, got {tolerance}")
    loaded = load_from_run(method_name, Path(run_dir))
    run_root = method_dir(Path(run_dir), method_name).parent
    commit = git_commit()
    meta = {"method": method_name, "scale": str(loaded.method.scale), "commit": commit,
            "run": str(loaded.origin.get("run")), "source": f"lpsr-bench {method_name} ({loaded.method.source})"}
    parity = None
    if fmt == "onnx":
        parity = export_onnx(loaded, out, test_lr(run_root, loaded.method.scale), fp16=fp16, tolerance=tolerance, metadata=meta)
        console.print(f"verified with onnxruntime on {parity['plates']} test plates: max |diff| {parity['max_abs_diff']:.3g} "
                      f"({parity['max_abs_diff_levels']:.3g} grey levels), PSNR between them >= {parity['psnr_db_min']:.2f} dB, "
                      f"{parity['identical_uint8_plates']} identical after rounding; "
                      + ("dynamic batch, height and width" if parity["dynamic_height_width"]
                         else f"dynamic batch, fixed LR size {parity['input_size'][0]}x{parity['input_size'][1]} (the trace bakes the size in)"),
                      markup=False, soft_wrap=True)
    else:
        export_safetensors(loaded, out, meta)
    md, js = write_card(card(loaded, out, fmt, parity, commit), out)
    console.print(f"wrote {out} and its model card {md} (+ {js.name})", markup=False, soft_wrap=True)
