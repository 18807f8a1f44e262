"""Where a leaderboard's numbers come from, stated on every output: data, scale, profile
and each learned method's budget, seeds, devices, torch, commits, the Y convention, the
recognisers, the statistics used and the config hashes."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.report.results import MethodResults, readability_only
from bench.report.table import NOT_SIG, SEEN, cost_values, is_learned
from lpsr.degradations import recorded_degradation
from lpsr.errors import UserError
from lpsr.metrics.spec import CONFIDENT, recognisers_in
from lpsr.metrics.stats import ALPHA, N_RESAMPLES, SEED

#: how every table's bootstrap 95% CI is computed (leaderboard, robustness matrix)
#: what a leaderboard of LR-only data (no HR) says instead of its image metrics
READABILITY_ONLY = "readability only: the data has no HR"
CI_TEXT = (f"percentile bootstrap 95% CI of the median (image metrics) or the rate (accuracies), {N_RESAMPLES} resamples, "
           f"seed {SEED} (scipy.stats.bootstrap)")


def provenance(results: list[MethodResults], reference: MethodResults | None, ocr: list[str], run_dir: Path) -> dict[str, Any]:
    first = results[0].result
    data = first.get("data") or {}
    ev = first.get("eval") or {}
    def uniq(key: str) -> list[str]:
        return sorted({str(mr.result.get(key)) for mr in results if mr.result.get(key) is not None})
    return {
        "run_dir": Path(run_dir).name,
        "commit": uniq("commit"),
        "commit_methods": {c: sorted(mr.name for mr in results if str(mr.result.get("commit")) == c) for c in uniq("commit")},
        "profile": uniq("profile"),
        "profile_description": profile_descriptions(results),
        "budget": {mr.name: {"iterations": (mr.result.get("train") or {}).get("iterations"),
                             "train_seconds": (mr.result.get("train") or {}).get("train_seconds")}
                   for mr in results if is_learned(mr.result)},
        "seed": uniq("seed"),
        "device": uniq("device"),
        "torch": uniq("torch"),
        "scale": first.get("scale"),
        "data": {k: data.get(k) for k in ("name", "spec", "fingerprint", "n_train", "n_val", "n_test", "hr_size", "crop")},
        # the test LR when it is not the default bicubic (one per leaderboard: results.test_set)
        **({"degradation": deg} if (deg := recorded_degradation(first.get("degradation"))) else {}),
        # each learned method's training LR when it is not the default bicubic (train.degradation)
        **({"train_degradation": trained} if (trained := train_degradations(results)) else {}),
        "recognisers": ocr,
        "y_convention": ev.get("y_convention"),
        "crop_border": ev.get("crop_border"),
        "config_hashes": {mr.name: mr.result.get("config_hash") for mr in results},
        "hr_reference": reference is not None and bool(recognisers_in(reference.plates)),
        # LR-only data (no HR): readability only, and whether tracks were voted (absent otherwise)
        **({"readability_only": READABILITY_ONLY, "lr_size": data.get("lr_size"),
            "tracks": any(mr.tracks is not None for mr in results)} if readability_only(results) else {}),
        "statistics": {
            "ci": CI_TEXT,
            "paired_tests": f"vs the best method of each column on the same plates: Wilcoxon signed-rank (two-sided) for continuous metrics, exact McNemar for exact plate reads and confident-but-wrong; {NOT_SIG} = p >= {ALPHA} (not significantly different from the best; uncorrected for multiple comparisons)",
            "marks": "bold = best, italic = second best (distinct values; ties share the mark)",
            "seen": f"{SEEN} = this recogniser (or a network derived from it) is part of the method's training loss, so its readability there is not an independent measurement",
        },
    }


def train_degradations(results: list[MethodResults]) -> dict[str, dict[str, Any]]:
    """method -> its ``train_degradation`` record, for the learned methods not trained on bicubic LR."""
    return {mr.name: deg for mr in results if is_learned(mr.result) and (deg := recorded_degradation(mr.result.get("train_degradation")))}


def profile_descriptions(results: list[MethodResults]) -> list[str]:
    """Each profile's description: from the results, else from the named profile (runs
    written before results recorded it)."""
    from lpsr.profile import load_profile

    out = []
    for name in sorted({str(mr.result.get("profile")) for mr in results if mr.result.get("profile")}):
        desc = next((mr.result["profile_description"] for mr in results
                     if mr.result.get("profile") == name and mr.result.get("profile_description")), "")
        if not desc:
            try:
                desc = load_profile(name)[1].description
            except UserError:
                desc = ""
        out.append(f"`{name}`" + (f": {desc}" if desc else ""))
    return out


def budget_line(prov: dict[str, Any]) -> str:
    """The profile and what each learned method got, first thing a reader sees."""
    head = f"- **profile {'; '.join(prov.get('profile_description') or ['unknown'])}**"
    budget = prov.get("budget") or {}
    if not budget:
        return head + "; no method trained here"
    def one(name: str, b: dict[str, Any]) -> str:
        secs = b.get("train_seconds")
        return f"{name} {b['iterations']:,}" + (f" ({secs / 60:.1f} min)" if isinstance(secs, (int, float)) and secs == secs else "")
    return head + "; budget (training iterations, measured training time): " + ", ".join(one(k, b) for k, b in budget.items())


def provenance_lines(prov: dict[str, Any], batch_note: str) -> list[str]:
    d = prov["data"]
    hr = d.get("hr_size") or ["?", "?"]
    one = lambda v: ", ".join(v) if v else "unknown"  # noqa: E731
    return [
        budget_line(prov),
        f"- data: `{d.get('name')}` (`--data {d.get('spec')}`), {d.get('n_train')} train / {d.get('n_val')} val / {d.get('n_test')} test plates, "
        + ("LR crops only, no HR" if prov.get("readability_only") else f"HR {hr[0]}x{hr[1]} ({d.get('crop')} crop)")
        + f", fingerprint `{d.get('fingerprint')}`",
        f"- scale: x{prov['scale']}; LR = {lr_text(prov)}",
        *([f"- training LR: {train_lr_text(prov)}"] if prov.get("train_degradation") else []),
        f"- profile: `{one(prov['profile'])}`; seed: {one(prov['seed'])}; device: {one(prov['device'])}; torch {one(prov['torch'])}; {commit_text(prov)}",
        readability_line(prov) if prov.get("readability_only") else
        f"- PSNR on RGB and {prov['y_convention']}; crop border {prov['crop_border']} px; SR rounded to uint8 before scoring",
        f"- recognisers: {', '.join(prov['recognisers']) or 'none (--ocr none)'}; HR ceiling row: {'yes' if prov['hr_reference'] else 'no'}",
        "- values: median ± std over test plates [bootstrap 95% CI]; plate acc, char acc, conf-but-wrong: rate over plates [bootstrap 95% CI]; "
        "OCR rho: recogniser confidence (mean of kept CTC frames' max probability, 0 if nothing read), median ± std; "
        f"conf-but-wrong: share of plates read with confidence >= {CONFIDENT} that are not read exactly",
        f"- cost: params = trainable parameters; GFLOPs for one plate at the test LR size (torch.utils.flop_counter, 2 per multiply-add, interpolation not counted); ms/plate warm, {batch_note}",
        f"- statistics: {prov['statistics']['ci']}; {prov['statistics']['paired_tests']}; {prov['statistics']['marks']}; {prov['statistics']['seen']}",
        "- config hashes: " + ", ".join(f"{k}={v}" for k, v in prov["config_hashes"].items()),
    ]


def readability_line(prov: dict[str, Any]) -> str:
    """LR-only data: what is scored instead of PSNR / PSNR-Y / SSIM-Y, and the track vote."""
    from lpsr.metrics.spec import READABILITY_ONLY_METRICS, TRACK_METRICS

    line = (f"- **{prov['readability_only']}** (LR-only `folder:` data, `lr_filename` in labels.csv): no PSNR, PSNR-Y or SSIM-Y; "
            "SR rounded to uint8 and read; " + "; ".join(f"{m.label}: {m.description}" for m in READABILITY_ONLY_METRICS))
    if prov.get("tracks"):
        line += "; " + "; ".join(f"{m.label}: {m.description}" for m in TRACK_METRICS) + " (beside the per-frame rates)"
    return line


def lr_text(prov: dict[str, Any]) -> str:
    """How the test LR was made: today's bicubic, or the degradation with every parameter."""
    if prov.get("readability_only"):
        w, h = prov.get("lr_size") or ("?", "?")
        return f"the data's own LR crops (no HR), each resized to the run's LR size {w}x{h} (hr_size / scale)"
    deg = prov.get("degradation")
    if not deg:
        return "antialiased bicubic downscale of the HR plate"
    return f"degradation **`{deg['name']}`** ({params_text(deg)}), seeded per test plate (`bench run --degradation`)"


def params_text(deg: dict[str, Any]) -> str:
    """``camera: blur_sigma 1.2, ...; fingerprint `...``` of a degradation record (the kind
    alone when it has no parameters; no fingerprint when it records none)."""
    params = deg.get("params") or {}
    rest = ", ".join(f"{k} {v}" for k, v in params.items() if k != "kind")
    fingerprint = f"; fingerprint `{deg['fingerprint']}`" if deg.get("fingerprint") else ""
    return f"{params.get('kind', '?')}{': ' + rest if rest else ''}{fingerprint}"


def train_lr_text(prov: dict[str, Any]) -> str:
    """How the learned methods' training (and val) LR was made, when not all on bicubic."""
    by: dict[str, list[str]] = {}
    records: dict[str, dict[str, Any]] = {}
    for method, deg in prov["train_degradation"].items():
        by.setdefault(deg["fingerprint"], []).append(method)
        records[deg["fingerprint"]] = deg
    parts = [f"degradation **`{records[fp]['name']}`** ({params_text(records[fp])}) for {', '.join(ms)}" for fp, ms in by.items()]
    rest = sorted(set(prov.get("budget") or {}) - set(prov["train_degradation"]))
    return ("; ".join(parts) + (f"; antialiased bicubic for {', '.join(rest)}" if rest else "")
            + "; seeded per training sample, val LR the same keyed per val plate (`train.degradation`)")


def train_degradation_column(prov: dict[str, Any], method: str | None) -> dict[str, Any]:
    """The CSV's ``train_degradation`` / ``train_degradation_fingerprint`` of one row (only
    when some method was not trained on bicubic; empty for a method not trained here)."""
    if not prov.get("train_degradation"):
        return {}
    deg = prov["train_degradation"].get(method)
    learned = method in (prov.get("budget") or {})
    return {"train_degradation": deg["name"] if deg else ("bicubic" if learned else ""),
            "train_degradation_fingerprint": deg["fingerprint"] if deg else ""}


def commit_text(prov: dict[str, Any]) -> str:
    """``commit: `abc1234``` or, for a run whose methods ran at several commits, each commit in
    its own backticks with the methods it produced."""
    commits = prov["commit"]
    if len(commits) <= 1:
        return f"commit: `{commits[0] if commits else 'unknown'}`"
    by = prov.get("commit_methods") or {}
    return "commits: " + "; ".join(f"`{c}` ({', '.join(by.get(c, [])) or '?'})" for c in commits)


def provenance_footer(prov: dict[str, Any]) -> str:
    """One line of provenance printed under every figure."""
    d = prov["data"]
    return (f"data {d.get('name')} fp {d.get('fingerprint')} ({d.get('n_test')} test plates), x{prov['scale']}, "
            f"profile {','.join(prov['profile'])}, seed {','.join(prov['seed']) or '?'}, {','.join(prov['device'])}, "
            f"torch {','.join(prov['torch']) or '?'}, commit {','.join(prov['commit'])}, crop border {prov['crop_border']}, "
            f"OCR {','.join(prov['recognisers']) or 'none'}"
            + (f", degradation {prov['degradation']['name']} fp {prov['degradation']['fingerprint']}" if prov.get("degradation") else "")
            + (", training LR " + ",".join(sorted({d["name"] for d in prov["train_degradation"].values()})) if prov.get("train_degradation") else ""))


def provenance_columns(prov: dict[str, Any]) -> dict[str, Any]:
    """Provenance repeated in every CSV row (a CSV travels without its markdown)."""
    d = prov["data"]
    return {"scale": prov["scale"], "profile": ",".join(prov["profile"]), "seed": ",".join(prov["seed"]),
            "device": ",".join(prov["device"]), "torch": ",".join(prov["torch"]), "commit": ",".join(prov["commit"]),
            "data": d.get("name"), "data_spec": d.get("spec"), "data_fingerprint": d.get("fingerprint"),
            "n_train": d.get("n_train"), "n_val": d.get("n_val"), "n_test": d.get("n_test"),
            "crop_border": prov["crop_border"], "y_convention": prov["y_convention"], "recognisers": ",".join(prov["recognisers"]),
            **({"degradation": prov["degradation"]["name"], "degradation_fingerprint": prov["degradation"]["fingerprint"]}
               if prov.get("degradation") else {})}


def batch_note(results: list[MethodResults]) -> str:
    batches = sorted({str(cost_values(mr.result)["batch"]) for mr in results if cost_values(mr.result)["batch"]})
    devices = sorted({str(cost_values(mr.result)["cost_device"]) for mr in results if cost_values(mr.result)["cost_device"]})
    if not batches:
        return "not measured"
    return f"batch {', '.join(batches)} on {', '.join(devices)}"
