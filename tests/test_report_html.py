"""The HTML report opens offline in a real browser (headless Chromium): the table rows and
the inlined figures are there, and a screenshot is taken (kept for people to look at when
LPSR_SCREENSHOT_DIR is set)."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.cli import cli

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def run_chromium(exe: str, *args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def report_html(tmp_path_factory):
    out = tmp_path_factory.mktemp("html")
    res = CliRunner().invoke(cli, ["run", "--methods", "bicubic,tiny", "--scale", "8", "--profile", "test", "--ocr", "none",
                                   "--run-dir", str(out / "runs"), "--leaderboard-dir", str(out / "lb")])
    assert res.exit_code == 0, res.output + repr(res.exception)
    return out / "lb" / "synthetic-x8-test.html"


def test_html_is_self_contained(report_html):
    html = report_html.read_text()
    assert "<script src" not in html and "<link" not in html and "http://" not in html and "https://" not in html
    assert html.count('<img alt="') == html.count("data:image/png;base64,") >= 4


@pytest.mark.skipif(chromium() is None, reason="headless Chromium not installed (CI installs Debian's `chromium` in .ci/run)")
def test_html_report_in_headless_chromium(report_html, tmp_path):
    exe = chromium()
    url = report_html.resolve().as_uri()
    dom = run_chromium(exe, "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    page = dom.stdout
    assert page.count('<tr class="method" data-method="bicubic">') == 1 and page.count('data-method="tiny"') == 1
    assert page.count("data:image/png;base64,") >= 4
    assert "Image quality and cost" in page and "Provenance" in page and "<strong>profile test:" in page
    shot = tmp_path / "report.png"
    res = run_chromium(exe, "--window-size=1400,2000", "--hide-scrollbars", f"--screenshot={shot}", url)
    assert res.returncode == 0 and shot.is_file(), res.stderr[-2000:]
    from PIL import Image

    with Image.open(shot) as im:
        assert im.size == (1400, 2000)
        import numpy as np

        colours = len(np.unique(np.asarray(im.convert("RGB").resize((140, 200))).reshape(-1, 3), axis=0))
    assert colours > 50  # a rendered page with tables and figures, not a blank or error page
    keep = os.environ.get("LPSR_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / "report.png")
    # the sort script works: a #sort= link sorts on load, as a click on the header does
    order = []
    for direction in ("asc", "desc"):
        sorted_dom = run_chromium(exe, "--dump-dom", f"{url}#sort=quality:5:{direction}")  # column 5: PSNR-Y
        assert sorted_dom.returncode == 0
        body = sorted_dom.stdout.split('id="quality"', 1)[1].split("</table>", 1)[0]
        order.append([m for m in ("bicubic", "tiny") if f'data-method="{m}"' in body])
        order[-1].sort(key=lambda m: body.index(f'data-method="{m}"'))
    assert order[0] == order[1][::-1]
