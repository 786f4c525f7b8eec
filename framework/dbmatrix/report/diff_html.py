"""``dbmatrix diff --html``: the comparison of two runs as one self-contained page (no network references)."""

from __future__ import annotations

from html import escape

from ..redaction import scrub
from . import _model as m
from .diff import LABELS, DiffReport, _breakdown, _run_text

_CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:1em 1.5em;color:#222}
h1{font-size:1.3em}h2{font-size:1.1em;margin-top:1.2em}
table{border-collapse:collapse}th,td{border:1px solid #ddd;padding:2px 7px;text-align:left;vertical-align:top}
thead th{background:#f3f3f3}.warn{background:#fff3c4;padding:4px 8px;border-left:4px solid #c90}
.worse{color:#a00000}.better{color:#1d6b1d}.changed{color:#555}.new{color:#8a5a00}
td.detail{max-width:60em;word-break:break-word;font-size:12px;color:#444}
.summary{font-weight:600}
"""


def _e(value: object) -> str:
    return escape(m.text(value), quote=True)


def render_diff_html(report: DiffReport) -> str:
    parts = [
        f"<h1>dbmatrix diff</h1><p>old {_e(_run_text(report.old_run, report.old_cells))} → "
        f"new {_e(_run_text(report.new_run, report.new_cells))}</p>",
        f'<p class="summary">{_e(report.summary_line())}</p>',
    ]
    parts += [f'<p class="warn">⚠ {_e(w)}</p>' for w in report.warnings]
    for label in LABELS:
        changes = [c for c in report.changes if c.label == label]
        if not changes:
            continue
        rows = "".join(
            f'<tr class="{label}"><td>{_e(c.case)}</td><td>{_e(m.params_text(c.params))}</td><td>{_e(c.target)}</td>'
            f"<td>{_e(m.driver_label(c.driver))}</td><td>{_e(c.old_outcome or '(none)')}</td>"
            f"<td>{_e(c.new_outcome or '(none)')}</td><td>{_e(c.old_verdict)} → {_e(c.new_verdict)}</td>"
            f'<td class="detail">{_e(m.one_line(c.detail, 400))}</td></tr>'
            for c in changes
        )
        head = "".join(f"<th>{h}</th>" for h in
                       ("case", "params", "target", "driver", "old", "new", "verdict", "new detail"))
        parts.append(f'<h2 class="{label}">{label} ({len(changes)})</h2>'
                     f'<table data-label="{label}"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>')
    if report.only_new:
        parts.append(f'<p class="added">{m.plural(len(report.only_new), "cell")} only in the new run '
                     f"({_e(_breakdown(report.only_new))})</p>")
    if report.only_old:
        parts.append(f'<p class="missing">{m.plural(len(report.only_old), "cell")} only in the old run '
                     f"({_e(_breakdown(report.only_old))})</p>")
    if not report.changes:
        parts.append("<p>No cell changed its outcome or verdict.</p>")
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>dbmatrix diff</title><style>{_CSS}</style></head><body>{''.join(parts)}</body></html>\n"
    )
    return scrub(page, known=False)
