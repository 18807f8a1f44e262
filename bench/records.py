"""What a method's folder records: its resolved settings (``config.yaml``) and its result
(``result.json``), built here once for finished and failed methods alike."""
from __future__ import annotations

from typing import Any

import torch

from bench.environment import machine_facts
from bench.method_dir import evaluation_key, run_hash, training_key
from bench.plan import RunContext
from lpsr import registry
from lpsr.degradations import default_degradation
from lpsr.method import Method
from lpsr.metrics.image import Y_CONVENTION

#: result.json's keys, in order; a failed row has the ones that do not need a result, and ``error``
RESULT_FIELDS = (
    "method", "source", "origin", "status", "config_hash", "params", "scale", "data", "train_key", "eval_key", "eval",
    "profile", "profile_description", "device", "commit", "describe", "train", "val_psnr", "weights", "sr_seconds", "ocr",
    "seed", "torch", "machine", "degradation", "train_degradation", "n_plates", "cost", "summary", "images", "error",
)


def resolved_config(ctx: RunContext, method: Method) -> dict[str, Any]:
    """config.yaml's settings: method, its settings, data, evaluation and training (or the --weights file)."""
    # profile's train block <- the method YAML's train block <- the profile's per-method block
    # (checked by the planner: bench.runner.Runner)
    settings = ctx.train_settings.get(method.name)
    weights = ctx.weights.get(method.name)
    cfg: dict[str, Any] = {
        "method": method.name,
        "origin": registry.get(method.name).origin,
        "settings": method.config,
        "scale": method.scale,
        "seed": ctx.seed,
        "data": ctx.data_record(),
        "eval": {"crop_border": ctx.crop_border, "batch_size": ctx.eval_batch, "y_convention": Y_CONVENTION},
        "ocr": list(ctx.ocr),
    }
    if not ctx.degradation.is_default:  # the default leaves config.yaml and its keys as they were
        cfg["degradation"] = ctx.degradation.describe()
    if weights:
        cfg["weights"] = {"path": str(weights), "sha256": ctx.weights_sha[method.name]}
    elif method.trainable and settings is not None:
        cfg["train"] = settings.to_dict()
    # not for bicubic: its config.yaml and keys stay as they were
    if not (lr := ctx.val_settings(method.name).lr_degradation()).is_default:
        # trained here: the training (and val) LR, every parameter in the training key; else
        # the LR of the val plates its val_psnr is measured on, in the evaluation key
        cfg["train_degradation" if "train" in cfg else "val_degradation"] = lr.describe()
    return cfg


def train_degradation_record(cfg: dict[str, Any]) -> dict[str, Any] | None:
    """result.json's ``train_degradation``: how the training (and val) LR of a method trained
    here was made (``describe()``, bicubic too); ``None`` for a method not trained here."""
    if "train" not in cfg:
        return None
    return cfg.get("train_degradation") or default_degradation().describe()


def result_record(ctx: RunContext, method: Method, cfg: dict[str, Any], status: str, **fields: Any) -> dict[str, Any]:
    """result.json: what every row says (method, config hash, data, profile, machine, ...)
    and ``fields``: a finished method's scores and costs, or a failed one's ``error``."""
    unknown = set(fields) - set(RESULT_FIELDS)
    if unknown:
        raise ValueError(f"result_record: unknown result fields {sorted(unknown)}")
    train_key, eval_key = training_key(cfg), evaluation_key(cfg)
    device = torch.device(ctx.device)
    values = {
        "method": method.name,
        "source": method.source,
        "origin": cfg["origin"],
        "status": status,
        "config_hash": run_hash(train_key, eval_key),
        "scale": method.scale,
        "data": cfg["data"],
        "train_key": train_key,
        "eval_key": eval_key,
        "eval": cfg["eval"],
        "ocr": cfg["ocr"],
        "profile": ctx.profile_name,
        "profile_description": ctx.profile.description,
        "device": str(device),
        "commit": ctx.commit,
        "seed": ctx.seed,
        "torch": str(torch.__version__),
        "machine": machine_facts(device),
        # the test LR (bicubic too); none for LR-only data, whose LR is the data's own
        "degradation": None if ctx.facts.lr_only else ctx.degradation.describe(),
        **({"train_degradation": train_lr} if (train_lr := train_degradation_record(cfg)) else {}),
        **fields,
    }
    return {key: values[key] for key in RESULT_FIELDS if key in values}
