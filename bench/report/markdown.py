"""The table model (:mod:`bench.report.table`) as markdown: pipe tables, best in bold,
second in italics, CI in brackets, the not-significant and seen marks after the value."""
from __future__ import annotations

from typing import Any

from bench.report.results import failure_text
from bench.report.table import NOT_SIG, SEEN, Shown, Table


def md_table(head: list[str], body: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(r) + " |" for r in body]


def cell_text(cell: Shown) -> str:
    text = cell.text
    if cell.ci is not None:
        lo, hi = cell.ci
        text += f" [{lo.rstrip('%')}, {hi}]"  # a rate's % is printed once, after the upper bound
    if cell.mark == "best":
        text = f"**{text}**"
    elif cell.mark == "second":
        text = f"_{text}_"
    if cell.not_sig:
        text += f" {NOT_SIG}"
    if cell.seen:
        text += f" {SEEN}"
    return text


def one_line(text: str) -> str:
    """Text safe in a table cell: whitespace collapsed, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def table_markdown(table: Table) -> list[str]:
    """``## title``, the table, a blank line; a failed method is one row saying why."""
    body = [[cell_text(c.cell(r)) for c in table.columns] for r in table.rows]
    for f in table.failures:
        body.append([f["method"], f"**failed**: {one_line(failure_text(f))}"] + ["-"] * (len(table.columns) - 2))
    return [f"## {table.title}", ""] + md_table(table.head, body) + [""]


def failure_markdown(failures: list[dict[str, Any]]) -> list[str]:
    if not failures:
        return []
    out = ["## Failed methods", "", "These methods did not finish; the others are scored above. Rerun the same command to try "
           "them again (training resumes from the last checkpoint).", ""]
    body = [[f["method"], "**failed**", (f.get("error") or {}).get("type") or "-",
             one_line((f.get("error") or {}).get("reason") or "-")] for f in failures]
    return out + md_table(["method", "status", "error", "reason"], body) + [""]
