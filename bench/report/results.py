"""A run directory's files as results: every finished method's ``result.json`` and
``plates.csv`` (checked to be on one test set and the same plates), the failed methods'
records and the HR ceiling (``_hr/``).  No retraining, no model loading."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from bench.report.interface import order
from lpsr.degradations import recorded_degradation
from lpsr.errors import UserError
from lpsr.metrics.spec import ID_COLUMN, LABEL_COLUMNS, has_image_metrics, recognisers_in, text_column, track_table

REFERENCE = "HR (ceiling)"


class ReportError(UserError):
    """A run directory cannot be reported as it is (mixed test sets, truncated files)."""


@dataclass
class MethodResults:
    result: dict[str, Any]
    plates: pd.DataFrame
    dir: Path | None = None

    @property
    def name(self) -> str:
        return self.result["method"]

    @property
    def seen(self) -> list[str]:
        """Recognisers this method used in training (its readability there is not independent)."""
        desc = self.result.get("describe") or {}
        seen = desc.get("ocr_seen_in_training") or []
        return [str(s) for s in seen] if isinstance(seen, (list, tuple)) else [str(seen)]

    @property
    def tracks(self) -> pd.DataFrame | None:
        """One row per track (LR-only data with tracks: each recogniser's vote), from plates.csv."""
        if "_tracks" not in self.__dict__:
            self.__dict__["_tracks"] = track_table(self.plates)
        return self.__dict__["_tracks"]


def readability_only(results: list[MethodResults]) -> bool:
    """Results on data without HR (LR-only): no method's plates.csv has an image metric."""
    return bool(results) and not any(has_image_metrics(mr.plates) for mr in results)


# -- loading ---------------------------------------------------------------------------------
def read_json(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError) as exc:
        raise ReportError(f"{path}: unreadable result file ({type(exc).__name__}); rerun `bench run` for that method or move its folder away") from None
    if not isinstance(data, dict) or "method" not in data:
        raise ReportError(f"{path}: not a method result (no 'method' key); rerun `bench run` for that method or move its folder away")
    return data


def read_plates(path: Path, n_expected: int | None) -> pd.DataFrame:
    if not path.is_file():
        raise ReportError(f"{path}: missing (its result.json says the method finished); rerun `bench run` for that method")
    try:
        table = pd.read_csv(path, keep_default_na=False, dtype={c: str for c in LABEL_COLUMNS})
    except Exception as exc:
        raise ReportError(f"{path}: unreadable per-plate table ({type(exc).__name__}); rerun `bench run` for that method") from None
    if ID_COLUMN not in table.columns:
        raise ReportError(f"{path}: no '{ID_COLUMN}' column; not a plates.csv written by `bench run`")
    if n_expected is not None and len(table) != n_expected:
        raise ReportError(f"{path}: {len(table)} plate rows but the run has {n_expected} test plates (truncated or from another run); "
                          "rerun `bench run` for that method")
    text_columns = {text_column(ocr) for ocr in recognisers_in(table)}
    for col in table.columns:
        if col not in LABEL_COLUMNS and col not in text_columns:
            table[col] = pd.to_numeric(table[col], errors="coerce")
    return table


def test_set(result: dict[str, Any]) -> tuple:
    data = result.get("data") or {}
    ev = result.get("eval") or {}
    deg = recorded_degradation(result.get("degradation"))
    return (data.get("fingerprint"), data.get("n_test"), result.get("scale"), ev.get("crop_border"), deg and deg.get("fingerprint"))


def describe_set(key: tuple) -> str:
    fp, n, scale, crop, deg = key
    return f"fingerprint {fp} ({n} test plates, x{scale}, crop border {crop}" + (f", degradation {deg})" if deg else ")")


def load_results(run_dir: Path, names: list[str] | None = None, fingerprint: str | None = None) -> list[MethodResults]:
    """Finished methods in ``run_dir`` (optionally only ``names``, only one data fingerprint),
    all on one test set; every ``plates.csv`` checked against the run's plate count and ids."""
    run_dir = Path(run_dir)
    found: list[MethodResults] = []
    for result_path in sorted(run_dir.glob("*/result.json")):
        if result_path.parent.name.startswith(("_", ".")):
            continue
        result = read_json(result_path)
        if names is not None and result["method"] not in names:
            continue
        if result.get("status") == "failed":  # a failed row: load_failures
            continue
        if "seed" not in result or "torch" not in result:  # results written before these were recorded
            try:
                import yaml

                cfg = yaml.safe_load((result_path.parent / "config.yaml").read_text(encoding="utf-8")) or {}
                result.setdefault("seed", cfg.get("seed"))
                result.setdefault("torch", (cfg.get("environment") or {}).get("torch"))
            except Exception:
                pass
        found.append(MethodResults(result, pd.DataFrame(), result_path.parent))
    if fingerprint is not None:
        kept = [mr for mr in found if (mr.result.get("data") or {}).get("fingerprint") == fingerprint]
        if found and not kept:
            have = sorted({str((mr.result.get("data") or {}).get("fingerprint")) for mr in found})
            raise ReportError(f"{run_dir}: no results for data fingerprint {fingerprint} (found {', '.join(have)}); use --fingerprint with one of those")
        found = kept
    sets: dict[tuple, list[str]] = {}
    for mr in found:
        sets.setdefault(test_set(mr.result), []).append(mr.name)
    if len(sets) > 1:
        parts = "; ".join(f"{describe_set(k)}: {', '.join(v)}" for k, v in sets.items())
        raise ReportError(f"{run_dir}: results come from different test sets and are not comparable ({parts}); "
                          "report one with --fingerprint FP (or --methods), or rerun the others on the same data")
    ids: list[str] | None = None
    first_path: Path | None = None
    for mr in found:
        n = (mr.result.get("data") or {}).get("n_test")
        path = mr.dir / "plates.csv"
        mr.plates = read_plates(path, int(n) if n is not None else None)
        these = list(mr.plates[ID_COLUMN].astype(str))
        if ids is None:
            ids, first_path = these, path
        elif these != ids:
            raise ReportError(f"{path}: its plates differ from those of {first_path} although the data fingerprints agree; "
                              "rerun `bench run` for that method")

    return sorted(found, key=lambda mr: order(mr.name))


def load_failures(run_dir: Path, names: list[str] | None = None, results: list[MethodResults] | None = None) -> list[dict[str, Any]]:
    """``result.json`` of methods that failed (``status: failed``), on the same test set as
    ``results`` when there are any, in leaderboard order."""
    failures = []
    wanted = test_set(results[0].result) if results else None
    for result_path in sorted(Path(run_dir).glob("*/result.json")):
        if result_path.parent.name.startswith(("_", ".")):
            continue
        try:
            result = read_json(result_path)
        except ReportError:
            continue
        if result.get("status") != "failed" or (names is not None and result["method"] not in names):
            continue
        if wanted is not None and test_set(result) != wanted:
            continue
        failures.append(result)

    return sorted(failures, key=lambda result: order(result["method"]))


def failure_text(result: dict[str, Any]) -> str:
    err = result.get("error") or {}
    return f"{err.get('type') or 'error'}: {err.get('reason') or 'no reason recorded'}"


def load_reference(run_dir: Path, results: list[MethodResults]) -> MethodResults | None:
    """The HR ceiling (``_hr/``) when it was computed on the same plates as ``results``."""
    path = Path(run_dir) / "_hr" / "result.json"
    if not results or not path.is_file():
        return None
    try:
        ref = read_json(path)
    except ReportError:
        return None
    if (ref.get("data") or {}).get("fingerprint") != results[0].result["data"]["fingerprint"]:
        return None
    plates = read_plates(path.parent / "plates.csv", len(results[0].plates))
    if list(plates[ID_COLUMN].astype(str)) != list(results[0].plates[ID_COLUMN].astype(str)):
        raise ReportError(f"{path.parent / 'plates.csv'}: its plates differ from the methods' plates; rerun `bench run`")
    return MethodResults({**ref, "method": REFERENCE}, plates, path.parent)
