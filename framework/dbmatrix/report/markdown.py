"""Render a results document as Markdown (GitHub-flavoured tables)."""

from __future__ import annotations

from typing import Any

from ..redaction import scrub
from . import _model as m
from .isolation import isolation_sections


def _cell(value: object) -> str:
    # A raw "|" would split the table cell and a newline would end the row.
    return " <br> ".join(m.text(value).replace("|", "\\|").splitlines())


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines


def _header(doc: dict[str, Any]) -> list[str]:
    run = doc.get("run") or {}
    complete = "yes" if run.get("complete") else "**no — partial results**"
    return [
        f"# dbmatrix report — run `{m.text(run.get('id'))}`",
        "",
        f"- Started: {m.text(run.get('started')) or '?'}",
        f"- Finished: {m.text(run.get('finished')) or '?'}",
        f"- Complete: {complete}",
        f"- Python: {m.text(run.get('python')) or '?'}",
        f"- dbmatrix: {m.text(run.get('dbmatrix')) or '?'}",
        "",
        f"**Summary:** {m.summary_line(doc)}",
        "",
    ]


def _targets(doc: dict[str, Any]) -> list[str]:
    targets = doc.get("targets") or []
    if not targets:
        return ["## Targets", "", "No targets.", ""]
    rows = [[t.get(k) for k in ("name", "kind", "server_version", "url", "status", "reason")] for t in targets]
    header = ["name", "kind", "server version", "url", "status", "reason"]
    return ["## Targets", "", *_table(header, rows), ""]


def _family(fam: m.Family) -> list[str]:
    header = ["case", *(f"{t} / {d}" for t, d in fam.columns)]
    rows = []
    for row in fam.rows:
        cells = [fam.cells.get((row, col)) for col in fam.columns]
        rows.append([fam.row_label(row), *(m.short_text(c) if c else m.NO_CELL for c in cells)])
    lines = [f"## {fam.name}", "", *_table(header, rows), ""]
    details = fam.details()
    if details:
        lines += ["**Details**", ""]
        lines += [f"- {m.detail_line(c)}" for c in details]
        lines.append("")
    return lines


def render_markdown(doc: dict[str, Any]) -> str:
    """The whole report as Markdown: run header, summary, targets, then one matrix per case family."""
    lines = _header(doc) + _targets(doc)
    fams = m.families(doc)
    if not fams:
        lines += ["No results.", ""]
    for fam in fams:
        lines += _family(fam)
    lines += isolation_sections(doc)
    # Scrub the final text too: defence in depth against a secret split across fields we joined.
    return scrub("\n".join(lines).rstrip("\n") + "\n")
