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

The config hash has two halves.  The *training key* (method and its settings, training
settings or the ``--weights`` file's sha256, data fingerprint/size/crop, seed, scale) says
which network the checkpoint holds; the *evaluation key* (``eval.crop_border``, eval batch
size, recognisers) says how it was scored.  When only the evaluation key changed, the
method is re-evaluated from its existing best checkpoint without retraining.  When the
training key changed, the previous outputs are moved aside to
``<method>/superseded/<time>-<old hash>/`` (and the run says so); nothing is deleted.
Every check (options, profile, data, every ``--weights`` file's contents, each method's
training settings) runs in ``Runner.__init__``, before anything is moved or trained, and
``Runner.run`` holds a lock on the run directory (``lpsr.lock``).
"""
from __future__ import annotations

import hashlib
import os
import platform
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
from lpsr.config import ConfigError, config_hash
from lpsr.data.degrade import modcrop
from lpsr.data.record import PlateSplits
from lpsr.data.sources import data_fingerprint, load_data
from lpsr.errors import UserError
from lpsr.evaluate import mean_psnr, measure_cost, plates_table, save_images, super_resolve_plates
from lpsr.metrics.spec import summary as metric_summary
from lpsr.io import atomic_path, read_json_or_none, remove_stray_temps, write_json, write_text
from lpsr.lock import RunLock
from lpsr.profile import HR_SIDE_MAX, HR_SIDE_MIN, SEED_MAX, load_profile
from lpsr.method import Method, count_parameters
from lpsr.metrics.image import Y_CONVENTION
from lpsr.train.checkpoint import load_weights
from lpsr.train.ddp import distributed_context
from lpsr.train.loop import train
from lpsr.train.settings import TrainSettings

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
    #: ``process``: each method trains and evaluates in its own spawned process (a crash,
    #: an out-of-memory kill or a NaN is a failed row; bench/isolation.py); ``none``: in this one
    isolation: str = "process"
    #: ``--deterministic``: deterministic algorithms, cudnn.benchmark off (lpsr.train.loop.device_settings)
    deterministic: bool = False
    #: ``--log``: experiment loggers besides train.jsonl (``tensorboard``: <method>/tb/)
    log: tuple[str, ...] = ()


@dataclass
class MethodOutcome:
    name: str
    status: str  # trained | loaded | evaluated | cached | failed
    result: dict[str, Any]

    @property
    def failed(self) -> bool:
        return self.status == "failed"


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


def machine_facts(device: torch.device) -> dict[str, Any]:
    """What the timings in a result were measured on: CPU model and count, and the GPU."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), cpu)
    except OSError:
        pass
    facts: dict[str, Any] = {"cpu": cpu, "logical_cpus": os.cpu_count()}
    if device.type == "cuda":
        facts["gpu"] = torch.cuda.get_device_name(device)
    return facts


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


def check_seed(seed: object, where: str = "--seed") -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise UserError(f"{where} {seed}: use an integer from 0 to {SEED_MAX}")
    return seed


#: the parts of ``data`` that decide which network training produces
TRAIN_KEY_DATA = ("name", "fingerprint", "hr_size", "crop", "n_train", "n_val", "n_test")


def training_key(cfg: dict[str, Any]) -> str:
    """Hash of what decides the trained network (works on old ``config.yaml`` files too)."""
    data = cfg.get("data") if isinstance(cfg.get("data"), dict) else {}
    weights = cfg.get("weights") if isinstance(cfg.get("weights"), dict) else {}
    return config_hash({
        "method": cfg.get("method"),
        "settings": cfg.get("settings"),
        "scale": cfg.get("scale"),
        "seed": cfg.get("seed"),
        "data": {k: data.get(k) for k in TRAIN_KEY_DATA},
        "train": cfg.get("train"),
        "weights": weights.get("sha256"),
    })


def evaluation_key(cfg: dict[str, Any]) -> str:
    """Hash of how a network is scored: crop border, Y convention, eval batch, recognisers."""
    return config_hash({"eval": cfg.get("eval"), "ocr": cfg.get("ocr")})


def describe_skipped(names: list[str], shown: int = 5) -> str:
    if not names:
        return ""
    listed = ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")
    return f"{len(names)} files skipped: {listed}"


def _key_changes(old: dict[str, Any], new: dict[str, Any]) -> str:
    """Which training-relevant settings differ, e.g. ``seed 0 -> 1, train.iterations``."""
    changes = []
    for key in ("method", "settings", "scale", "seed", "train", "weights"):
        a, b = old.get(key), new.get(key)
        if key == "weights":
            a, b = (a or {}).get("sha256") if isinstance(a, dict) else a, (b or {}).get("sha256") if isinstance(b, dict) else b
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            changes += [f"{key}.{k}" for k in sorted(set(a) | set(b), key=str) if a.get(k) != b.get(k)]
        elif isinstance(a, (int, str)) and isinstance(b, (int, str)):
            changes.append(f"{key} {a} -> {b}")
        else:
            changes.append(key)
    od, nd = old.get("data") if isinstance(old.get("data"), dict) else {}, new.get("data") or {}
    changes += [f"data.{k}" for k in TRAIN_KEY_DATA if od.get(k) != nd.get(k)]
    return ", ".join(changes[:6]) + (" ..." if len(changes) > 6 else "") or "unknown"


def check_not_file(path: Path, option: str) -> None:
    """``option`` must name a folder (or a path that can become one): no file on the way."""
    for p in [path, *path.parents]:
        if p.exists() or p.is_symlink():
            if not p.is_dir():
                what = "is a file" if p == path else f"lies under {p}, which is a file"
                raise UserError(f"{option} {path} {what}; pass a folder path")
            return


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


class Runner:
    def __init__(self, plan: RunPlan, report: Reporter = print, progress_factory=None) -> None:
        self.plan = plan
        self.report = report
        self.progress_factory = progress_factory
        # Everything is checked here, before anything is moved aside, written or trained:
        # options, the profile, each method's training settings, data, every --weights file.
        if isinstance(plan.scale, bool) or not isinstance(plan.scale, int) or plan.scale < 1:
            raise UserError(f"--scale must be a positive integer, got {plan.scale!r}")
        if plan.run_dir is not None:
            check_not_file(Path(plan.run_dir), "--run-dir")
        self.profile_name, self.profile = load_profile(plan.profile)
        self.profile_where = f"profile {plan.profile}"
        self.seed = check_seed(plan.seed) if plan.seed is not None else self.profile.seed
        self.hr_size = self._check_hr_size()
        self.crop = plan.crop or self.profile.data.crop
        self.eval_cfg = self.profile.eval.model_dump()
        self.device = resolve_device(plan.device)
        # Every method is checked before anything runs, so a typo fails in a second.
        self.methods = [registry.get(n).create(plan.scale) for n in plan.methods]
        unknown_w = sorted(set(plan.weights) - set(plan.methods))
        if unknown_w:
            raise UserError(f"--weights names {', '.join(unknown_w)}, which is not among --methods")
        self.train_settings = {m.name: self._check_training(m) for m in self.methods if m.trainable and m.name not in plan.weights}
        self._check_crop_border()
        self._check_ocr()
        synth = self.profile.data.synthetic
        limit = {"train": plan.limit, "val": plan.limit, "test": plan.limit} if plan.limit else None
        self.splits: PlateSplits = load_data(
            plan.data,
            hr_size=self.hr_size,
            crop=self.crop,
            strict=plan.strict,
            seed=self.seed,
            synthetic_sizes=(synth.train, synth.val, synth.test),
            limit=limit,
            scale=plan.scale,
        )
        if not self.splits.test:
            raise UserError(f"--data {plan.data}: the test split is empty")
        for plate in self.splits.test + self.splits.val + self.splits.train:
            modcrop(plate.hr, plan.scale, plate.id)  # fails now, not after an hour of training
        self.skipped: list[str] = list(self.splits.info.get("skipped", []))
        self.fingerprint = data_fingerprint(self.splits)
        default_dir = Path("runs") / f"{self.splits.name}-x{plan.scale}-{self.profile_name}"
        self.run_dir = Path(plan.run_dir) if plan.run_dir else default_dir
        check_not_file(self.run_dir, "--run-dir")
        # --weights: load every file into its network now (a corrupt or mismatched file
        # fails here, and the network is kept, so a file later moved aside still loads)
        self.preloaded: dict[str, torch.nn.Module | None] = {}
        self._finished: dict[str, dict[str, Any]] = {}  # method -> result.json of its finished training
        self.weights_sha: dict[str, str] = {}
        for method in self.methods:
            path = plan.weights.get(method.name)
            if path:
                self.weights_sha[method.name] = file_sha256(Path(path))
                torch.manual_seed(self.seed)
                self.preloaded[method.name] = load_external_model(method, method.build(), path)
        self.commit = git_commit()

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
        settings = TrainSettings.from_dict(self.profile.train_block(method.name, entry.train_overrides), where=where)
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
        cb = int(self.eval_cfg["crop_border"])
        s = self.plan.scale
        w, h = (self.hr_size[0] - self.hr_size[0] % s, self.hr_size[1] - self.hr_size[1] % s)
        left = min(w, h) - 2 * cb
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

            from lpsr.ocr.paddleocr import _model_dir

            _model_dir(None)
            if importlib.util.find_spec("paddleocr") is None:
                raise UserError("--ocr paddleocr needs PaddleOCR: pip install 'lpsr-bench[paddleocr]' paddlepaddle")

    def _bar(self, label: str, total: int) -> Callable[[int], None]:
        """A progress callback ``update(completed)``; a no-op without a progress display."""
        if self.progress_factory is None:
            return lambda completed: None
        return self.progress_factory(label, total)

    # -- one method ---------------------------------------------------------------
    def resolved_config(self, method: Method) -> dict[str, Any]:
        entry = registry.get(method.name)
        # profile's train block <- the method YAML's train block <- the profile's per-method block
        # (checked in __init__ by _check_training)
        settings = self.train_settings.get(method.name)
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
                "skipped": self.skipped,
            },
            "eval": {"crop_border": int(self.eval_cfg["crop_border"]), "batch_size": int(self.eval_cfg["batch_size"]),
                     "y_convention": Y_CONVENTION},
            "ocr": list(self.plan.ocr),
        }
        if weights:
            cfg["weights"] = {"path": str(weights), "sha256": self.weights_sha[method.name]}
        elif method.trainable and settings is not None:
            cfg["train"] = settings.to_dict()
        return cfg

    # -- what a rerun keeps, re-evaluates or moves aside --------------------------------
    #: what training leaves in a method's folder (kept when only the evaluation changed)
    TRAINING_OUTPUTS = ("ckpt", "train.jsonl", "config.yaml")
    #: earlier outputs kept aside: superseded results, records of failed attempts
    KEPT_ASIDE = ("superseded", "failures")

    def _outputs(self, mdir: Path) -> list[str]:
        """Everything in a method's folder except earlier superseded results, failed attempts and hidden files."""
        if not mdir.is_dir():
            return []
        return sorted(p.name for p in mdir.iterdir() if p.name not in self.KEPT_ASIDE and not p.name.startswith("."))

    # -- failures: a failed row instead of the end of the run ------------------------------
    FAILURE_LOG = "failure.log"

    def record_failure(self, method: Method, info: dict[str, Any]) -> MethodOutcome:
        """Write ``result.json`` with ``status: failed`` (exception type, one-line reason) and a
        crash's traceback in ``failure.log``; the run goes on with the next method."""
        cfg = self.resolved_config(method)
        train_key, eval_key = training_key(cfg), evaluation_key(cfg)
        mdir = self.run_dir / method.name
        error = {"type": info.get("type"), "reason": info.get("reason"), "kind": info.get("kind", "crash"),
                 "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "log": None}
        result = {
            "method": method.name, "source": method.source, "origin": cfg["origin"], "status": "failed",
            "config_hash": config_hash({"train_key": train_key, "eval_key": eval_key}), "train_key": train_key, "eval_key": eval_key,
            "scale": method.scale, "data": cfg["data"], "eval": cfg["eval"], "ocr": cfg["ocr"], "profile": self.profile_name,
            "device": str(self.device), "commit": self.commit, "seed": self.seed, "torch": str(torch.__version__), "error": error,
        }
        if distributed_context().is_main:
            mdir.mkdir(parents=True, exist_ok=True)
            if info.get("traceback"):
                write_text(mdir / self.FAILURE_LOG, str(info["traceback"]))
                error["log"] = self.FAILURE_LOG
            write_json(mdir / "result.json", result)
        where = f" (traceback in {mdir / self.FAILURE_LOG})" if error["log"] else ""
        self.report(f"[{method.name}] FAILED: {error['type']}: {error['reason']}{where}; going on with the other methods")
        return MethodOutcome(method.name, "failed", result)

    def _set_failed_attempt_aside(self, method: Method, old: dict[str, Any]) -> None:
        """A rerun tries a failed method again: its failure record goes to ``failures/<time>/``
        and training resumes from the last checkpoint when there is one."""
        mdir = self.run_dir / method.name
        dest = mdir / "failures" / time.strftime("%Y%m%d-%H%M%S")
        n = 1
        while dest.exists():
            n += 1
            dest = dest.with_name(f"{time.strftime('%Y%m%d-%H%M%S')}-{n}")
        dest.mkdir(parents=True)
        for name in ("result.json", self.FAILURE_LOG):
            if (mdir / name).exists():
                os.replace(mdir / name, dest / name)
        err = old.get("error") if isinstance(old.get("error"), dict) else {}
        self.report(f"[{method.name}] the previous attempt failed ({err.get('type')}: {err.get('reason')}); trying again "
                    f"(record kept in {dest})")

    def _run_one(self, method: Method) -> MethodOutcome:
        """One method, in its own process (``isolation: process``) or in this one; a failure
        is recorded as a failed row either way.  A stop (Ctrl-C, SIGTERM) propagates."""
        from bench.isolation import describe_exception, run_isolated, use_processes

        if use_processes(self.plan.isolation):
            return run_isolated(self, method)
        try:
            return self.run_method(method)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # noqa: BLE001 - a failed row, the run goes on
            if not isinstance(exc, UserError) and distributed_context().enabled:
                raise  # under torchrun the other ranks wait for this one: stop them all
            return self.record_failure(method, describe_exception(exc))

    def _plates_complete(self, mdir: Path) -> bool:
        """plates.csv is there and has one row per test plate (not truncated)."""
        try:
            table = pd.read_csv(mdir / "plates.csv", keep_default_na=False)
        except Exception:
            return False
        return len(table) == len(self.splits.test) and "id" in table.columns and list(table["id"].astype(str)) == [p.id for p in self.splits.test]

    def _supersede(self, mdir: Path, names: list[str], old_hash: str) -> Path:
        """Move ``names`` in ``mdir`` to ``mdir/superseded/<time>-<old hash>/``; nothing is deleted."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        dest = mdir / "superseded" / f"{stamp}-{old_hash or 'unknown'}"
        n = 1
        while dest.exists():
            n += 1
            dest = mdir / "superseded" / f"{stamp}-{old_hash or 'unknown'}-{n}"
        dest.mkdir(parents=True)
        for name in names:
            src = mdir / name
            if src.exists():
                os.replace(src, dest / name)
        return dest

    def _prepare_method_dir(self, method: Method, cfg: dict[str, Any], chash: str) -> None:
        """Keep the checkpoint when only the evaluation changed; move everything aside when
        the training changed (or the old config is unreadable)."""
        mdir = self.run_dir / method.name
        present = self._outputs(mdir)
        if not present:
            return
        config_path = mdir / "config.yaml"
        old_cfg: Any = None
        if config_path.exists():
            try:
                old_cfg = yaml.safe_load(config_path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, yaml.YAMLError):
                old_cfg = None
        old_hash = str(old_cfg.get("config_hash", "")) if isinstance(old_cfg, dict) else ""
        if isinstance(old_cfg, dict) and old_hash == chash and not (mdir / "result.json").exists():
            return  # the same run, interrupted: resume
        if isinstance(old_cfg, dict) and training_key(old_cfg) == training_key(cfg):
            stale = [n for n in present if n not in self.TRAINING_OUTPUTS]
            old_result = read_json_or_none(mdir / "result.json")
            if (isinstance(old_result, dict) and old_result.get("status") == "trained" and isinstance(old_result.get("train"), dict)
                    and (mdir / "ckpt" / "best.safetensors").is_file()):
                # training had finished: evaluate its best checkpoint, do not call the loop again
                self._finished[method.name] = old_result
            if stale:
                dest = self._supersede(mdir, stale, old_hash)
                self.report(f"[{method.name}] evaluation settings changed; re-evaluating from the existing checkpoint "
                            f"(no retraining); previous scores moved to {dest}")
            return
        why = "its config.yaml is missing or unreadable" if not isinstance(old_cfg, dict) else f"training settings changed ({_key_changes(old_cfg, cfg)})"
        dest = self._supersede(mdir, present, old_hash)
        note = ""
        weights = self.plan.weights.get(method.name)
        if weights:
            try:
                rel = Path(weights).resolve().relative_to(mdir.resolve())
            except ValueError:
                rel = None
            if rel is not None and rel.parts and rel.parts[0] in present:
                note = f" (the --weights file was loaded first; it is now at {dest / rel})"
        self.report(f"[{method.name}] {why}: previous results and checkpoints moved to {dest}{note}")

    def run_method(self, method: Method) -> MethodOutcome:
        cfg = self.resolved_config(method)
        train_key, eval_key = training_key(cfg), evaluation_key(cfg)
        chash = config_hash({"train_key": train_key, "eval_key": eval_key})
        mdir = self.run_dir / method.name
        result_path = mdir / "result.json"
        if result_path.exists():
            old = read_json_or_none(result_path)
            if not isinstance(old, dict):
                self.report(f"[{method.name}] {result_path} is unreadable (corrupt); it will be recomputed")
            elif old.get("status") == "failed":
                self._set_failed_attempt_aside(method, old)
            elif old.get("config_hash") == chash and self._plates_complete(mdir):
                self.report(f"[{method.name}] results for config {chash} already in {mdir}: skipped")
                return MethodOutcome(method.name, "cached", old)
        self._prepare_method_dir(method, cfg, chash)
        config_path = mdir / "config.yaml"
        mdir.mkdir(parents=True, exist_ok=True)
        env = {
            "lpsr_bench": lpsr.__version__,
            "torch": str(torch.__version__),
            "python": platform.python_version(),
            "device": str(self.device),
            "commit": self.commit,
        }
        write_text(config_path, yaml.safe_dump({**cfg, "config_hash": chash, "train_key": train_key, "eval_key": eval_key,
                                                "environment": env}, sort_keys=False, allow_unicode=True))

        status, train_info, recipe_info = "evaluated", {}, {}
        if "weights" in cfg:
            model = self.preloaded[method.name]  # loaded and checked in __init__
            status = "loaded"
        else:
            torch.manual_seed(self.seed)  # network initialisation is part of the seeded run
            model = method.build()
        finished = self._finished.pop(method.name, None)
        if finished is not None and "weights" not in cfg and method.trainable and model is not None:
            load_weights(model, mdir / "ckpt" / "best.safetensors", flag="best checkpoint")
            status = "trained"
            train_info = {**finished["train"], "reevaluated": True, "wall_seconds_this_call": 0.0}
            recipe_info = dict(finished.get("describe") or {})
        elif "weights" not in cfg and method.trainable:
            if model is None:
                raise UserError(f"method '{method.name}' is trainable but build() returned no network")
            settings = self.train_settings[method.name]
            bar = self._bar(f"train {method.name}", settings.iterations)
            t0 = time.perf_counter()
            if distributed_context().enabled:
                from lpsr.train import ddp

                ddp.broadcast_object(method.name)  # the other ranks join this training (_follow)
            res = train(method, model, self.splits.train, self.splits.val, settings, mdir, self.device, self.seed,
                        lambda it, _total, _logs: bar(it), deterministic=self.plan.deterministic, log=tuple(self.plan.log))
            load_weights(model, mdir / "ckpt" / "best.safetensors", flag="best checkpoint")
            status = "trained"
            train_info = {
                "best_iteration": res.best_iteration,
                "best_val_psnr": res.best_val_psnr,
                "iterations": res.iterations,
                "train_seconds": round(res.seconds, 2),
                "resumed_from": res.resumed_from,
                "stopped_early": res.stopped_early,
                "notes": res.notes,
                "engine": res.engine,
                "wall_seconds_this_call": round(time.perf_counter() - t0, 2),
            }
            recipe_info = res.recipe
        if model is not None:
            model.to(self.device).eval()
        val_psnr = train_info.get("best_val_psnr")
        if val_psnr is None and self.splits.val:
            # the untrained (Bicubic) and loaded rows on the val plates the learned ones chose
            # their checkpoints on: the floor line of the report's training curves
            n = TrainSettings.from_dict(self.profile.train_block(method.name), where=self.profile_where).val_plates
            val_psnr = mean_psnr(method, model, self.splits.val[:n], self.device, int(self.eval_cfg["batch_size"]))

        bar = self._bar(f"evaluate {method.name}", 1 + len(self.plan.ocr))
        t0 = time.perf_counter()
        eval_batch = int(self.eval_cfg["batch_size"])
        srs, hrs = super_resolve_plates(method, model, self.splits.test, self.device, eval_batch)
        sr_seconds = time.perf_counter() - t0
        bar(1)
        # one per-plate scoring function (lpsr.metrics.spec.plate_table) writes plates.csv
        table, ocr_info = plates_table(self.splits.test, srs, hrs, int(self.eval_cfg["crop_border"]), list(self.plan.ocr),
                                       done=lambda k: bar(1 + k))
        with atomic_path(mdir / "plates.csv") as tmp:
            table.to_csv(tmp, index=False)
        save_images(mdir / "sr_test.npz", [p.id for p in self.splits.test], srs)  # for the report's figures
        lr_h, lr_w = hrs[0].shape[0] // method.scale, hrs[0].shape[1] // method.scale
        cost = measure_cost(method, model, (lr_h, lr_w), self.device, min(eval_batch, len(self.splits.test)))

        result = {
            "method": method.name,
            "source": method.source,
            "origin": cfg["origin"],
            "status": status,
            "config_hash": chash,
            "params": count_parameters(model),
            "scale": method.scale,
            "data": cfg["data"],
            "train_key": train_key,
            "eval_key": eval_key,
            "eval": cfg["eval"],
            "profile": self.profile_name,
            "profile_description": self.profile.description,
            "device": str(self.device),
            "commit": self.commit,
            "describe": {**method.describe(), **recipe_info},
            "train": train_info,
            "val_psnr": val_psnr,  # mean over the val plates: best checkpoint's, or as evaluated
            "weights": cfg.get("weights"),
            "sr_seconds": round(sr_seconds, 3),
            "ocr": ocr_info,
            "seed": self.seed,
            "torch": str(torch.__version__),
            "machine": machine_facts(self.device),
            "n_plates": len(table),
            "cost": cost,
            "summary": metric_summary(table),
            "images": "sr_test.npz",
        }
        write_json(result_path, result)
        done = status
        if status == "trained" and (train_info.get("reevaluated") or train_info.get("resumed_from", 0) >= train_info.get("iterations", 1)):
            done = "re-evaluated from its finished checkpoint"
        skipped = f" ({describe_skipped(self.skipped)})" if self.skipped else ""
        self.report(f"[{method.name}] {done}; {len(table)} test plates scored{skipped} -> {mdir / 'plates.csv'}")
        return MethodOutcome(method.name, status, result)

    def run_reference(self) -> None:
        """OCR on the HR plates (the readability ceiling) and the HR images for the report's
        figures, once per data set and recogniser set."""
        ref_dir = self.run_dir / "_hr"
        key = config_hash({"fingerprint": self.fingerprint, "ocr": self.plan.ocr, "hr_size": list(self.hr_size), "scale": self.plan.scale})
        marker = ref_dir / "result.json"
        if marker.exists() and (read_json_or_none(marker) or {}).get("config_hash") == key:
            return
        hrs = [modcrop(p.hr, self.plan.scale, p.id) for p in self.splits.test]
        # the HR plates are kept for the report's qualitative figure, with or without OCR
        table, ocr_info = plates_table(self.splits.test, None, hrs, 0, list(self.plan.ocr))
        ref_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(ref_dir / "plates.csv") as tmp:
            table.to_csv(tmp, index=False)
        save_images(ref_dir / "hr_test.npz", [p.id for p in self.splits.test], hrs)
        write_json(marker, {"method": "HR (reference)", "config_hash": key, "scale": self.plan.scale, "n_plates": len(table),
                            "data": {"fingerprint": self.fingerprint, "n_test": len(self.splits.test)}, "ocr": ocr_info,
                            "images": "hr_test.npz"})

    def run(self) -> list[MethodOutcome]:
        if distributed_context().enabled:  # torchrun: every rank trains each method data-parallel, in-process
            from lpsr.train import ddp

            ddp.init_distributed(self.device)
            if not distributed_context().is_main:
                return self._follow()  # ranks > 0 write nothing: no lock, results or leaderboard
        with RunLock(self.run_dir, self.report):
            stray = remove_stray_temps(self.run_dir)
            if stray:
                self.report(f"removed {len(stray)} stray temporary file(s) left by an interrupted write: "
                            + ", ".join(str(p.relative_to(self.run_dir)) for p in stray[:5]) + (" ..." if len(stray) > 5 else ""))
            self.report(
                f"data {self.splits.name}: {len(self.splits.train)} train / {len(self.splits.val)} val / {len(self.splits.test)} test plates"
                + (f" ({describe_skipped(self.skipped)})" if self.skipped else "")
                + f"; profile {self.profile_name}; device {self.device}; run dir {self.run_dir}"
            )
            outcomes = [self._run_one(m) for m in self.methods]
            self.run_reference()
        if distributed_context().enabled:
            from lpsr.train import ddp

            ddp.broadcast_object(None)  # releases the other ranks (_follow)
        return outcomes

    def _follow(self) -> list[MethodOutcome]:
        """A torchrun rank > 0: join the training of each method rank 0 names (run_method
        broadcasts it right before training), until rank 0 sends ``None``.  Writes nothing."""
        from lpsr.train import ddp

        by_name = {m.name: m for m in self.methods}
        while True:
            name = ddp.broadcast_object(None)
            if name is None:
                return []
            method = by_name[name]
            torch.manual_seed(self.seed)  # as rank 0 (DDP also broadcasts rank 0's weights)
            model = method.build()
            try:
                train(method, model, self.splits.train, self.splits.val, self.train_settings[name], self.run_dir / name,
                      self.device, self.seed, deterministic=self.plan.deterministic, log=tuple(self.plan.log))
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
