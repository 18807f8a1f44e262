"""Plan and run a benchmark: for each method, train (or load) -> evaluate -> write results.

Nothing here knows which method it carries.  Each method's outputs go to
``<run_dir>/<method>/``::

    config.yaml     resolved settings, their hash, versions, device
    train.jsonl     training log (losses, learned weights, val PSNR)
    ckpt/           best/last weights (safetensors) + resumable state
    plates.csv      one row per test plate: PSNR, PSNR-Y, SSIM-Y, OCR text/confidence/accuracy
    result.json     summary; written last, so its presence means the method finished

A method whose ``result.json`` carries the same config hash is skipped on a rerun; one
whose training was interrupted resumes from its last checkpoint.
"""
from __future__ import annotations

import hashlib
import platform
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import torch
import yaml

import lpsr
from lpsr import registry
from lpsr.config import config_hash, deep_merge, load_profile
from lpsr.data.degrade import modcrop
from lpsr.data.record import PlateSplits
from lpsr.data.sources import data_fingerprint, load_data
from lpsr.errors import UserError
from lpsr.evaluate import score_plates, super_resolve_plates
from lpsr.io import atomic_path, read_json, write_json, write_text
from lpsr.method import Method, count_parameters
from lpsr.metrics.image import Y_CONVENTION
from lpsr.train.checkpoint import load_weights
from lpsr.train.loop import train
from lpsr.train.settings import TrainSettings
from lpsr.score_ocr import ocr_columns

Reporter = Callable[[str], None]


@dataclass
class RunPlan:
    methods: list[str]
    scale: int
    data: str = "synthetic"
    profile: str = "quick"
    device: str = "auto"
    weights: dict[str, str] = field(default_factory=dict)
    ocr: list[str] = field(default_factory=lambda: ["ppocr"])
    run_dir: Path | None = None
    strict: bool = False
    limit: int | None = None
    hr_size: tuple[int, int] | None = None
    crop: str | None = None
    seed: int | None = None


@dataclass
class MethodOutcome:
    name: str
    status: str  # trained | loaded | evaluated | cached
    result: dict[str, Any]


def resolve_device(spec: str) -> torch.device:
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {spec}: CUDA is not available on this machine; use --device cpu or auto")
    if spec != "cpu" and not spec.startswith("cuda"):
        raise UserError(f"--device {spec!r}: use auto, cpu, cuda or cuda:N")
    return torch.device(spec)


def git_commit() -> str:
    root = Path(__file__).resolve().parents[1]
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if sha.returncode != 0:
        return "unknown"
    return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def parse_weights(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"--weights {item!r}: expected METHOD=PATH")
        name, path = item.split("=", 1)
        if not Path(path).is_file():
            raise UserError(f"--weights {item}: file {path} not found")
        out[name.strip()] = path
    return out


def load_external_model(method: Method, model: torch.nn.Module | None, path: str) -> torch.nn.Module:
    """Weights for ``--weights``: the harness's own safetensors, or an authors' checkpoint
    that spandrel recognises (ESRGAN, SwinIR, ...), whose network then replaces ours."""
    if model is not None and path.endswith(".safetensors"):
        load_weights(model, path, flag=f"--weights {method.name}=")
        return model
    try:
        from spandrel import ModelLoader

        descriptor = ModelLoader().load_from_file(path)
    except Exception as exc:
        raise UserError(f"--weights {method.name}={path}: neither a harness .safetensors checkpoint nor a model spandrel recognises ({exc})") from None
    if descriptor.scale != method.scale:
        raise UserError(f"--weights {method.name}={path}: checkpoint is x{descriptor.scale}, the run is x{method.scale}")
    return descriptor.model


class Runner:
    def __init__(self, plan: RunPlan, report: Reporter = print, progress_factory=None) -> None:
        self.plan = plan
        self.report = report
        self.progress_factory = progress_factory
        self.profile_name, profile = load_profile(plan.profile)
        self.profile = profile
        self.seed = plan.seed if plan.seed is not None else int(profile.get("seed", 0))
        data_cfg = profile.get("data", {})
        self.hr_size = tuple(plan.hr_size or data_cfg.get("hr_size", (192, 64)))
        self.crop = plan.crop or data_cfg.get("crop", "perspective")
        self.eval_cfg = {"crop_border": 0, "batch_size": 32, **profile.get("eval", {})}
        self.device = resolve_device(plan.device)
        # Every method is checked before anything runs, so a typo fails in a second.
        self.methods = [registry.get(n).create(plan.scale) for n in plan.methods]
        unknown_w = sorted(set(plan.weights) - set(plan.methods))
        if unknown_w:
            raise UserError(f"--weights names {', '.join(unknown_w)}, which is not among --methods")
        synth = data_cfg.get("synthetic", {})
        limit = {"train": plan.limit, "val": plan.limit, "test": plan.limit} if plan.limit else None
        self.splits: PlateSplits = load_data(
            plan.data,
            hr_size=self.hr_size,
            crop=self.crop,
            strict=plan.strict,
            seed=self.seed,
            synthetic_sizes=(synth.get("train", 400), synth.get("val", 24), synth.get("test", 64)),
            limit=limit,
        )
        if not self.splits.test:
            raise UserError(f"--data {plan.data}: the test split is empty")
        for plate in self.splits.test + self.splits.val + self.splits.train:
            modcrop(plate.hr, plan.scale, plate.id)  # fails now, not after an hour of training
        self.fingerprint = data_fingerprint(self.splits)
        default_dir = Path("runs") / f"{self.splits.name}-x{plan.scale}-{self.profile_name}"
        self.run_dir = Path(plan.run_dir) if plan.run_dir else default_dir
        self.commit = git_commit()

    def _bar(self, label: str, total: int) -> Callable[[int], None]:
        """A progress callback ``update(completed)``; a no-op without a progress display."""
        if self.progress_factory is None:
            return lambda completed: None
        return self.progress_factory(label, total)

    # -- one method ---------------------------------------------------------------
    def resolved_config(self, method: Method) -> dict[str, Any]:
        entry = registry.get(method.name)
        # profile's train block <- the method YAML's train block <- the profile's per-method block
        per_method = (self.profile.get("per_method") or {}).get(method.name, {})
        settings = TrainSettings.from_dict(
            deep_merge(deep_merge(self.profile.get("train", {}), entry.train_overrides), per_method),
            where=f"train settings for {method.name}",
        )
        weights = self.plan.weights.get(method.name)
        cfg: dict[str, Any] = {
            "method": method.name,
            "origin": entry.origin,
            "settings": method.config,
            "scale": method.scale,
            "seed": self.seed,
            "data": {
                "name": self.splits.name,
                "spec": self.plan.data,
                "fingerprint": self.fingerprint,
                "hr_size": list(self.hr_size),
                "crop": self.crop,
                "n_train": len(self.splits.train),
                "n_val": len(self.splits.val),
                "n_test": len(self.splits.test),
            },
            "eval": {"crop_border": int(self.eval_cfg["crop_border"]), "y_convention": Y_CONVENTION},
            "ocr": list(self.plan.ocr),
        }
        if weights:
            cfg["weights"] = {"path": str(weights), "sha256": file_sha256(Path(weights))}
        elif method.trainable:
            cfg["train"] = settings.to_dict()
        return cfg

    def run_method(self, method: Method) -> MethodOutcome:
        cfg = self.resolved_config(method)
        chash = config_hash(cfg)
        mdir = self.run_dir / method.name
        result_path = mdir / "result.json"
        if result_path.exists() and (mdir / "plates.csv").exists():
            old = read_json(result_path)
            if old.get("config_hash") == chash:
                self.report(f"[{method.name}] results for config {chash} already in {mdir}: skipped")
                return MethodOutcome(method.name, "cached", old)
        config_path = mdir / "config.yaml"
        if config_path.exists():
            old_cfg = yaml.safe_load(config_path.read_text()) or {}
            if old_cfg.get("config_hash") != chash:
                # settings changed: the old checkpoints and results belong to another config
                for stale in ("ckpt", "train.jsonl", "plates.csv", "result.json"):
                    target = mdir / stale
                    if target.is_dir():
                        shutil.rmtree(target)
                    elif target.exists():
                        target.unlink()
        mdir.mkdir(parents=True, exist_ok=True)
        env = {
            "lpsr_bench": lpsr.__version__,
            "torch": str(torch.__version__),
            "python": platform.python_version(),
            "device": str(self.device),
            "commit": self.commit,
        }
        write_text(config_path, yaml.safe_dump({**cfg, "config_hash": chash, "environment": env}, sort_keys=False, allow_unicode=True))

        torch.manual_seed(self.seed)  # network initialisation is part of the seeded run
        model = method.build()
        status, train_info, recipe_info = "evaluated", {}, {}
        if "weights" in cfg:
            model = load_external_model(method, model, cfg["weights"]["path"])
            status = "loaded"
        elif method.trainable:
            if model is None:
                raise UserError(f"method '{method.name}' is trainable but build() returned no network")
            settings = TrainSettings.from_dict(cfg["train"])
            bar = self._bar(f"train {method.name}", settings.iterations)
            t0 = time.perf_counter()
            res = train(method, model, self.splits.train, self.splits.val, settings, mdir, self.device, self.seed,
                        lambda it, _total, _logs: bar(it))
            load_weights(model, mdir / "ckpt" / "best.safetensors", flag="best checkpoint")
            status = "trained"
            train_info = {
                "best_iteration": res.best_iteration,
                "best_val_psnr": res.best_val_psnr,
                "iterations": res.iterations,
                "train_seconds": round(res.seconds, 2),
                "resumed_from": res.resumed_from,
                "wall_seconds_this_call": round(time.perf_counter() - t0, 2),
            }
            recipe_info = res.recipe
        if model is not None:
            model.to(self.device).eval()

        bar = self._bar(f"evaluate {method.name}", 1 + len(self.plan.ocr))
        t0 = time.perf_counter()
        srs, hrs = super_resolve_plates(method, model, self.splits.test, self.device, int(self.eval_cfg["batch_size"]))
        scores = score_plates(self.splits.test, srs, hrs, int(self.eval_cfg["crop_border"]))
        table = pd.DataFrame([s.__dict__ for s in scores])
        sr_seconds = time.perf_counter() - t0
        bar(1)
        ocr_table, ocr_info = ocr_columns(self.plan.ocr, srs, [p.text for p in self.splits.test], done=lambda k: bar(1 + k))
        table = pd.concat([table, ocr_table], axis=1)
        with atomic_path(mdir / "plates.csv") as tmp:
            table.to_csv(tmp, index=False)

        result = {
            "method": method.name,
            "source": method.source,
            "origin": cfg["origin"],
            "status": status,
            "config_hash": chash,
            "params": count_parameters(model),
            "scale": method.scale,
            "data": cfg["data"],
            "eval": cfg["eval"],
            "profile": self.profile_name,
            "device": str(self.device),
            "commit": self.commit,
            "describe": {**method.describe(), **recipe_info},
            "train": train_info,
            "weights": cfg.get("weights"),
            "sr_seconds": round(sr_seconds, 3),
            "ocr": ocr_info,
        }
        write_json(result_path, result)
        self.report(f"[{method.name}] {status}; {len(scores)} test plates scored -> {mdir / 'plates.csv'}")
        return MethodOutcome(method.name, status, result)

    def run_reference(self) -> None:
        """OCR on the HR plates (the readability ceiling), once per data set and recogniser set."""
        if not self.plan.ocr:
            return
        ref_dir = self.run_dir / "_hr"
        key = config_hash({"fingerprint": self.fingerprint, "ocr": self.plan.ocr, "hr_size": list(self.hr_size), "scale": self.plan.scale})
        marker = ref_dir / "result.json"
        if marker.exists() and read_json(marker).get("config_hash") == key:
            return
        hrs = [modcrop(p.hr, self.plan.scale, p.id) for p in self.splits.test]
        ocr_table, ocr_info = ocr_columns(self.plan.ocr, hrs, [p.text for p in self.splits.test])
        table = pd.concat([pd.DataFrame({"id": [p.id for p in self.splits.test], "text": [p.text for p in self.splits.test]}), ocr_table], axis=1)
        ref_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(ref_dir / "plates.csv") as tmp:
            table.to_csv(tmp, index=False)
        write_json(marker, {"method": "HR (reference)", "config_hash": key, "data": {"fingerprint": self.fingerprint}, "ocr": ocr_info})

    def run(self) -> list[MethodOutcome]:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.report(
            f"data {self.splits.name}: {len(self.splits.train)} train / {len(self.splits.val)} val / {len(self.splits.test)} test plates"
            + (f" ({self.splits.skipped} files skipped)" if self.splits.skipped else "")
            + f"; profile {self.profile_name}; device {self.device}; run dir {self.run_dir}"
        )
        outcomes = [self.run_method(m) for m in self.methods]
        self.run_reference()
        return outcomes
