"""A method's folder across reruns: what is still valid, what is re-evaluated, what is moved
aside.

The config hash has two halves.  The *training key* (method and its settings, training
settings with the training LR's preset (``train.degradation``, every parameter; nothing for
bicubic) or the ``--weights`` file's sha256, data fingerprint/size/crop, seed, scale) says
which network the checkpoint holds; the *evaluation key* (``eval.crop_border``, eval batch
size, recognisers, the test ``--degradation``) says how it was scored.  A rerun skips a method whose ``result.json``
carries the same hash (:func:`cached_result`); when only the evaluation key changed, the
method is re-evaluated from its existing best checkpoint without retraining; when the
training key changed, the previous outputs are moved to
``<method>/superseded/<time>-<old hash>/`` and the run says so (:func:`prepare`).  A failed
attempt's record goes to ``<method>/failures/<time>/``.  Nothing is deleted.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from bench.progress import Reporter
from lpsr.config import config_hash
from lpsr.io import copy_file, read_json_or_none

#: the parts of ``data`` that decide which network training produces
TRAIN_KEY_DATA = ("name", "fingerprint", "hr_size", "crop", "n_train", "n_val", "n_test")
#: what training leaves in a method's folder (kept when only the evaluation changed)
TRAINING_OUTPUTS = ("ckpt", "train.jsonl", "config.yaml")
#: earlier outputs kept aside: superseded results, records of failed attempts
KEPT_ASIDE = ("superseded", "failures")
#: a crashed method's traceback, beside its failed result.json
FAILURE_LOG = "failure.log"


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
        # the training LR's preset, every parameter (absent for bicubic: its key is unchanged)
        **({"train_degradation": cfg["train_degradation"]} if cfg.get("train_degradation") else {}),
    })


def evaluation_key(cfg: dict[str, Any]) -> str:
    """Hash of how a network is scored: crop border, Y convention, eval batch, recognisers,
    the test LR's degradation and, for a method not trained here, its val plates' LR (both
    absent for the default bicubic, so its key is unchanged)."""
    key = {"eval": cfg.get("eval"), "ocr": cfg.get("ocr")}
    for lr in ("degradation", "val_degradation"):  # absent for bicubic
        if cfg.get(lr):
            key[lr] = cfg[lr]
    return config_hash(key)


def run_hash(train_key: str, eval_key: str) -> str:
    """``config_hash`` of config.yaml and result.json."""
    return config_hash({"train_key": train_key, "eval_key": eval_key})


def key_changes(old: dict[str, Any], new: dict[str, Any]) -> str:
    """Which training-relevant settings differ, e.g. ``seed 0 -> 1, train.iterations``."""
    changes = []
    for key in ("method", "settings", "scale", "seed", "train", "train_degradation", "weights"):
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


def outputs(mdir: Path) -> list[str]:
    """Everything in a method's folder except earlier superseded results, failed attempts and hidden files."""
    if not mdir.is_dir():
        return []
    return sorted(p.name for p in mdir.iterdir() if p.name not in KEPT_ASIDE and not p.name.startswith("."))


def plates_complete(mdir: Path, test_ids: list[str]) -> bool:
    """plates.csv is there and has one row per test plate (not truncated)."""
    try:
        table = pd.read_csv(mdir / "plates.csv", keep_default_na=False)
    except Exception:
        return False
    return len(table) == len(test_ids) and "id" in table.columns and list(table["id"].astype(str)) == list(test_ids)


def cached_result(mdir: Path, name: str, chash: str, test_ids: list[str], report: Reporter) -> dict[str, Any] | None:
    """The finished ``result.json`` of the same config (the method is skipped), else None.
    A failed attempt's record is set aside (the method is tried again)."""
    result_path = mdir / "result.json"
    if not result_path.exists():
        return None
    old = read_json_or_none(result_path)
    if not isinstance(old, dict):
        report(f"[{name}] {result_path} is unreadable (corrupt); it will be recomputed")
    elif old.get("status") == "failed":
        set_failed_attempt_aside(mdir, name, old, report)
    elif old.get("config_hash") == chash and plates_complete(mdir, test_ids):
        report(f"[{name}] results for config {chash} already in {mdir}: skipped")
        return old
    return None


def set_failed_attempt_aside(mdir: Path, name: str, old: dict[str, Any], report: Reporter) -> None:
    """A rerun tries a failed method again: its failure record goes to ``failures/<time>/``
    and training resumes from the last checkpoint when there is one."""
    dest = mdir / "failures" / time.strftime("%Y%m%d-%H%M%S")
    n = 1
    while dest.exists():
        n += 1
        dest = dest.with_name(f"{time.strftime('%Y%m%d-%H%M%S')}-{n}")
    dest.mkdir(parents=True)
    for item in ("result.json", FAILURE_LOG):
        if (mdir / item).exists():
            os.replace(mdir / item, dest / item)
    err = old.get("error") if isinstance(old.get("error"), dict) else {}
    report(f"[{name}] the previous attempt failed ({err.get('type')}: {err.get('reason')}); trying again (record kept in {dest})")


def supersede(mdir: Path, names: list[str], old_hash: str) -> Path:
    """Move ``names`` in ``mdir`` to ``mdir/superseded/<time>-<old hash>/``; nothing is deleted."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    dest = mdir / "superseded" / f"{stamp}-{old_hash or 'unknown'}"
    n = 1
    while dest.exists():
        n += 1
        dest = mdir / "superseded" / f"{stamp}-{old_hash or 'unknown'}-{n}"
    dest.mkdir(parents=True)
    for item in names:
        src = mdir / item
        if src.exists():
            os.replace(src, dest / item)
    return dest


def _read_config(path: Path) -> Any:
    if not path.exists():
        return None
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None


def prepare(mdir: Path, name: str, cfg: dict[str, Any], chash: str, weights: str | None, report: Reporter) -> dict[str, Any] | None:
    """Make ``mdir`` ready for ``cfg``: keep the checkpoint when only the evaluation changed;
    move everything aside when the training changed (or the old config is unreadable).

    Returns the old ``result.json`` when its training had finished (the method is then
    evaluated from its best checkpoint, without calling the training loop), else None."""
    present = outputs(mdir)
    if not present:
        return None
    old_cfg = _read_config(mdir / "config.yaml")
    old_hash = str(old_cfg.get("config_hash", "")) if isinstance(old_cfg, dict) else ""
    if isinstance(old_cfg, dict) and old_hash == chash and not (mdir / "result.json").exists():
        return None  # the same run, interrupted: resume
    if isinstance(old_cfg, dict) and training_key(old_cfg) == training_key(cfg):
        stale = [n for n in present if n not in TRAINING_OUTPUTS]
        old_result = read_json_or_none(mdir / "result.json")
        finished = None
        if (isinstance(old_result, dict) and old_result.get("status") == "trained" and isinstance(old_result.get("train"), dict)
                and (mdir / "ckpt" / "best.safetensors").is_file()):
            finished = old_result
        if stale:
            dest = supersede(mdir, stale, old_hash)
            report(f"[{name}] evaluation settings changed; re-evaluating from the existing checkpoint "
                   f"(no retraining); previous scores moved to {dest}")
        return finished
    why = "its config.yaml is missing or unreadable" if not isinstance(old_cfg, dict) else f"training settings changed ({key_changes(old_cfg, cfg)})"
    dest = supersede(mdir, present, old_hash)
    note = ""
    if weights:
        try:
            rel = Path(weights).resolve().relative_to(mdir.resolve())
        except ValueError:
            rel = None
        if rel is not None and rel.parts and rel.parts[0] in present:
            copy_file(dest / rel, weights)  # the identical command must keep working (then: cached, a no-op)
            note = f" (the --weights file was loaded first; it is now at {dest / rel}, and a copy stays at {weights} so the same command reruns)"
    report(f"[{name}] {why}: previous results and checkpoints moved to {dest}{note}")
    return None
