"""The contact sheet of ``bench upscale``: one row per input, columns LR (nearest-neighbour
enlarged, so its pixels show) | Bicubic | each method's SR (| HR when known, for CCPD
photos), each with every recogniser's reading under it (wrong characters in red when the
true plate is known); as a PNG and as a small HTML page beside it."""
from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.report.figures import draw_text
from lpsr.io import atomic_path, write_text

FONT = 13
PAD = 6


@dataclass
class Row:
    name: str
    truth: str
    #: column title -> uint8 HxWx3 image (display order)
    images: dict[str, np.ndarray]
    #: column title -> [(recogniser, text, confidence)]
    reads: dict[str, list[tuple[str, str, float]]] = field(default_factory=dict)


def _read_parts(rec: str, text: str, conf: float, truth: str) -> list[tuple[str, str]]:
    from lpsr.metrics.text import exact_match, mark_errors

    head = f"{rec} {conf:.2f}: "
    if not truth:
        return [(head, "#444444"), (text or "(nothing)", "#111111")]
    marks = mark_errors(text, truth)
    colour = "#1a7f37" if exact_match(text, truth) else "#444444"
    return [(head, colour)] + ([(ch, "#111111" if ok else "#d62728") for ch, ok in marks] if marks else [("(nothing)", "#d62728")])


def _cell(image: np.ndarray, width: int, lines: list[list[tuple[str, str]]]):
    from PIL import Image, ImageDraw

    line_h = FONT + 6
    h_img = max(1, round(image.shape[0] * width / image.shape[1]))
    tile = Image.new("RGB", (width, h_img + PAD + line_h * len(lines)), "white")
    tile.paste(Image.fromarray(image).resize((width, h_img), Image.NEAREST), (0, 0))
    draw = ImageDraw.Draw(tile)
    for k, parts in enumerate(lines):
        draw_text(draw, (2, h_img + 4 + k * line_h), parts, FONT)
    return tile


def sheet_png(rows: list[Row], path: Path, title: str) -> None:
    from PIL import Image, ImageDraw

    columns = list(rows[0].images)
    tiles = []
    for row in rows:
        sr_w = max(im.shape[1] for im in row.images.values())
        width = int(np.clip(sr_w, 192, 384))
        cells = [_cell(row.images[c], width, [[(f"{c}", "#111111")]] +
                       [_read_parts(r, t, conf, row.truth) for r, t, conf in row.reads.get(c, [])]) for c in columns]
        name = row.name if len(row.name) <= 48 else row.name[:45] + "..."
        label = (f"truth: {row.truth}   " if row.truth else "") + name
        tiles.append((label, cells))
    width = max(sum(c.width for c in cells) + PAD * (len(cells) + 1) for _, cells in tiles)
    height = FONT + 2 * PAD + sum(FONT + PAD + max(c.height for c in cells) + PAD for _, cells in tiles)
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    draw_text(draw, (PAD, PAD // 2), [(title, "#111111")], FONT)
    y = FONT + 2 * PAD
    for label, cells in tiles:
        draw_text(draw, (PAD, y), [(label, "#444444")], FONT)
        y += FONT + PAD
        x = PAD
        for c in cells:
            sheet.paste(c, (x, y))
            x += c.width + PAD
        y += max(c.height for c in cells) + PAD
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG")


def sheet_html(rows: list[Row], path: Path, title: str, png_name: str, sr_files: dict[tuple[str, str], str]) -> None:
    """A page with the sheet and a table of the readings, linking each SR image."""
    e = html.escape
    body = [f"<h1>{e(title)}</h1>", f'<p><img src="{e(png_name)}" alt="contact sheet" style="max-width:100%"></p>',
            "<table><tr><th>input</th><th>truth</th><th>column</th><th>SR file</th><th>readings</th></tr>"]
    for row in rows:
        for col in row.images:
            reads = "; ".join(f"{e(r)}: {e(t) or '(nothing)'} ({c:.2f})" for r, t, c in row.reads.get(col, []))
            f = sr_files.get((row.name, col))
            link = f'<a href="{e(f)}">{e(f)}</a>' if f else ""
            body.append(f"<tr><td>{e(row.name)}</td><td>{e(row.truth)}</td><td>{e(col)}</td><td>{link}</td><td>{reads}</td></tr>")
    body.append("</table>")
    style = "body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px}"
    write_text(path, f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title><style>{style}</style></head>"
                     f"<body>{''.join(body)}</body></html>\n")
