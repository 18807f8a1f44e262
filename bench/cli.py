"""The ``bench`` command line: run, list, report, add-method, check-method, upscale, export."""
from __future__ import annotations

import errno
import os
import signal
import sys
import traceback
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from lpsr.data.cache_dir import DEFAULT_TEXT as CACHE_DEFAULT_TEXT
from lpsr.errors import UserError, os_error_message

#: ``bench report --matrix``'s output stem in the leaderboard folder
MATRIX_STEM = "robustness-matrix"
INTERRUPTED = "interrupted: finished methods and the last checkpoint are kept; rerun the same command to resume"


class Terminated(KeyboardInterrupt):
    """SIGTERM, turned into the same clean stop as Ctrl-C."""


class RateColumn(ProgressColumn):
    """Items per second of a bar (plates/s while loading and evaluating, steps/s while training)."""

    def render(self, task) -> Text:
        return Text(f"{task.speed:.1f}/s" if task.speed else "", style="progress.data.speed")


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
    from lpsr.profile import HR_SIDE_MAX, HR_SIDE_MIN

    if not (HR_SIDE_MIN <= w <= HR_SIDE_MAX and HR_SIDE_MIN <= h <= HR_SIDE_MAX):
        raise UserError(f"--hr-size {value}: each side must be {HR_SIDE_MIN}..{HR_SIDE_MAX} px (default 192x64)")
    return w, h


def _parse_ocr(value: str) -> list[str]:
    from lpsr.ocr.registry import parse_ocr_option

    return parse_ocr_option(value)


def _parse_log(value: str) -> tuple[str, ...]:
    """``--log``: ``none`` or comma-separated loggers (``tensorboard``)."""
    from lpsr.train.runlog import LOGGERS

    names = tuple(v.strip().lower() for v in value.split(",") if v.strip())
    if names in ((), ("none",), ("off",)):
        return ()
    for name in names:
        if name not in LOGGERS:
            raise UserError(f"--log {value}: unknown logger {name!r}; use {', '.join(LOGGERS)} or none")
    if "tensorboard" in names:
        try:
            import tensorboard  # noqa: F401
        except ImportError:
            raise UserError("--log tensorboard needs the tensorboard package: pip install 'lpsr-bench[tensorboard]'") from None
    return names


def leaderboard_stem(spec: str, data_name: str, scale: int, profile: str, degradation_suffix: str = "") -> tuple[str, str | None]:
    """Leaderboard file stem and, when ``--methods`` is one named group, that group;
    ``degradation_suffix`` (``RunContext.names_suffix``: ``-train-camera-random``, ``-camera``, empty for bicubic) comes last."""
    from lpsr import registry

    part = spec.strip()
    group = part if part != "all" and part not in registry.discover() and part in registry.groups() else None
    stem = f"{data_name}-x{scale}"
    if profile != "quick":
        stem += f"-{profile}"
    if group:
        stem += f"-{group}"
    return stem + degradation_suffix, group


def _options(*decorators):
    """Several click options as one decorator (shared by commands, declared once)."""
    def apply(f):
        for decorate in reversed(decorators):
            f = decorate(f)
        return f
    return apply


#: how the LR is made and where the plates are cached: ``bench run`` and ``bench sweep``
lr_and_cache_options = _options(
    click.option("--degradation", default=None, metavar="NAME|PATH",
                 help="how the test LR is made: a preset of configs/degradations/ (camera, camera-mild, ...) or a preset YAML "
                      "(docs/degradations.md) [bicubic: today's LR]"),
    click.option("--train-degradation", default=None, metavar="NAME|PATH",
                 help="how the training and validation LR are made (a preset or preset YAML), for every method trained here "
                      "[profile: train.degradation, bicubic]"),
    click.option("--cache-dir", type=click.Path(path_type=Path), default=None,
                 help=f"plate cache folder: ccpd:/folder: photos are decoded once into it and memory-mapped by every later run "
                      f"[{CACHE_DEFAULT_TEXT}]"),
    click.option("--no-cache", is_flag=True, help="decode ccpd:/folder: data without the plate cache (same plates, slower)"),
)


def _parse_subsets(text: str | None) -> tuple[str, ...] | None:
    """``--test-subsets base,db`` -> ("base", "db"); None when not given."""
    if text is None:
        return None
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    if not names:
        raise UserError(f"--test-subsets {text!r}: give comma-separated CCPD subset names, e.g. base,db,blur")
    return names


#: ``bench run`` and ``bench sweep``: which CCPD subsets' test plates are scored
test_subsets_option = click.option(
    "--test-subsets", default=None, metavar="NAMES",
    help="only the test plates of these CCPD subsets, comma-separated (base, db, blur, fn, rotate, tilt, weather, challenge, green) "
         "[all; every leaderboard reports each subset]")


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
@click.option("--isolation", type=click.Choice(["process", "none"]), default="process", show_default=True,
              help="process: each method in its own process (a crash, OOM or NaN is a failed row, the others go on); "
                   "none: all in this process (debuggers)")
@click.option("--deterministic", is_flag=True,
              help="deterministic GPU training: torch.use_deterministic_algorithms, cudnn.deterministic, CUBLAS_WORKSPACE_CONFIG; "
                   "cudnn.benchmark off (slower)")
@click.option("--log", "log_to", default="none", show_default=True, metavar="LOGGER",
              help="experiment logging besides train.jsonl: tensorboard (<run-dir>/<method>/tb/) or none")
@test_subsets_option
@lr_and_cache_options
def run(methods, scale, data, profile, device, weights, ocr, run_dir, leaderboard_dir, limit, hr_size, crop, seed, strict,
        isolation, deterministic, log_to, test_subsets, degradation, train_degradation, cache_dir, no_cache) -> None:
    """Train (or load) each method, evaluate on the same test plates, write a leaderboard.

    Exit status: 0 all finished; 1 a method crashed (or ran out of memory); 2 a method
    failed with an error you can fix (e.g. a NaN loss: lower train.lr), or bad input."""
    from lpsr import registry
    from bench.report.leaderboard import build
    from bench.options import check_seed
    from lpsr.paths import check_not_file
    from bench.runner import RunPlan, Runner
    from bench.weights import parse_weights

    if limit is not None and limit < 1:
        raise UserError(f"--limit must be >= 1, got {limit}")
    if seed is not None:
        check_seed(seed)
    if deterministic:  # read by cuBLAS when it starts: set before any CUDA work (children inherit it)
        from lpsr.train.device import CUBLAS_DETERMINISTIC

        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_DETERMINISTIC)
    check_not_file(Path(leaderboard_dir), "--leaderboard-dir")
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
        isolation=isolation,
        deterministic=deterministic,
        log=_parse_log(log_to),
        degradation=degradation,
        cache=not no_cache,
        cache_dir=cache_dir,
        train_degradation=train_degradation,
        test_subsets=_parse_subsets(test_subsets),
    )
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), RateColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
        console=console, transient=False,
    ) as progress:

        def factory(label: str, total: int):
            task = progress.add_task(label, total=total)
            return lambda completed: progress.update(task, completed=completed)

        def say(message: str) -> None:  # plain text: "[method]" is not rich markup
            progress.console.print(message, markup=False, highlight=False, soft_wrap=True)

        runner = Runner(plan, report=say, progress_factory=factory)
        outcomes = runner.run()
    failed = [o for o in outcomes if o.failed]
    stem, group = leaderboard_stem(methods, runner.splits.name, scale, runner.profile_name, runner.ctx.names_suffix)
    include = registry.groups()[group] if group else sorted(set(registry.groups()["all"]) | set(names))
    if len(failed) < len(outcomes):
        from bench.report.collision import replaced_leaderboard_note
        if note := replaced_leaderboard_note(Path(leaderboard_dir) / stem, runner.run_dir):
            console.print(note, markup=False, soft_wrap=True)
        md = build(runner.run_dir, Path(leaderboard_dir) / stem, include, runner.fingerprint, title=f"Leaderboard: {stem}")
        console.print(md.read_text(), markup=False, soft_wrap=True)
        console.print(f"leaderboard written to {md} (and .csv/.json beside it); per-plate results in {runner.run_dir}")
    if failed:
        _report_failures(failed, runner.run_dir)


@cli.command()
@click.option("--methods", default="all", show_default=True, help="'all', a group, or comma-separated method names")
@click.option("--seeds", default="0,1,2", show_default=True, help="seeds: 0,1,2 or 0-4; each seed's results go to RUN_DIR/seed-<s>/")
@click.option("--scale", default=8, show_default=True, type=int, help="upscaling factor")
@click.option("--data", default="synthetic", show_default=True,
              help="synthetic[:SEED] | ccpd:PATH | folder:PATH (plain `synthetic` is pinned to the profile seed: every seed sees the same plates)")
@click.option("--profile", default="quick", show_default=True, help="quick | paper | test | path to a profile YAML")
@click.option("--device", default="auto", show_default=True, help="auto (CUDA when present) | cpu | cuda[:N], on the node")
@click.option("--ocr", default="ppocr", show_default=True, help="recognisers: ppocr, plate, paddleocr (comma-separated) or none")
@click.option("--run-dir", type=click.Path(path_type=Path), default=None, help="sweep folder [runs/sweep-<data>-x<scale>-<profile>]")
@click.option("--leaderboard-dir", type=click.Path(path_type=Path), default=Path("leaderboards"), show_default=True)
@click.option("--limit", type=int, default=None, help="use at most N plates of each split")
@click.option("--hr-size", default=None, help="HR plate size WIDTHxHEIGHT [profile: 192x64]")
@click.option("--crop", type=click.Choice(["perspective", "bbox"]), default=None, help="CCPD plate crop [profile: perspective]")
@click.option("--strict", is_flag=True, help="stop at the first unparsable or unreadable data file")
@click.option("--executor", type=click.Choice(["local", "slurm"]), default="slurm", show_default=True,
              help="slurm: a Slurm job array through submitit; local: the same jobs as local processes")
@click.option("--partition", default=None, help="Slurm partition (required with --executor slurm)")
@click.option("--gpus", default=1, show_default=True, type=int, help="GPUs per job")
@click.option("--cpus", default=None, type=int, help="CPUs per job [Slurm default]")
@click.option("--mem", "mem_gb", default=None, type=float, help="memory per job in GB [Slurm default]")
@click.option("--time", "time_min", default=240, show_default=True, type=int,
              help="time limit per job in minutes; a job that reaches it checkpoints and is requeued")
@click.option("--array-parallelism", default=None, type=int, help="at most this many jobs of the array at once (Slurm; local: processes)")
@click.option("--account", default=None, help="Slurm account")
@click.option("--qos", default=None, help="Slurm QOS")
@click.option("--constraint", default=None, help="Slurm constraint (e.g. a GPU type)")
@click.option("--log-dir", type=click.Path(path_type=Path), default=None, help="submitit's job folder [RUN_DIR/submitit]")
@click.option("--wait/--no-wait", default=None, help="wait for the jobs and write the leaderboard [local: wait; slurm: no wait]")
@click.option("--deterministic", is_flag=True, help="deterministic GPU training in every job (as bench run --deterministic)")
@click.option("--log", "log_to", default="none", show_default=True, metavar="LOGGER", help="tensorboard or none (as bench run --log)")
@test_subsets_option
@lr_and_cache_options
def sweep(methods, seeds, scale, data, profile, device, ocr, run_dir, leaderboard_dir, limit, hr_size, crop, strict, executor, partition,
          gpus, cpus, mem_gb, time_min, array_parallelism, account, qos, constraint, log_dir, wait, deterministic, log_to,
          test_subsets, degradation, train_degradation, cache_dir, no_cache) -> None:
    """Submit methods x seeds as a job array (submitit: Slurm or local); each job is resumable.
    `bench report RUN_DIR` collects the seeds into one leaderboard (mean ± std over seeds)."""
    from lpsr import registry
    from lpsr.profile import load_profile
    from lpsr.paths import check_not_file
    from bench.options import resolve_degradation
    from bench.plan import RunPlan, lr_names_suffix, with_train_degradation
    from bench import sweep as sw

    sw.require_submitit()
    seed_list = sw.parse_seeds(seeds)
    if limit is not None and limit < 1:
        raise UserError(f"--limit must be >= 1, got {limit}")
    for value, option in ((gpus, "--gpus"), (time_min, "--time")):
        if value < (0 if option == "--gpus" else 1):
            raise UserError(f"{option} must be {'>= 0' if option == '--gpus' else '>= 1'}, got {value}")
    check_not_file(Path(leaderboard_dir), "--leaderboard-dir")
    names = registry.resolve(methods)
    profile_name, prof = load_profile(profile, known_methods=registry.known())
    prof = with_train_degradation(prof, train_degradation)
    data = sw.pinned_data(data, prof.seed)
    if run_dir is None:  # named like bench run's: the LR's training and test degradations come last
        suffix = lr_names_suffix(prof, resolve_degradation(degradation))
        run_dir = Path("runs") / f"sweep-{data.split(':', 1)[0]}-x{scale}-{profile_name}{suffix}"
    check_not_file(Path(run_dir), "--run-dir")
    if deterministic:  # the jobs inherit the submitting environment
        from lpsr.train.device import CUBLAS_DETERMINISTIC

        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_DETERMINISTIC)
    plan = RunPlan(methods=names, scale=scale, data=data, profile=profile, device=device, ocr=_parse_ocr(ocr), run_dir=Path(run_dir),
                   strict=strict, limit=limit, hr_size=_parse_size(hr_size), crop=crop, deterministic=deterministic,
                   log=_parse_log(log_to), degradation=degradation, train_degradation=train_degradation, cache=not no_cache,
                   cache_dir=cache_dir, test_subsets=_parse_subsets(test_subsets))
    folder = Path(log_dir) if log_dir else Path(run_dir) / "submitit"
    say = lambda message: console.print(message, markup=False, highlight=False, soft_wrap=True)  # noqa: E731
    if wait is False and executor == "local" and array_parallelism:
        raise UserError("--executor local --array-parallelism N starts the queued jobs from this process; drop --no-wait")
    ex = sw.make_executor(executor, folder / "%j", partition=partition, gpus=gpus, cpus=cpus, mem_gb=mem_gb, time_min=time_min,
                          array_parallelism=array_parallelism, account=account, qos=qos, constraint=constraint,
                          name=f"lpsr-{Path(run_dir).name}")
    jobs, pairs, _runners = sw.submit(plan, seed_list, ex, say)
    for line in sw.describe_submission(jobs, pairs, folder):
        say(line)
    if wait is None:
        wait = executor == "local"
    if not wait:
        say(f"when they are done: bench report {run_dir}")
        return
    ends = sw.wait(jobs, pairs, say)
    from bench.report.seeds import build_seeds

    stem = Path(leaderboard_dir) / Path(run_dir).name
    finished = [e for e in ends if e.get("status") != "failed"]
    if finished:
        md = build_seeds(Path(run_dir), stem, names, title=f"Leaderboard: {stem.name}")
        console.print(md.read_text(), markup=False, soft_wrap=True)
        console.print(f"leaderboard over seeds written to {md} (and .csv/.json/.html beside it)")
    failed = [e for e in ends if e.get("status") == "failed"]
    if failed:
        crashed = False
        for e in failed:
            err = e.get("error") or {}
            crashed = crashed or err.get("kind") not in ("user", "diverged")
            err_console.print(f"error: [{e['method']} seed {e['seed']}] {' '.join(str(err.get('type')).split())}: "
                              f"{' '.join(str(err.get('reason')).split())}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(1 if crashed else 2)


@cli.command(name="list")
@click.option("--scale", default=8, show_default=True, type=int)
def list_methods(scale: int) -> None:
    """Every registered method with its source and parameter count at --scale."""
    from lpsr import registry

    if scale < 1:
        raise UserError(f"--scale must be a positive integer, got {scale}")

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
@click.argument("run_dir_args", metavar="RUN_DIR...", nargs=-1, type=click.Path(path_type=Path))
@click.option("--run-dir", type=click.Path(path_type=Path), default=None, help="the run directory (same as RUN_DIR)")
@click.option("--methods", default=None, help="only these methods / this group (default: every finished method)")
@click.option("--fingerprint", default=None, help="only results on this data fingerprint (when a run directory holds several test sets)")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="output stem [leaderboards/<run-dir name>]")
@click.option("--leaderboard-dir", type=click.Path(path_type=Path), default=None,
              help="output folder, as for `bench run`: writes DIR/<run-dir name>.md (instead of --out)")
@click.option("--no-figures", is_flag=True, help="skip the figures (tables only)")
@click.option("--matrix", is_flag=True,
              help="robustness matrix of several run directories: rows method x training LR, columns test LR degradation "
                   f"[--out {MATRIX_STEM}]")
def report(run_dir_args: tuple[Path, ...], run_dir: Path | None, methods: str | None, fingerprint: str | None, out: Path | None,
           leaderboard_dir: Path | None, no_figures: bool, matrix: bool) -> None:
    """Rebuild leaderboard (md/csv/json), figures and HTML report from a run directory's files alone
    (--matrix: the robustness matrix of several run directories)."""
    from lpsr import registry
    from bench.report.leaderboard import build

    if matrix:
        _report_matrix(list(run_dir_args) + ([run_dir] if run_dir is not None else []), methods, fingerprint, out, leaderboard_dir, no_figures)
        return
    if len(run_dir_args) > 1:
        raise UserError(f"bench report: one run directory at a time (got {len(run_dir_args)}); add --matrix to compare several")
    run_dir_arg = run_dir_args[0] if run_dir_args else None
    if run_dir_arg is not None and run_dir is not None and Path(run_dir_arg) != Path(run_dir):
        raise UserError(f"bench report: give the run directory once (RUN_DIR {run_dir_arg} and --run-dir {run_dir} differ)")
    run_dir = run_dir or run_dir_arg
    if run_dir is None:
        raise UserError("bench report: name the run directory, e.g. `bench report runs/synthetic-x8-quick`")
    if not Path(run_dir).is_dir():
        raise UserError(f"bench report {run_dir}: not a directory; give a run directory written by `bench run`")
    names = registry.resolve(methods) if methods else None
    if out is not None and leaderboard_dir is not None:
        raise UserError("bench report: give --out STEM or --leaderboard-dir DIR, not both")
    if leaderboard_dir is not None:
        from lpsr.paths import check_not_file
        check_not_file(Path(leaderboard_dir), "--leaderboard-dir")
    stem = out or Path(leaderboard_dir or "leaderboards") / Path(run_dir).name
    from bench.report.collision import replaced_leaderboard_note
    if note := replaced_leaderboard_note(stem, Path(run_dir)):
        console.print(note, markup=False, soft_wrap=True)
    from bench.report.seeds import build_seeds, is_sweep

    if is_sweep(Path(run_dir)):  # a `bench sweep` folder: seed-<s>/ per seed -> mean ± std over seeds
        md = build_seeds(Path(run_dir), stem, names, fingerprint=fingerprint, title=f"Leaderboard: {stem.name}")
        console.print(md.read_text(), markup=False, soft_wrap=True)
        console.print(f"leaderboard over seeds written to {md} (and .csv/.json/.html beside it)")
        return
    md = build(Path(run_dir), stem, names, fingerprint=fingerprint, title=f"Leaderboard: {stem.name}", figures=not no_figures)
    console.print(md.read_text(), markup=False, soft_wrap=True)
    console.print(f"leaderboard written to {md} (and .csv/.json/.html beside it, figures in {md.parent / 'figures'})")


def _report_matrix(run_dirs: list[Path], methods: str | None, fingerprint: str | None, out: Path | None,
                   leaderboard_dir: Path | None, no_figures: bool) -> None:
    """``bench report --matrix RUN_DIR...``."""
    from bench.report.matrix import build_matrix

    for given, option in ((methods, "--methods"), (fingerprint, "--fingerprint"), (no_figures or None, "--no-figures")):
        if given is not None:
            raise UserError(f"bench report --matrix: {option} is not supported with --matrix; give the run directories to compare")
    if out is not None and leaderboard_dir is not None:
        raise UserError("bench report: give --out STEM or --leaderboard-dir DIR, not both")
    if leaderboard_dir is not None:
        from lpsr.paths import check_not_file
        check_not_file(Path(leaderboard_dir), "--leaderboard-dir")
    stem = out or Path(leaderboard_dir or "leaderboards") / MATRIX_STEM
    md = build_matrix(run_dirs, stem)
    console.print(md.read_text(), markup=False, soft_wrap=True)
    console.print(f"robustness matrix written to {md} (and .csv/.json/.html and the heat map beside it)")


@cli.command(name="add-method")
@click.argument("name")
@click.option("--root", type=click.Path(path_type=Path, file_okay=False), default=None, help="project root [the installed source tree]")
@click.option("--package", "package", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="make a separate installable package in DIR that registers through the lpsr.methods entry point")
def add_method(name: str, root: Path | None, package: Path | None) -> None:
    """Scaffold a method: methods/NAME.py + configs/methods/NAME.yaml, or a plug-in package (--package DIR)."""
    from bench.scaffold.new_method import scaffold, scaffold_package

    if package is not None:
        if root is not None:
            raise UserError("bench add-method: use --root or --package, not both")
        for path in scaffold_package(name, package):
            console.print(f"created {path}")
        console.print(f"next: `pip install -e {package}`, then `bench check-method {name}` and `bench run --methods {name}`")
        return
    for path in scaffold(name, root):
        console.print(f"created {path}")
    console.print(f"next: `bench check-method {name}`, edit the files, then `bench run --methods {name}` runs it")


@cli.command(name="check-method")
@click.argument("name")
@click.option("--steps", default=12, show_default=True, type=int, help="training steps for the loss check")
def check_method_cmd(name: str, steps: int) -> None:
    """Conformance checks of a method: shapes at x2/x4/x8, params, training lowers the loss,
    save/load round trip, seeded init, output range."""
    from bench.check_method import check_method

    if steps < 2:
        raise UserError(f"--steps must be >= 2, got {steps}")
    results = check_method(name, steps=steps)
    failed = [r for r in results if r.status == "FAIL"]
    for r in results:
        console.print(f"{r.status:4}  {r.name}: {r.detail}", markup=False, soft_wrap=True)
    if failed:
        raise UserError(f"method '{name}' failed {len(failed)} of {len(results)} checks: {', '.join(r.name for r in failed)}")
    skipped = sum(r.status == "SKIP" for r in results)
    console.print(f"method '{name}' passed {len(results) - skipped} checks" + (f" ({skipped} not applicable)" if skipped else ""), markup=False)


from bench.export_cmd import export_cmd  # noqa: E402  (commands in their own modules)
from bench.upscale_cmd import upscale_cmd  # noqa: E402

cli.add_command(upscale_cmd)
cli.add_command(export_cmd)


def _report_failures(failed, run_dir: Path) -> None:
    """One ``error:`` line per failed method; exit 1 when one crashed, 2 when every failure is
    one a user fixes (a setting, a file, a NaN loss)."""
    crashed = False
    for o in failed:
        err = o.result.get("error") or {}
        kind = err.get("kind")
        if kind in ("user", "diverged"):
            text = f"[{o.name}] {err.get('reason')}"
        else:
            crashed = True
            log = f" (traceback in {Path(run_dir) / o.name / err['log']})" if err.get("log") else ""
            text = f"[{o.name}] failed: {err.get('type')}: {err.get('reason')}{log}"
        err_console.print(f"error: {' '.join(text.split())}", markup=False, highlight=False, soft_wrap=True)
    sys.exit(1 if crashed else 2)


def _on_sigterm(signum, frame) -> None:
    raise Terminated()


def _interrupted(exc: BaseException) -> None:
    if getattr(exc, "checkpointed", False):  # lpsr.train.errors.TrainingInterrupted: names the checkpoint
        err_console.print(str(exc), markup=False, soft_wrap=True)
    if isinstance(exc, Terminated) or getattr(exc, "signum", None) == signal.SIGTERM:
        err_console.print(f"terminated (SIGTERM): {INTERRUPTED.split(': ', 1)[1]}", markup=False, soft_wrap=True)
        sys.exit(143)
    err_console.print(INTERRUPTED, markup=False, soft_wrap=True)
    sys.exit(130)


def _error(message: str, code: int = 2) -> None:
    err_console.print(f"error: {' '.join(str(message).split())}", markup=False, highlight=False, soft_wrap=True)
    sys.exit(code)


def main() -> None:
    """The ``bench`` command.  Under torchrun every exit (success, error or interrupt) of a
    rank that joined the process group leaves through :func:`lpsr.train.ddp.finish`."""
    try:
        _main()
    except SystemExit as exc:
        code = exc.code
        if isinstance(code, int) or code is None:
            _leave_process_group(code or 0)
        else:  # sys.exit("message"): Python prints it and exits 1
            _leave_process_group(1, message=str(code))
        raise
    except BaseException:
        if _process_group_joined():
            traceback.print_exc()
            _leave_process_group(1)
        raise
    _leave_process_group(0)


def _process_group_joined() -> bool:
    ddp = sys.modules.get("lpsr.train.ddp")  # imported by a command that trains; never imported here for nothing
    return ddp is not None and ddp.is_initialized()


def _leave_process_group(code: int, message: str | None = None) -> None:
    """A torchrun rank ends here (``ddp.finish``: barrier on success, then ``os._exit``);
    a single process returns and exits as usual."""
    if _process_group_joined():
        if message:
            print(message, file=sys.stderr)
        sys.modules["lpsr.train.ddp"].finish(code)


def _main() -> None:
    try:
        signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread (embedded use): keep the default
        pass
    try:
        cli.main(standalone_mode=False, prog_name="bench")
    except click.exceptions.Abort as exc:
        # click turns Ctrl-C (and our SIGTERM) into Abort; say what is kept
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, KeyboardInterrupt):
            _interrupted(cause)
        err_console.print("aborted")
        sys.exit(130)
    except click.UsageError as exc:
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
        _error(exc.format_message() + hint, exc.exit_code)
    except click.ClickException as exc:
        _error(exc.format_message(), exc.exit_code)
    except UserError as exc:
        _error(str(exc))
    except KeyboardInterrupt as exc:
        _interrupted(exc)
    except OSError as exc:
        # a fault of the machine or the user's files (full disk, permissions, read-only
        # disk), not a bug: one line, no traceback
        if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EACCES, errno.EPERM, errno.EROFS,
                         errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG, errno.EMFILE, errno.EIO):
            _error(os_error_message(exc, "accessing"))
        raise


if __name__ == "__main__":
    main()
