"""Figures of a report (matplotlib, PNG), made from a run directory's files alone.

- ``val_psnr.png``: validation PSNR vs training iterations, log axis, every trained method
  (from ``train.jsonl``; the paper's Fig. 6);
- ``psnr_y_distribution.png``: per-plate PSNR-Y of every method (box + every plate);
- ``cost_quality.png``: parameters and ms/plate vs median PSNR-Y and vs exact plate accuracy;
- ``qualitative.png``: HR / Bicubic / each method on 6 test plates chosen by a stated rule,
  each tile captioned with PSNR-Y and what each recogniser read, wrong characters in red
  (the paper's Fig. 7).  Chinese province characters are drawn with the font subset the
  project ships (``lpsr/assets``), everything else with matplotlib's DejaVu Sans.
"""
from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from bench.report.interface import floor_name, floor_upscale, is_the_floor
from bench.report.results import readability_only
from bench.report.table import cost_values
from lpsr.metrics.spec import HEADLINE, HEADLINE_OCR, ID_COLUMN, PARAMS, TIMED, TRUTH_COLUMN, fmt_count, text_column
from lpsr.errors import UserError

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
           "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173"]
GRID_RULE = ("6 test plates at evenly spaced ranks of Bicubic PSNR-Y (worst, 20th, 40th, 60th, 80th percentile, best), "
             "so the grid spans the hardest to the easiest plates")


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 100, "font.size": 10, "svg.hashsalt": "lpsr",
                         "axes.grid": True, "grid.alpha": 0.3})
    return plt


FOOTER = {"text": ""}  # provenance line printed under every figure (set by make_all)


def _save(fig, path: Path) -> None:
    from lpsr.io import atomic_path

    if FOOTER["text"]:
        import textwrap

        # under everything drawn, rotated tick labels included (they may reach below the figure)
        bottom = min(0.0, fig.get_tightbbox(fig.canvas.get_renderer()).y0 / fig.get_figheight())
        fig.text(0.0, bottom - 0.01, "\n".join(textwrap.wrap(FOOTER["text"], 100)), fontsize=7, color="#555555",
                 ha="left", va="top", transform=fig.transFigure)

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight", metadata={"Software": None})
    import matplotlib.pyplot as plt

    plt.close(fig)


def _plain_log_axis(axis, fmt=None) -> None:
    """Log axis labelled 1, 10, 100 ... (or ``fmt``) instead of 10^k and 2x10^0."""
    from matplotlib import ticker

    axis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(ticker.FuncFormatter(fmt or (lambda v, _p: f"{v:g}")))
    axis.set_minor_formatter(ticker.NullFormatter())


def _colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


# -- training curves -------------------------------------------------------------------------
def read_train_log(path: Path) -> list[dict[str, Any]]:
    """Lines of a ``train.jsonl`` (a torn or bad line is skipped)."""
    out = []
    if not path.is_file():
        return out
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def _style(i: int) -> dict[str, Any]:
    """Colour, and a line style that changes each time the palette wraps (>15 methods)."""
    return {"color": _colour(i), "linestyle": ["-", "--", ":", "-."][(i // len(PALETTE)) % 4]}


def curve_seconds(mr, log: list[dict[str, Any]]) -> tuple[list[float], bool]:
    """Training seconds at each logged validation: the logged wall time, or (runs whose
    log predates it) iteration x the run's mean seconds per iteration; second value: exact."""
    if all("seconds" in r for r in log):
        return [float(r["seconds"]) for r in log], True
    tr = mr.result.get("train") or {}
    secs, total = tr.get("train_seconds"), tr.get("iterations")
    if not secs or not total:
        return [], False
    return [r["iteration"] * secs / total for r in log], False


def val_curves(results, path: Path, x: str = "iteration", floors: dict[str, float] | None = None) -> bool:
    """Validation PSNR of every trained method against its training iterations
    (``x="iteration"``, the paper's Fig. 6) or its training wall time (``x="seconds"``:
    which method is best at which budget).  Methods evaluated without training (Bicubic)
    are dashed horizontal lines at their ``val_psnr`` (``floors`` adds or overrides some)."""
    curves = []
    flat: dict[str, tuple[int, float]] = {}
    estimated = False
    for i, mr in enumerate(results):
        log = [r for r in read_train_log(mr.dir / "train.jsonl") if "val_psnr" in r and "iteration" in r]
        if not log:
            v = (floors or {}).get(mr.name, mr.result.get("val_psnr"))
            if isinstance(v, (int, float)) and math.isfinite(v):
                flat[mr.name] = (i, float(v))
            continue
        its = [r["iteration"] for r in log]
        xs: list[float] = [float(v) for v in its]
        if x == "seconds":
            xs, exact = curve_seconds(mr, log)
            if not xs:
                continue
            estimated |= not exact
            xs = [v / 60.0 for v in xs]
        best = (mr.result.get("train") or {}).get("best_iteration")
        star = its.index(best) if best in its else None
        curves.append((i, mr.name, xs, [r["val_psnr"] for r in log], star))
    if not curves:
        return False
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4.8))
    for i, name, xs, vals, star in curves:
        ax.plot(xs, vals, marker="o", ms=3, lw=1.5, label=name, **_style(i))
        if star is not None:
            ax.plot([xs[star]], [vals[star]], marker="*", ms=12, color=_colour(i), markeredgecolor="black", zorder=5)
    for name, (i, v) in flat.items():
        ax.axhline(v, color=_colour(i), ls="--", lw=1.2, label=f"{name} (not trained)")
    ax.set_xscale("log")
    _plain_log_axis(ax.xaxis)
    if x == "seconds":
        ax.set_xlabel("training wall time, minutes (log scale; validation included)"
                      + ("; partly estimated: iteration x mean s/iteration" if estimated else ""))
        ax.set_title("Validation PSNR against training time (star: best checkpoint)")
    else:
        ax.set_xlabel("training iteration (log scale)")
        ax.set_title("Validation PSNR during training (star: best checkpoint, the one evaluated)")
    ax.set_ylabel("validation PSNR (dB, mean over val plates)")
    ax.legend(fontsize=8, ncol=2, loc="best")
    _save(fig, path)
    return True


# -- distributions ---------------------------------------------------------------------------
def psnr_y_distribution(results, path: Path) -> bool:
    """Per-plate values of the headline metric (:data:`lpsr.metrics.spec.HEADLINE`)."""
    col = HEADLINE.col()
    data = [(i, mr.name, mr.plates[col].to_numpy(dtype=float)) for i, mr in enumerate(results) if col in mr.plates]
    data = [(i, n, v[np.isfinite(v)]) for i, n, v in data]
    data = [d for d in data if d[2].size]
    if not data:
        return False
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(data) + 2), 4.8))
    pos = np.arange(1, len(data) + 1)
    ax.boxplot([v for _, _, v in data], positions=pos, widths=0.6, showfliers=False, medianprops={"color": "black", "lw": 2})
    rng = np.random.default_rng(0)
    for p, (i, _n, v) in zip(pos, data):
        ax.scatter(p + rng.uniform(-0.18, 0.18, v.size), v, s=9, alpha=0.55, color=_colour(i), zorder=3)
    ax.set_xticks(pos)
    ax.set_xticklabels([n for _, n, _ in data], rotation=30, ha="right")
    ax.set_ylabel(f"{HEADLINE.short} per test plate (dB)")
    ax.set_title(f"Per-plate {HEADLINE.short} ({data[0][2].size} test plates; box: quartiles, line: median)")
    _save(fig, path)
    return True


# -- cost vs quality -------------------------------------------------------------------------
def coincident(points: list[tuple[float, float, str]]) -> dict[tuple[float, float], list[str]]:
    """Labels of points drawn on (nearly) the same spot under one label: x within 2% (a log
    axis), y within 1.5% of the y span."""
    ys = [y for _, y, _ in points]
    tol = 0.015 * (max(ys) - min(ys)) if ys else 0.0
    groups: dict[tuple[float, float], list[str]] = {}
    for x, y, label in points:
        key = next((k for k in groups if math.isclose(k[0], x, rel_tol=0.02) and abs(k[1] - y) <= tol), (x, y))
        groups.setdefault(key, []).append(label)
    return groups


def cost_quality(rows, ocr: list[str], path: Path) -> bool:
    pts = []
    for i, r in enumerate(rows):
        if r.reference:
            continue
        cv = cost_values(r.result)
        q = r.cells.get(HEADLINE.name())
        accs = {n: (r.cells[HEADLINE_OCR.name(n)].value if HEADLINE_OCR.name(n) in r.cells else float("nan")) for n in ocr}
        pts.append((i, r.method, cv[PARAMS.key] or 0, cv[TIMED.key], q.value if q else float("nan"), accs))
    if not pts:
        return False
    plt = _plt()
    nrows = 2 if ocr else 1
    fig, axes = plt.subplots(nrows, 2, figsize=(11, 4.2 * nrows), squeeze=False)
    nonzero = [p[2] for p in pts if p[2]]
    zero_at = 10 ** (math.floor(math.log10(min(nonzero))) - 1) if nonzero else 1.0
    xs = [(f"parameters (log; a method without a network is drawn at {fmt_count(zero_at) if zero_at >= 1 else zero_at})", 2),
          ("ms per plate, warm (log)", 3)]
    markers = ["o", "s", "^", "D", "v"]
    bad = lambda v: v is None or (isinstance(v, float) and math.isnan(v))  # noqa: E731
    labels: dict[tuple[int, int], list] = {(r, c): [] for r in range(nrows) for c in range(2)}
    for c_i, (xlabel, xk) in enumerate(xs):
        for r_i in range(nrows):
            ax = axes[r_i][c_i]
            for p in pts:
                x = zero_at if (xk == 2 and not p[2]) else p[xk]
                if bad(x) or x <= 0:
                    continue
                label = p[1] + (" (0 params)" if xk == 2 and not p[2] else "")
                if r_i == 0:
                    if bad(p[4]):
                        continue
                    ax.scatter([x], [p[4]], s=40, color=_colour(p[0]), zorder=3)
                    labels[(r_i, c_i)].append((x, p[4], label))
                else:
                    for k, n in enumerate(ocr):
                        y = p[5][n]
                        if bad(y):
                            continue
                        ax.scatter([x], [100 * y], s=40, color=_colour(p[0]), marker=markers[k % len(markers)], zorder=3)
                        if k == 0:
                            labels[(r_i, c_i)].append((x, 100 * y, label))
            ax.set_xscale("log")
            if xk == 2:
                from matplotlib import ticker

                ax.xaxis.set_major_locator(ticker.LogLocator(base=10))
                ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _p: fmt_count(v) if v >= 1 else f"{v:g}"))
                ax.xaxis.set_minor_formatter(ticker.NullFormatter())
            else:
                _plain_log_axis(ax.xaxis)
            ax.margins(x=0.15, y=0.12)
            ax.set_xlabel(xlabel)
            if r_i == 0:
                ax.set_ylabel(f"median {HEADLINE.short} (dB)")
            else:
                ax.set_ylabel("exact plate accuracy (%)")
                top = max([100 * v for p in pts for v in p[5].values() if not bad(v)] + [0.0])
                ax.set_ylim(-3, max(10.0, top * 1.15 + 3))
                for k, n in enumerate(ocr):
                    ax.scatter([], [], s=40, color="#555555", marker=markers[k % len(markers)], label=n)
                ax.legend(title="recogniser", fontsize=8, loc="best")
    fig.suptitle("Cost vs quality (up and left is better)")
    fig.tight_layout()
    # methods often share a parameter count (ablations: all of them) or land close together:
    # move their labels apart, each tied to its point by a thin line (a fixed iteration count:
    # adjustText's default is a 1 s time limit, which makes the figure depend on machine speed)
    from adjustText import adjust_text

    for (r_i, c_i), pending in labels.items():
        ax = axes[r_i][c_i]
        texts = [ax.text(x, y, "\n".join(", ".join(names[k:k + 2]) for k in range(0, len(names), 2)), fontsize=8,
                         multialignment="left")
                 for (x, y), names in coincident(pending).items()]
        if texts:
            adjust_text(texts, ax=ax, expand=(1.15, 1.5), iter_lim=500, arrowprops={"arrowstyle": "-", "color": "0.55", "lw": 0.6})
    _save(fig, path)
    return True


# -- qualitative grid ------------------------------------------------------------------------
@lru_cache(maxsize=None)
def _fonts(size: int):
    from matplotlib import font_manager
    from PIL import ImageFont

    from lpsr.data.synthetic import FONT_PATH

    latin = ImageFont.truetype(font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans")), size)
    cjk = ImageFont.truetype(str(FONT_PATH), size) if Path(FONT_PATH).is_file() else None
    return latin, cjk


def _render(font, ch: str) -> bytes:
    from PIL import Image, ImageDraw

    size = int(getattr(font, "size", 16))
    im = Image.new("L", (3 * size, 2 * size))
    ImageDraw.Draw(im).text((2, 2), ch, font=font, fill=255)
    return im.tobytes()


@lru_cache(maxsize=None)
def _has_glyph_cached(font, ch: str) -> bool:
    return _render(font, ch) != _render(font, "\U0010fffd")  # a private-use code point: the .notdef box


def _has_glyph(font, ch: str) -> bool:
    if font is None:
        return False
    if ch.isspace():
        return True
    return _has_glyph_cached(font, ch)


def _font_for(ch: str, size: int):
    latin, cjk = _fonts(size)
    if _has_glyph(latin, ch):
        return latin, ch
    if _has_glyph(cjk, ch):
        return cjk, ch
    return latin, "?"


def draw_text(draw, xy: tuple[int, int], parts: list[tuple[str, str]], size: int) -> int:
    """Draw ``(text, colour)`` parts left to right, picking a font per character; returns the end x."""
    x, y = xy
    baseline = y + size  # every font on one baseline (the CJK subset and DejaVu have different ascents)
    for text, colour in parts:
        for ch in text:
            font, shown = _font_for(ch, size)
            draw.text((x, baseline), shown, fill=colour, font=font, anchor="ls")
            x += int(math.ceil(font.getlength(shown)))
    return x


def pick_plates(bicubic_psnr_y: np.ndarray, k: int = 6) -> list[tuple[int, str]]:
    """Indices of the grid's plates and their label (the rule in :data:`GRID_RULE`)."""
    v = np.where(np.isfinite(bicubic_psnr_y), bicubic_psnr_y, np.inf)
    order = np.argsort(v, kind="stable")
    n = len(order)
    if n == 0:
        return []
    labels = ["worst", "p20", "p40", "p60", "p80", "best"] if k == 6 else [f"q{q:.2f}" for q in np.linspace(0, 1, k)]
    out: list[tuple[int, str]] = []
    for q, label in zip(np.linspace(0, 1, k), labels):
        idx = int(order[int(round(q * (n - 1)))])
        if idx not in [i for i, _ in out]:
            out.append((idx, label))
    return out


def _tile(image: np.ndarray, lines: list[list[tuple[str, str]]], width: int, font_size: int):
    from PIL import Image, ImageDraw

    line_h = font_size + 6
    h_img = image.shape[0] * width // image.shape[1]
    tile = Image.new("RGB", (width, h_img + 6 + line_h * len(lines)), "white")
    tile.paste(Image.fromarray(image).resize((width, h_img), Image.NEAREST), (0, 0))
    draw = ImageDraw.Draw(tile)
    for k, parts in enumerate(lines):
        draw_text(draw, (2, h_img + 4 + k * line_h), parts, font_size)
    return tile


def _read_line(name: str, text: str, truth: str) -> list[tuple[str, str]]:
    from lpsr.metrics.text import exact_match, mark_errors

    ok = exact_match(text, truth)
    parts = [(f"{name}: ", "#1a7f37" if ok else "#444444")]
    marks = mark_errors(text, truth)
    if not marks:
        return parts + [("(nothing)", "#d62728")]
    return parts + [(ch, "#111111" if good else "#d62728") for ch, good in marks]


def qualitative_grid(run_dir: Path, results, reference, ocr: list[str], path: Path) -> tuple[bool, str]:
    """The grid; returns (made?, the rule or the reason it was not made)."""
    from lpsr.evaluate import load_images

    if reference is None or not (reference.dir / "hr_test.npz").is_file():
        return False, "no HR images in the run (`_hr/hr_test.npz`, written by `bench run` from this version on)"
    try:
        hr = load_images(reference.dir / "hr_test.npz")
        srs = {mr.name: load_images(f) for mr in results if (f := mr.dir / str(mr.result.get("images") or "sr_test.npz")).is_file()}
    except UserError as exc:  # a damaged .npz: skip this figure, name the file
        return False, str(exc)
    ids = list(results[0].plates[ID_COLUMN].astype(str))
    if not set(hr) <= set(ids):
        return False, "the HR images in `_hr/hr_test.npz` are not this run's test plates"
    # the plates whose images were kept (lpsr.evaluate.figure_ids: every one up to 512 test plates)
    stored = np.array([k for k, i in enumerate(ids) if i in hr and all(i in s for s in srs.values())], dtype=int)
    if not len(stored):
        return False, "no test plate has its HR and every method's SR image saved (`hr_test.npz`, `sr_test.npz`)"
    truths = list(results[0].plates[TRUTH_COLUMN].astype(str))
    scale = int(results[0].result["scale"])
    from lpsr.degradations import degradation_from_record

    degradation = degradation_from_record(results[0].result.get("degradation"))  # the run's test LR
    # the floor column: the floor method's row when the run has it, else its own super_resolve
    # on the same LR plates (the kernel of its row)
    floor_row = next((mr for mr in results if is_the_floor(mr.name)), None)
    floor = floor_row.name if floor_row is not None else floor_name()
    if floor is None:
        return False, "no floor method registered (a Method with floor = True)"

    def floor_image(i: str) -> np.ndarray:
        if floor_row is not None and floor_row.name in srs:
            return srs[floor_row.name][i]
        return floor_upscale(floor, scale, degradation.apply(hr[i], scale, key=i))

    headline = HEADLINE.col()
    bic_scores = np.full(len(ids), np.nan)
    if floor_row is not None and headline in floor_row.plates:
        bic_scores[stored] = floor_row.plates[headline].to_numpy(dtype=float)[stored]
    else:
        bic_scores[stored] = [HEADLINE.per_plate(floor_image(ids[k]), hr[ids[k]], 0) for k in stored]
    chosen = [(int(stored[j]), label) for j, label in pick_plates(bic_scores[stored])]
    methods = [mr for mr in results if mr.name in srs and mr is not floor_row]
    width, fs = 200, 13
    columns: list[tuple[str, list]] = []
    # HR column: truth + what each recogniser read on HR
    hr_tiles, bic_tiles = [], []
    for idx, label in chosen:
        pid = ids[idx]
        lines = [[(f"{label}  truth: ", "#444444"), (truths[idx], "#111111")]]
        for n in ocr:
            col = text_column(n)
            if col in reference.plates:
                lines.append(_read_line(n, str(reference.plates[col].iloc[idx]), truths[idx]))
        hr_tiles.append(_tile(hr[pid], lines, width, fs))
        bimg = floor_image(pid)
        blines = [[(f"{HEADLINE.short} {bic_scores[idx]:.2f} dB", "#111111")]]
        for n in ocr:
            col = text_column(n)
            if floor_row is not None and col in floor_row.plates:
                blines.append(_read_line(n, str(floor_row.plates[col].iloc[idx]), truths[idx]))
            else:
                blines.append([(f"{n}: (not run)", "#888888")])
        bic_tiles.append(_tile(bimg, blines, width, fs))
    columns.append(("HR", hr_tiles))
    columns.append(("Bicubic" if floor_row is not None else "Bicubic (recomputed)", bic_tiles))
    for mr in methods:
        tiles = []
        for idx, _label in chosen:
            pid = ids[idx]
            img = srs[mr.name][pid]
            lines = [[(f"{HEADLINE.short} {float(mr.plates[headline].iloc[idx]):.2f} dB", "#111111")]]
            for n in ocr:
                col = text_column(n)
                lines.append(_read_line(n, str(mr.plates[col].iloc[idx]), truths[idx]) if col in mr.plates else [(f"{n}: -", "#888888")])
            tiles.append(_tile(img, lines, width, fs))
        columns.append((mr.name, tiles))

    from PIL import Image, ImageDraw

    import textwrap

    tile_h = max(t.height for _, tiles in columns for t in tiles)
    pad, head = 8, 26
    W = pad + len(columns) * (width + pad)
    foot_lines = textwrap.wrap(FOOTER["text"], max(40, (W - 2 * pad) // 6)) if FOOTER["text"] else []
    foot = 14 * len(foot_lines) + 6 if foot_lines else 0
    H = head + len(chosen) * (tile_h + pad) + pad + foot
    canvas = Image.new("RGB", (W, H), "white")
    draw = ImageDraw.Draw(canvas)
    for c, (name, tiles) in enumerate(columns):
        x = pad + c * (width + pad)
        draw_text(draw, (x, 5), [(name, "#111111")], 15)
        for r, tile in enumerate(tiles):
            canvas.paste(tile, (x, head + r * (tile_h + pad)))
    for k, line in enumerate(foot_lines):
        draw_text(draw, (pad, H - foot + 14 * k), [(line, "#555555")], 10)
    plt = _plt()
    fig = plt.figure(figsize=(W / 100, H / 100), dpi=100)
    fig.figimage(np.asarray(canvas), 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    from lpsr.io import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    if len(stored) < len(ids):  # a large test set keeps the images of FIGURE_PLATES plates
        return True, GRID_RULE.replace("6 test plates", f"6 of the {len(stored):,} test plates whose images are kept (of {len(ids):,})", 1)
    return True, GRID_RULE


def make_all(run_dir: Path, results, reference, rows, ocr: list[str], fig_dir: Path,
             skipped: list[str] | None = None, footer: str = "") -> list[tuple[str, str, Path]]:
    """Every figure that the run's files allow; ``(key, caption, path)`` for each one made,
    and the reason for each one not made appended to ``skipped``."""
    skipped = skipped if skipped is not None else []
    FOOTER["text"] = footer
    made: list[tuple[str, str, Path]] = []
    p = fig_dir / "val_psnr.png"
    if not val_curves(results, p):
        skipped.append("validation curves (no trained method with a train.jsonl)")
    else:
        made.append(("val_psnr", "Validation PSNR vs training iterations (log axis); star: the best checkpoint, which is evaluated", p))
        p = fig_dir / "val_psnr_time.png"
        if val_curves(results, p, x="seconds"):
            made.append(("val_psnr_time", "Validation PSNR vs training wall time on the run's device (log axis): which method is best at which budget", p))
    key = f"{HEADLINE.key}_distribution"
    p = fig_dir / f"{key}.png"
    if psnr_y_distribution(results, p):
        made.append((key, f"Per-plate {HEADLINE.short} distribution of every method (box: quartiles; dots: plates)", p))
    p = fig_dir / "cost_quality.png"
    if not any(HEADLINE.name() in r.cells for r in rows):
        skipped.append(f"cost vs quality (no {HEADLINE.short}: readability only, the data has no HR)")
    elif cost_quality(rows, ocr, p):
        made.append(("cost_quality", f"Cost vs quality: parameters and ms/plate against median {HEADLINE.short}" + (" and exact plate accuracy per recogniser" if ocr else ""), p))
    p = fig_dir / "qualitative.png"
    if readability_only(results):
        ok, rule = False, "no HR: readability only"
    else:
        ok, rule = qualitative_grid(run_dir, results, reference, ocr, p)
    if not ok:
        skipped.append(f"qualitative grid ({rule})")
    else:
        made.append(("qualitative", f"HR, Bicubic and every method on {rule}; captions: PSNR-Y and each recogniser's reading, "
                                    "wrong or missing (_) characters in red, exact reads' recogniser name in green", p))
    return made


# -- robustness matrix -----------------------------------------------------------------------
def matrix_heatmap(path: Path, row_labels: list[str], col_labels: list[str],
                   panels: list[tuple[str, np.ndarray, Any, float, float, str]], footer: str = "") -> bool:
    """Rows x test degradations, one panel per ``(title, values, fmt, vmin, vmax, colour-bar
    label)`` (values: rows x columns, NaN where a row was not tested), every value printed in
    its cell, one colour bar per panel; ``False`` when there is nothing to draw."""
    if not panels or not row_labels or not col_labels:
        return False
    plt = _plt()
    FOOTER["text"] = footer
    width = max(3.5, 0.95 * len(col_labels) + 1.5)
    fig, axes = plt.subplots(1, len(panels), figsize=(width * len(panels) + 2.2, 0.5 * len(row_labels) + 1.8), squeeze=False)
    cmap = plt.get_cmap("viridis").with_extremes(bad="#e8e8e8")
    for ax, (title, values, fmt, vmin, vmax, bar_label) in zip(axes[0], panels):
        ax.grid(False)
        image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
        for (i, j), v in np.ndenumerate(values):
            if math.isnan(v):
                ax.text(j, i, "-", ha="center", va="center", fontsize=9, color="#666666")
                continue
            dark = (v - vmin) / ((vmax - vmin) or 1.0) < 0.6  # viridis is dark below ~60%: white text there
            ax.text(j, i, fmt(v), ha="center", va="center", fontsize=9, color="white" if dark else "black")
        ax.set_xticks(range(len(col_labels)), col_labels, rotation=30, ha="right")
        ax.set_yticks(range(len(row_labels)), row_labels)
        ax.set_xlabel("test LR degradation")
        ax.set_title(title)
        fig.colorbar(image, ax=ax, label=bar_label, fraction=0.05, pad=0.03)
    for ax in axes[0][1:]:
        ax.set_yticklabels([])
    fig.tight_layout()
    _save(fig, path)
    return True
