"""Plan and run a benchmark: check everything, then train (or load) -> evaluate -> write each
method, then the HR reference.

:class:`Runner` is the planner.  Every check (options, profile, data, every ``--weights``
file's contents, each method's training settings) runs in ``Runner.__init__``, before
anything is moved or trained; it resolves the plan into a :class:`~bench.plan.RunContext`.
``Runner.run`` holds a lock on the run directory (``lpsr.lock``) and runs each method in its
own process (:mod:`bench.isolation` running :func:`bench.child.run_method_job`, which
reloads the plates itself) or in this one (``--isolation none``, torchrun): one method's
steps are :class:`bench.method_run.MethodRun`, what a rerun keeps is :mod:`bench.method_dir`.
A method that fails is a failed row (:func:`bench.method_run.record_failure`).
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from bench.child import MethodJob, run_method_job
from bench.environment import git_commit
from bench.eval_chunks import EVAL_DIR, EvalChunks, merged_ocr_info
from bench.isolation import run_in_child, use_processes
from bench.method_run import MethodRun, record_failure
from bench.options import check_seed, describe_load, describe_skipped, resolve_degradation, resolve_device
from bench.outcome import Failure, MethodOutcome
from bench.plan import DataFacts, DataSpec, RunContext, RunPlan, lr_names_suffix, with_train_degradation
from bench.progress import BarFactory, Reporter, no_bar
from bench.weights import file_sha256, load_external_model
from lpsr import registry
from lpsr.config import ConfigError, config_hash
from lpsr.data.degrade import modcrop
from lpsr.data.record import PlateSplits
from lpsr.data.sources import data_fingerprint
from lpsr.data.splits import check_training_splits
from lpsr.errors import UserError
from lpsr.evaluate import figure_ids, plates_table, save_images
from lpsr.io import atomic_path, read_json_or_none, remove_stray_temps, write_json
from lpsr.lock import RunLock
from lpsr.method import Method
from lpsr.paths import check_not_file
from lpsr.profile import HR_SIDE_MAX, HR_SIDE_MIN, load_profile
from lpsr.train.ddp import distributed_context
from lpsr.train.loop import train
from lpsr.train.settings import TrainSettings

__all__ = ["MethodOutcome", "RunPlan", "Runner"]


def check_lr_only(spec: str, trainers: list[str], degradation) -> None:
    """LR-only data (real LR crops, no HR) is scored as given: nothing can train on it and no
    degradation applies."""
    if trainers:
        raise UserError(f"--data {spec}: LR-only data (lr_filename in labels.csv) has no HR to train {', '.join(trainers)} on; "
                        f"pass --weights {trainers[0]}=FILE (a model trained elsewhere) or train on data with HR")
    if not degradation.is_default:
        raise UserError(f"--degradation {degradation.name}: --data {spec} is LR-only data, scored on its LR crops as given "
                        "(no HR to degrade); drop --degradation")


class Runner:
    def __init__(self, plan: RunPlan, report: Reporter = print, progress_factory: BarFactory | None = None) -> None:
        self.plan = plan
        self.report = report
        self.make_bar: BarFactory = progress_factory or no_bar
        # Everything is checked here, before anything is moved aside, written or trained:
        # options, the profile, each method's training settings, data, every --weights file.
        if isinstance(plan.scale, bool) or not isinstance(plan.scale, int) or plan.scale < 1:
            raise UserError(f"--scale must be a positive integer, got {plan.scale!r}")
        if plan.run_dir is not None:
            check_not_file(Path(plan.run_dir), "--run-dir")
        self.profile_name, self.profile = load_profile(plan.profile, known_methods=registry.known())
        self.profile = with_train_degradation(self.profile, plan.train_degradation)
        self.profile_where = f"profile {plan.profile}"
        seed = check_seed(plan.seed) if plan.seed is not None else self.profile.seed
        self.hr_size = self._check_hr_size()
        self.device = resolve_device(plan.device)
        degradation = resolve_degradation(plan.degradation)
        # Every method is checked before anything runs, so a typo fails in a second.
        self.methods: list[Method] = [registry.get(n).create(plan.scale) for n in plan.methods]
        unknown_w = sorted(set(plan.weights) - set(plan.methods))
        if unknown_w:
            raise UserError(f"--weights names {', '.join(unknown_w)}, which is not among --methods")
        train_settings = {m.name: self._check_training(m) for m in self.methods if m.trainable and m.name not in plan.weights}
        self._check_crop_border()
        self._check_ocr()
        synth = self.profile.data.synthetic
        data = DataSpec(plan.data, self.hr_size, plan.crop or self.profile.data.crop, plan.strict, seed,
                        (synth.train, synth.val, synth.test), plan.limit, plan.scale, plan.cache,
                        str(Path(plan.cache_dir).expanduser().absolute()) if plan.cache_dir else None, plan.test_subsets)
        self.splits: PlateSplits = data.load(self.report, self.make_bar)
        if not self.splits.test:
            raise UserError(f"--data {plan.data}: the test split is empty")
        if self.splits.lr_only:
            check_lr_only(plan.data, sorted(train_settings), degradation)
        check_training_splits(self.splits, sorted(train_settings), plan.data)
        for plate in self.splits.test + self.splits.val + self.splits.train:
            if plate.hr is not None:
                modcrop(plate.hr, plan.scale, plate.id)  # fails now, not after an hour of training
        info = self.splits.info
        facts = DataFacts(self.splits.name, data_fingerprint(self.splits), len(self.splits.train), len(self.splits.val),
                          len(self.splits.test), tuple(info.get("skipped", [])), self.splits.lr_only,
                          tuple(info["lr_size"]) if info.get("lr_size") else None, bool(info.get("tracks")))
        # the default name says how the training and test LR were made
        run_dir = Path(plan.run_dir) if plan.run_dir else (
            Path("runs") / f"{self.splits.name}-x{plan.scale}-{self.profile_name}{lr_names_suffix(self.profile, degradation)}")
        check_not_file(run_dir, "--run-dir")
        # --weights: load every file into its network now (a corrupt or mismatched file
        # fails here, and the network is kept, so a file later moved aside still loads)
        self.preloaded: dict[str, torch.nn.Module | None] = {}
        weights_sha: dict[str, str] = {}
        for method in self.methods:
            path = plan.weights.get(method.name)
            if path:
                weights_sha[method.name] = file_sha256(Path(path))
                torch.manual_seed(seed)
                self.preloaded[method.name] = load_external_model(method, method.build(), path)
        self.ctx = RunContext(
            data=data, facts=facts, scale=plan.scale, seed=seed, device=str(self.device), run_dir=run_dir,
            profile_name=self.profile_name, profile=self.profile, profile_spec=plan.profile, ocr=tuple(plan.ocr),
            commit=git_commit(), train_settings=train_settings, weights=dict(plan.weights), weights_sha=weights_sha,
            deterministic=plan.deterministic, log=tuple(plan.log), degradation=degradation,
        )

    @property
    def run_dir(self) -> Path:
        return self.ctx.run_dir

    @property
    def seed(self) -> int:
        return self.ctx.seed

    @property
    def fingerprint(self) -> str:
        return self.ctx.facts.fingerprint

    def for_seed(self, seed: int, run_dir: Path) -> "Runner":
        """This plan with another seed and run directory (the same plates): a sweep's seeds."""
        other = object.__new__(Runner)
        other.__dict__.update(self.__dict__)
        other.plan = replace(self.plan, seed=seed, run_dir=run_dir)
        other.ctx = replace(self.ctx, seed=seed, run_dir=run_dir)
        return other

    # -- checks that run before anything is written ---------------------------------
    def _check_hr_size(self) -> tuple[int, int]:
        """The HR plate size actually used: an explicit --hr-size must suit the scale;
        the profile's is cut down to a multiple of the scale (and labelled as such)."""
        s = self.plan.scale
        if self.plan.hr_size is not None:
            w, h = self.plan.hr_size
            text = f"{w}x{h}"
            if not (HR_SIDE_MIN <= w <= HR_SIDE_MAX and HR_SIDE_MIN <= h <= HR_SIDE_MAX):
                raise UserError(f"--hr-size {text}: each side must be {HR_SIDE_MIN}..{HR_SIDE_MAX} px (default 192x64)")
            if w % s or h % s:
                raise UserError(
                    f"--hr-size {text} is not a multiple of the scale x{s}; use sides that are multiples of {s}, "
                    f"e.g. {max(s, w - w % s)}x{max(s, h - h % s)}"
                )
            return w, h
        w, h = self.profile.data.hr_size
        used = (w - w % s, h - h % s)
        if min(used) < s:
            raise UserError(f"{self.profile_where}: data.hr_size {w}x{h} is smaller than the scale x{s}; use a smaller --scale or a larger --hr-size")
        if used != (w, h):
            self.report(f"note: {self.profile_where}: data.hr_size {w}x{h} is not a multiple of x{s}; plates are made at {used[0]}x{used[1]}")
        return used

    def _check_training(self, method: Method) -> TrainSettings:
        entry = registry.get(method.name)
        where = f"train settings for {method.name} ({self.profile_where}, configs/methods/{method.name}.yaml)"
        settings = self.profile.train_for(method.name, entry.train_overrides, where=where)
        if not getattr(method, "train_on_whole_plates", False):
            p, s = settings.patch_size, self.plan.scale
            if p % s:
                raise ConfigError(f"{where}: train.patch_size {p} is not a multiple of the scale x{s}; use e.g. {max(s, p - p % s)}")
            if p > min(self.hr_size):
                w, h = self.hr_size
                raise ConfigError(f"{where}: train.patch_size {p} is larger than the {w}x{h} plates; lower it to at most {min(self.hr_size) - min(self.hr_size) % s} or raise --hr-size")
        validate = getattr(method, "validate_training", None)
        if callable(validate):
            validate(settings)
        return settings

    def _check_crop_border(self) -> None:
        cb = int(self.profile.eval.crop_border)
        s = self.plan.scale
        w, h = (self.hr_size[0] - self.hr_size[0] % s, self.hr_size[1] - self.hr_size[1] % s)
        left = min(w, h) - 2 * cb
        if min(w, h) < 11:  # no crop border helps: the plates themselves are too small
            need = -(-11 // s) * s
            raise ConfigError(f"plates of {w}x{h} px (--hr-size or {self.profile_where} data.hr_size) are smaller than the 11x11 px "
                              f"SSIM needs, even with no crop border; use sides of at least {need} px at x{s}, e.g. --hr-size 192x64")
        if left < 11:
            most = max(0, (min(w, h) - 11) // 2)
            raise ConfigError(
                f"{self.profile_where}: eval.crop_border {cb} leaves {w - 2 * cb}x{h - 2 * cb} px of the {w}x{h} plates; "
                f"SSIM needs at least 11x11, so use a crop border of at most {most}"
            )

    def _check_ocr(self) -> None:
        """Recognisers that need something on disk are checked now, not after training."""
        if "paddleocr" in self.plan.ocr:
            import importlib.util

            from lpsr.ocr.paddleocr import resolve_model_dir

            resolve_model_dir(None)
            if importlib.util.find_spec("paddleocr") is None:
                raise UserError("--ocr paddleocr needs PaddleOCR: pip install 'lpsr-bench[paddleocr]' paddlepaddle")

    # -- running --------------------------------------------------------------------------
    def run_method(self, method: Method) -> MethodOutcome:
        """One method in this process (no failure handling: see :meth:`_run_one`)."""
        return MethodRun(self.ctx, method, self.splits, self.report, self.make_bar, self.preloaded.get(method.name)).run()

    def _run_one(self, method: Method) -> MethodOutcome:
        """One method, in its own process (``isolation: process``) or in this one; a failure
        is recorded as a failed row either way.  A stop (Ctrl-C, SIGTERM) propagates."""
        if use_processes(self.plan.isolation):
            job = MethodJob(self.ctx, method.name, self.preloaded.get(method.name))
            value = run_in_child(run_method_job, job, name=f"bench-{method.name}", report=self.report, make_bar=self.make_bar)
        else:
            try:
                value = self.run_method(method)
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # noqa: BLE001 - a failed row, the run goes on
                if not isinstance(exc, UserError) and distributed_context().enabled:
                    raise  # under torchrun the other ranks wait for this one: stop them all
                value = Failure.from_exception(exc)
        if isinstance(value, Failure):
            return record_failure(self.ctx, method, value, self.report)
        return value

    def run_reference(self) -> None:
        """OCR on the HR plates (the readability ceiling) and the HR images for the report's
        figures, once per data set and recogniser set."""
        ctx = self.ctx
        if ctx.facts.lr_only:
            return  # LR-only data has no HR: no ceiling row
        ref_dir = ctx.run_dir / "_hr"
        key = config_hash({"fingerprint": ctx.facts.fingerprint, "ocr": list(ctx.ocr), "hr_size": list(ctx.data.hr_size),
                           "scale": ctx.scale})
        marker = ref_dir / "result.json"
        if marker.exists() and (read_json_or_none(marker) or {}).get("config_hash") == key:
            return
        test = self.splits.test
        keep = figure_ids([p.id for p in test])  # the plates every method keeps the SR of
        # read in resumable chunks, as the methods are scored (OCR of 100k HR plates takes an hour)
        chunks = EvalChunks(ref_dir / EVAL_DIR, {"reference": key, "plates": len(test)}, ctx.eval_chunk)

        def read_hr(part: list) -> tuple[Any, dict[str, Any], dict[str, Any]]:
            hrs = [modcrop(p.hr, ctx.scale, p.id) for p in part]
            # the HR plates are kept for the report's qualitative figure, with or without OCR
            table, ocr_info = plates_table(part, None, hrs, 0, list(ctx.ocr))
            return table, {p.id: hr for p, hr in zip(part, hrs) if p.id in keep}, {"ocr": ocr_info}

        table, images, infos = chunks.score(test, read_hr)
        with atomic_path(ref_dir / "plates.csv") as tmp:
            table.to_csv(tmp, index=False)
        kept = [p.id for p in test if p.id in images]
        save_images(ref_dir / "hr_test.npz", kept, [images[i] for i in kept])
        write_json(marker, {"method": "HR (reference)", "config_hash": key, "scale": ctx.scale, "n_plates": len(table),
                            "data": {"fingerprint": ctx.facts.fingerprint, "n_test": len(test)}, "ocr": merged_ocr_info(infos),
                            "images": "hr_test.npz"})
        EvalChunks.remove_folder(ref_dir / EVAL_DIR)

    def run(self) -> list[MethodOutcome]:
        if distributed_context().enabled:  # torchrun: every rank trains each method data-parallel, in-process
            from lpsr.train import ddp

            ddp.init_distributed(self.device)
            if not distributed_context().is_main:
                return self._follow()  # ranks > 0 write nothing: no lock, results or leaderboard
        skipped = self.ctx.facts.skipped
        with RunLock(self.run_dir, self.report):
            stray = remove_stray_temps(self.run_dir)
            if stray:
                self.report(f"removed {len(stray)} stray temporary file(s) left by an interrupted write: "
                            + ", ".join(str(p.relative_to(self.run_dir)) for p in stray[:5]) + (" ..." if len(stray) > 5 else ""))
            self.report(
                f"data {self.splits.name}: {len(self.splits.train)} train / {len(self.splits.val)} val / {len(self.splits.test)} test plates"
                + (f" ({describe_skipped(skipped)})" if skipped else "")
                + f"; {describe_load(self.splits.info)}; profile {self.profile_name}; device {self.device}; run dir {self.run_dir}"
            )
            outcomes = [self._run_one(m) for m in self.methods]
            self.run_reference()
        if distributed_context().enabled:
            from lpsr.train import ddp

            ddp.broadcast_object(None)  # releases the other ranks (_follow)
        return outcomes

    def _follow(self) -> list[MethodOutcome]:
        """A torchrun rank > 0: join the training of each method rank 0 names (MethodRun.train
        broadcasts it right before training), until rank 0 sends ``None``.  Writes nothing."""
        from lpsr.train import ddp

        ctx = self.ctx
        by_name = {m.name: m for m in self.methods}
        while True:
            name = ddp.broadcast_object(None)
            if name is None:
                return []
            method = by_name[name]
            torch.manual_seed(ctx.seed)  # as rank 0 (DDP also broadcasts rank 0's weights)
            model = method.build()
            try:
                train(method, model, self.splits.train, self.splits.val, ctx.train_settings[name], ctx.method_dir(name),
                      self.device, ctx.seed, deterministic=ctx.deterministic, log=tuple(ctx.log))
            except UserError:
                continue  # the loop's checks are collective: rank 0 met the same error and records the failed row

    def run_single(self, name: str) -> MethodOutcome:
        """One method under a lock on its own folder only: the jobs of a sweep (bench/sweep.py)
        run the methods of one seed folder side by side.  The HR reference is written by the
        submitting process."""
        method = next((m for m in self.methods if m.name == name), None)
        if method is None:
            raise UserError(f"method '{name}' is not part of this run ({', '.join(m.name for m in self.methods)})")
        mdir = self.run_dir / name
        with RunLock(mdir, self.report):
            stray = remove_stray_temps(mdir)
            if stray:
                self.report(f"removed {len(stray)} stray temporary file(s) left by an interrupted write in {mdir}")
            return self._run_one(method)
