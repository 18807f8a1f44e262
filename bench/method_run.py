"""One method of a run: cache check -> prepare -> train (or load) -> evaluate -> write.

Nothing here knows which method it carries.  Each method's outputs go to
``<run_dir>/<method>/``::

    config.yaml     resolved settings, their hash, versions, device
    train.jsonl     training log (losses, learned weights, val PSNR)
    ckpt/           best/last weights (safetensors) + resumable state
    plates.csv      one row per test plate: PSNR, PSNR-Y, SSIM-Y, OCR text/confidence/accuracy
    sr_test.npz     the SR images of the figure plates (lpsr.evaluate.figure_ids: all, up to 512)
    eval/           while evaluating: the scored chunks (bench.eval_chunks; a killed evaluation resumes)
    tracks.csv      LR-only data with tracks: one row per track, each recogniser's vote
    result.json     summary; written last, so its presence means the method finished (or failed)

What a rerun keeps, re-evaluates or moves aside: :mod:`bench.method_dir`.
"""
from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field
from typing import Any

import torch
import yaml

import lpsr
from bench.eval_chunks import EVAL_DIR, EvalChunks, merged_ocr_info, weights_digest
from bench.method_dir import FAILURE_LOG, cached_result, evaluation_key, prepare, run_hash, training_key
from bench.options import describe_skipped
from bench.outcome import Failure, MethodOutcome
from bench.plan import RunContext
from bench.progress import BarFactory, Reporter
from bench.records import resolved_config, result_record
from lpsr.data.record import PlateSplits
from lpsr.errors import UserError
from lpsr.evaluate import figure_ids, mean_psnr, measure_cost, plates_table, save_images, super_resolve_plates
from lpsr.io import atomic_path, write_json, write_text
from lpsr.method import Method, count_parameters
from lpsr.metrics.spec import summary as metric_summary
from lpsr.metrics.spec import track_table
from lpsr.train.checkpoint import load_weights
from lpsr.train.ddp import distributed_context
from lpsr.train.loop import train


@dataclass
class Trained:
    """The network to evaluate and how it came about."""

    model: torch.nn.Module | None
    status: str  # trained | loaded | evaluated
    train: dict[str, Any] = field(default_factory=dict)
    recipe: dict[str, Any] = field(default_factory=dict)


class MethodRun:
    def __init__(self, ctx: RunContext, method: Method, splits: PlateSplits, report: Reporter, make_bar: BarFactory,
                 preloaded: torch.nn.Module | None = None) -> None:
        self.ctx, self.method, self.splits = ctx, method, splits
        self.report, self.make_bar = report, make_bar
        self.preloaded = preloaded  # the --weights network, loaded and checked by the planner
        self.device = torch.device(ctx.device)
        self.mdir = ctx.method_dir(method.name)
        self.cfg = resolved_config(ctx, method)
        self.train_key, self.eval_key = training_key(self.cfg), evaluation_key(self.cfg)
        self.chash = run_hash(self.train_key, self.eval_key)

    def run(self) -> MethodOutcome:
        cached = cached_result(self.mdir, self.method.name, self.chash, [p.id for p in self.splits.test], self.report)
        if cached is not None:
            return MethodOutcome(self.method.name, "cached", cached)
        finished = self.prepare()
        trained = self.train(finished)
        table, srs, measured = self.evaluate(trained)
        return self.write(trained, table, srs, measured)

    # -- the steps ------------------------------------------------------------------------
    def prepare(self) -> dict[str, Any] | None:
        """Move stale outputs aside and write config.yaml; the old result of a finished
        training (evaluated from its best checkpoint) or None."""
        finished = prepare(self.mdir, self.method.name, self.cfg, self.chash, self.ctx.weights.get(self.method.name), self.report)
        self.mdir.mkdir(parents=True, exist_ok=True)
        env = {
            "lpsr_bench": lpsr.__version__,
            "torch": str(torch.__version__),
            "python": platform.python_version(),
            "device": str(self.device),
            "commit": self.ctx.commit,
        }
        write_text(self.mdir / "config.yaml", yaml.safe_dump({**self.cfg, "config_hash": self.chash, "train_key": self.train_key,
                                                              "eval_key": self.eval_key, "environment": env},
                                                             sort_keys=False, allow_unicode=True))
        return finished

    def train(self, finished: dict[str, Any] | None) -> Trained:
        """The --weights network, the best checkpoint of a finished training, a new training, or the untrained method."""
        method, best = self.method, self.mdir / "ckpt" / "best.safetensors"
        if "weights" in self.cfg:
            return Trained(self.preloaded, "loaded")
        torch.manual_seed(self.ctx.seed)  # network initialisation is part of the seeded run
        model = method.build()
        if not method.trainable:
            return Trained(model, "evaluated")
        if finished is not None and model is not None:
            load_weights(model, best, flag="best checkpoint")
            return Trained(model, "trained", {**finished["train"], "reevaluated": True, "wall_seconds_this_call": 0.0},
                           dict(finished.get("describe") or {}))
        if model is None:
            raise UserError(f"method '{method.name}' is trainable but build() returned no network")
        settings = self.ctx.train_settings[method.name]
        bar = self.make_bar(f"train {method.name}", settings.iterations)
        t0 = time.perf_counter()
        if distributed_context().enabled:
            from lpsr.train import ddp

            ddp.broadcast_object(method.name)  # the other ranks join this training (Runner._follow)
        res = train(method, model, self.splits.train, self.splits.val, settings, self.mdir, self.device, self.ctx.seed,
                    lambda it, _total, _logs: bar(it), deterministic=self.ctx.deterministic, log=tuple(self.ctx.log))
        load_weights(model, best, flag="best checkpoint")
        info = {
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
        return Trained(model, "trained", info, res.recipe)

    def evaluate(self, trained: Trained) -> tuple[Any, dict[str, Any], dict[str, Any]]:
        """Super-resolve and score the test plates in resumable chunks (:mod:`bench.eval_chunks`);
        the per-plate table, the figure plates' SR images and the result's measurements."""
        method, model, ctx = self.method, trained.model, self.ctx
        if model is not None:
            model.to(self.device).eval()
        val_psnr = trained.train.get("best_val_psnr")
        if val_psnr is None and self.splits.val:
            # the untrained (Bicubic) and loaded rows on the val plates the learned ones chose
            # their checkpoints on, under the same val LR: the floor line of the report's training curves
            val = ctx.val_settings(method.name)
            val_psnr = mean_psnr(method, model, self.splits.val[: val.val_plates], self.device, ctx.eval_batch, val.lr_degradation())
        test = self.splits.test
        keep = figure_ids([p.id for p in test])
        chunks = EvalChunks(self.mdir / EVAL_DIR, {"train_key": self.train_key, "eval_key": self.eval_key, "weights": weights_digest(model),
                                                   "plates": len(test), "fingerprint": ctx.facts.fingerprint}, ctx.eval_chunk)
        resumed, n_chunks = chunks.finished(len(test))
        if resumed:
            self.report(f"[{method.name}] evaluation resumes: {resumed} of {n_chunks} chunks of {chunks.size} plates already scored")

        def score(part: list) -> tuple[Any, dict[str, Any], dict[str, Any]]:
            t0 = time.perf_counter()
            srs, hrs = super_resolve_plates(method, model, part, self.device, ctx.eval_batch, ctx.degradation)
            sr_seconds = time.perf_counter() - t0
            # one per-plate scoring function (lpsr.metrics.spec.plate_table) writes plates.csv
            table, ocr_info = plates_table(part, srs, hrs, ctx.crop_border, list(ctx.ocr))
            return (table, {p.id: sr for p, sr in zip(part, srs) if p.id in keep},
                    {"sr_seconds": sr_seconds, "ocr": ocr_info, "sr_hw": list(srs[0].shape[:2])})

        table, images, infos = chunks.score(test, score, self.make_bar(f"evaluate {method.name} (plates)", len(test)))
        sr_h, sr_w = infos[0]["sr_hw"]
        cost = measure_cost(method, model, (sr_h // method.scale, sr_w // method.scale), self.device, min(ctx.eval_batch, len(test)))
        measured = {"params": count_parameters(model), "val_psnr": val_psnr,  # mean over the val plates: best checkpoint's, or as evaluated
                    "sr_seconds": round(sum(i["sr_seconds"] for i in infos), 3), "ocr": merged_ocr_info(infos), "n_plates": len(table),
                    "cost": cost, "summary": metric_summary(table)}
        return table, images, measured

    def write(self, trained: Trained, table, images: dict[str, Any], measured: dict[str, Any]) -> MethodOutcome:
        """plates.csv, the figure plates' SR images, then result.json: the method is finished."""
        method, mdir = self.method, self.mdir
        with atomic_path(mdir / "plates.csv") as tmp:
            table.to_csv(tmp, index=False)
        tracks = track_table(table)
        if tracks is not None:  # LR-only data with tracks: each track's vote per recogniser
            with atomic_path(mdir / "tracks.csv") as tmp:
                tracks.to_csv(tmp, index=False)
        kept = [p.id for p in self.splits.test if p.id in images]
        save_images(mdir / "sr_test.npz", kept, [images[i] for i in kept])
        result = result_record(self.ctx, method, self.cfg, trained.status, describe={**method.describe(), **trained.recipe},
                               train=trained.train, weights=self.cfg.get("weights"), images="sr_test.npz", **measured)
        write_json(mdir / "result.json", result)
        EvalChunks.remove_folder(mdir / EVAL_DIR)
        done, info = trained.status, trained.train
        if done == "trained" and (info.get("reevaluated") or info.get("resumed_from", 0) >= info.get("iterations", 1)):
            done = "re-evaluated from its finished checkpoint"
        skipped = self.ctx.facts.skipped
        note = f" ({describe_skipped(skipped)})" if skipped else ""
        self.report(f"[{method.name}] {done}; {len(table)} test plates scored{note} -> {mdir / 'plates.csv'}")
        return MethodOutcome(method.name, trained.status, result)


def record_failure(ctx: RunContext, method: Method, failure: Failure, report: Reporter) -> MethodOutcome:
    """Write ``result.json`` with ``status: failed`` (exception type, one-line reason) and a
    crash's traceback in ``failure.log``; the run goes on with the next method."""
    mdir = ctx.method_dir(method.name)
    error = {"type": failure.type, "reason": failure.reason, "kind": failure.kind, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
             "log": FAILURE_LOG if failure.traceback else None}
    result = result_record(ctx, method, resolved_config(ctx, method), "failed", error=error)
    if distributed_context().is_main:
        mdir.mkdir(parents=True, exist_ok=True)
        if failure.traceback:
            write_text(mdir / FAILURE_LOG, failure.traceback)
        write_json(mdir / "result.json", result)
    else:
        error["log"] = None
    where = f" (traceback in {mdir / FAILURE_LOG})" if error["log"] else ""
    report(f"[{method.name}] FAILED: {error['type']}: {error['reason']}{where}; going on with the other methods")
    return MethodOutcome(method.name, "failed", result)
