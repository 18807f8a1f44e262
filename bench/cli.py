"""The ``bench`` command line: run, list, report, add-method."""
from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from lpsr.errors import UserError

console = Console(stderr=False, highlight=False)
err_console = Console(stderr=True, highlight=False)


def _parse_size(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        w, h = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise UserError(f"--hr-size {value!r}: expected WIDTHxHEIGHT, e.g. 192x64") from None
    if w < 1 or h < 1:
        raise UserError(f"--hr-size {value!r}: both sides must be positive")
    return w, h


def _parse_ocr(value: str) -> list[str]:
    if value.strip().lower() in ("", "none", "off"):
        return []
    from lpsr.ocr.registry import parse_recognizers

    return parse_recognizers(value)


def leaderboard_stem(spec: str, data_name: str, scale: int, profile: str) -> tuple[str, str | None]:
    """Leaderboard file stem and, when ``--methods`` is one named group, that group."""
    from lpsr import registry

    group = spec.strip() if spec.strip() in registry.groups() and spec.strip() != "all" else None
    stem = f"{data_name}-x{scale}"
    if profile != "quick":
        stem += f"-{profile}"
    if group:
        stem += f"-{group}"
    return stem, group


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="lpsr-bench")
def cli() -> None:
    """lpsr-bench: license-plate super-resolution benchmark harness."""


@cli.command()
@click.option("--methods", default="all", show_default=True, help="'all', a group (e.g. pecl-ablation), or comma-separated method names")
@click.option("--scale", default=8, show_default=True, type=int, help="upscaling factor")
@click.option("--data", default="synthetic", show_default=True, help="synthetic[:SEED] | ccpd:PATH | folder:PATH")
@click.option("--profile", default="quick", show_default=True, help="quick | paper | test | path to a profile YAML")
@click.option("--device", default="auto", show_default=True, help="auto (CUDA when present) | cpu | cuda[:N]")
@click.option("--weights", multiple=True, metavar="METHOD=PATH", help="load a checkpoint instead of training (repeatable)")
@click.option("--ocr", default="ppocr", show_default=True, help="recognisers for readability: ppocr, plate, paddleocr (comma-separated) or none")
@click.option("--run-dir", type=click.Path(path_type=Path), default=None, help="where per-method results go [runs/<data>-x<scale>-<profile>]")
@click.option("--leaderboard-dir", type=click.Path(path_type=Path), default=Path("leaderboards"), show_default=True)
@click.option("--limit", type=int, default=None, help="use at most N plates of each split")
@click.option("--hr-size", default=None, help="HR plate size WIDTHxHEIGHT [profile: 192x64]")
@click.option("--crop", type=click.Choice(["perspective", "bbox"]), default=None, help="CCPD plate crop [profile: perspective]")
@click.option("--seed", type=int, default=None, help="seed for data, patches and initialisation [profile: 0]")
@click.option("--strict", is_flag=True, help="stop at the first unparsable or unreadable data file instead of skipping it")
def run(methods, scale, data, profile, device, weights, ocr, run_dir, leaderboard_dir, limit, hr_size, crop, seed, strict) -> None:
    """Train (or load) each method, evaluate on the same test plates, write a leaderboard."""
    from lpsr import registry
    from bench.report.leaderboard import build
    from bench.runner import RunPlan, Runner, parse_weights

    if limit is not None and limit < 1:
        raise UserError(f"--limit must be >= 1, got {limit}")
    names = registry.resolve(methods)
    plan = RunPlan(
        methods=names,
        scale=scale,
        data=data,
        profile=profile,
        device=device,
        weights=parse_weights(list(weights)),
        ocr=_parse_ocr(ocr),
        run_dir=run_dir,
        strict=strict,
        limit=limit,
        hr_size=_parse_size(hr_size),
        crop=crop,
        seed=seed,
    )
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
        console=console, transient=False,
    ) as progress:

        def factory(label: str, total: int):
            task = progress.add_task(label, total=total)
            return lambda completed: progress.update(task, completed=completed)

        runner = Runner(plan, report=progress.console.print, progress_factory=factory)
        runner.run()
    stem, group = leaderboard_stem(methods, runner.splits.name, scale, runner.profile_name)
    include = registry.groups()[group] if group else sorted(set(registry.groups()["all"]) | set(names))
    md = build(runner.run_dir, Path(leaderboard_dir) / stem, include, runner.fingerprint, title=f"Leaderboard: {stem}")
    console.print(md.read_text(), markup=False, soft_wrap=True)
    console.print(f"leaderboard written to {md} (and .csv/.json beside it); per-plate results in {runner.run_dir}")


@cli.command(name="list")
@click.option("--scale", default=8, show_default=True, type=int)
def list_methods(scale: int) -> None:
    """Every registered method with its source and parameter count at --scale."""
    from lpsr import registry

    table = Table(title=f"methods at x{scale}")
    for col in ("method", "origin", "params", "groups", "source"):
        table.add_column(col)
    for name in registry.names():
        entry = registry.get(name)
        try:
            params = f"{entry.create(scale).param_count():,}"
        except UserError as exc:
            params = f"n/a ({exc})"
        groups = ", ".join((["all"] if entry.in_all else []) + list(entry.groups))
        table.add_row(name, entry.origin, params, groups, entry.cls.source)
    console.print(table)


@cli.command()
@click.option("--run-dir", type=click.Path(path_type=Path, exists=True, file_okay=False), required=True)
@click.option("--methods", default=None, help="only these methods / this group (default: every finished method)")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="output stem [leaderboards/<run-dir name>]")
def report(run_dir: Path, methods: str | None, out: Path | None) -> None:
    """Rebuild a leaderboard (md/csv/json) from a run directory's files alone."""
    from lpsr import registry
    from bench.report.leaderboard import build

    names = registry.resolve(methods) if methods else None
    stem = out or Path("leaderboards") / run_dir.name
    try:
        md = build(run_dir, stem, names, title=f"Leaderboard: {stem.name}")
    except FileNotFoundError as exc:
        raise UserError(str(exc)) from None
    console.print(md.read_text(), markup=False, soft_wrap=True)
    console.print(f"leaderboard written to {md}")


@cli.command(name="add-method")
@click.argument("name")
@click.option("--root", type=click.Path(path_type=Path, file_okay=False), default=None, help="project root [the installed source tree]")
def add_method(name: str, root: Path | None) -> None:
    """Scaffold methods/NAME.py and configs/methods/NAME.yaml for a new method."""
    from bench.scaffold.new_method import scaffold

    for path in scaffold(name, root):
        console.print(f"created {path}")
    console.print(f"next: edit them, then `bench list` shows '{name}' and `bench run --methods {name}` runs it")


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except UserError as exc:
        err_console.print(f"error: {exc}", markup=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("interrupted: finished methods and the last checkpoint are kept; rerun the same command to resume")
        sys.exit(130)


if __name__ == "__main__":
    main()
