"""Render a results document as Markdown fit for a pull-request comment.

Order: summary and why the run exits as it does, what needs attention, findings per family (one line per reason
with the cells it covers and why it is expected), then narrow tables (one column per target, the drivers' outcomes
counted inside), targets and run details. The full per-driver matrix is in report.html.

GitHub refuses a comment over 65,536 characters, so the text stays within ``MAX_CHARS``: when it would not, the
least urgent parts (the narrow tables, then the findings beyond the first few of each family, then the family
sections' own tables, then the cell lists of findings) give way to a line pointing at report.html.
Combinations that cannot exist (an isolation level an engine does not have) are counted once, not listed.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import PurePosixPath
from typing import Any

from ..redaction import scrub
from . import _model as m
from .isolation import TRANSCRIPT
from .sections import markdown_lines, summary_markdown_lines

REASON_WIDTH = 120  # a finding's reason is cut here; the full text is in report.html and results.json
WRAP = 110  # continuation lines of a finding's cell list
LINE_WIDTH = 170
ATTENTION_LIMIT = 30
MAX_CHARS = 60_000  # GitHub's limit for a comment is 65,536; the rest stays in report.html


def _cell(value: object) -> str:
    # A raw "|" would split the table cell and a newline would end the row.
    return " <br> ".join(m.text(value).replace("|", "\\|").splitlines())


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines


def _wrap(words: str, indent: str, width: int = WRAP) -> list[str]:
    """Split a long cell list on spaces into indented continuation lines of one list item."""
    lines, current = [], ""
    for word in words.split(" "):
        if current and len(indent) + len(current) + 1 + len(word) > width:
            lines.append(indent + current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    if current:
        lines.append(indent + current)
    return lines


def _header(doc: dict[str, Any]) -> list[str]:
    run = doc.get("run") or {}
    counts, total, deviations = m.summary(doc)
    ok = [t for t in doc.get("targets") or [] if isinstance(t, dict) and t.get("status") == "ok"]
    took = m.duration_text(doc)
    lines = [f"# dbmatrix report — run `{m.text(run.get('id'))}`", ""]
    head = f"**{m.plural(total, 'cell')}** on {m.plural(len(ok), 'target')}"
    head += f" in {took}" if took else ""
    head += ": " + (", ".join(f"{o} {n}" for o, n in counts) or "no cells")
    head += f"; **deviations: {deviations}**" if deviations else "; deviations: 0"
    lines.append(head + ".")
    lines += ["", _exit_line(doc)]
    if not run.get("complete"):
        lines += ["", "**Incomplete run — partial results** (the run was interrupted or failed before the end)."]
    for t in m.skipped_targets(doc):
        lines += ["", f"Skipped target **{m.text(t.get('name'))}**: {m.one_line(t.get('reason'), REASON_WIDTH)}"]
    return [*lines, ""]


def _exit_line(doc: dict[str, Any]) -> str:
    """Why ``dbmatrix run`` exited 0 or 1: only deviations from the expectations and harness errors count."""
    results = doc.get("results") or []
    bad = [c for c in results if m.needs_attention(c)]
    if bad:
        errors = sum(1 for c in bad if c.get("outcome") == m.ERROR)
        what = m.plural(len(bad) - errors, "deviation")
        what += f" and {m.plural(errors, 'harness error')}" if errors else ""
        return f"**Exit status 1:** {what} (listed first, under *Needs attention*)."
    notable = Counter(str(c.get("outcome")) for c in results
                      if c.get("outcome") not in m.QUIET_OUTCOMES and c.get("outcome") != "skipped"
                      and not m.is_impossible(c))
    line = "**Exit status 0:** every cell is as expected."
    if notable:
        ordered = [f"{o} ({n})" for o, n in sorted(notable.items(), key=lambda kv: (-kv[1], kv[0]))]
        counted = ", ".join(ordered[:-1]) + " and " + ordered[-1] if len(ordered) > 1 else ordered[0]
        line += (f"\nThe {counted} cells are outcomes the expectations predict"
                 "\nfor those engines and drivers (each finding below says why); only a deviation from an expectation"
                 " or a harness error fails a run.")
    return line


def _attention(doc: dict[str, Any]) -> list[str]:
    cells = [c for c in doc.get("results") or [] if m.needs_attention(c)]
    if not cells:
        return []
    lines = ["## Needs attention", "", "Deviations from `cases/expectations` and harness errors:", ""]
    lines += [f"- {m.one_line(m.detail_line(c), 2 * REASON_WIDTH)}" for c in cells[:ATTENTION_LIMIT]]
    if len(cells) > ATTENTION_LIMIT:
        lines.append(f"- … and {len(cells) - ATTENTION_LIMIT} more (see report.html)")
    return [*lines, ""]


def _finding_lines(fam: m.Family, finding: m.Finding, where: bool = True) -> list[str]:
    n = len(finding.cells)
    head = f"- **{finding.outcome}**"
    if finding.mechanism:
        head += f" `{m.one_line(finding.mechanism, 40)}`"
    head += f" ×{n}"
    if finding.deviations:
        head += f" ⚠ {m.plural(finding.deviations, 'deviation')}"
    # the reason gets what is left of a line of LINE_WIDTH after the head (outcome, mechanism, count)
    reason = m.one_line(finding.reason, max(LINE_WIDTH - len(head) - 3, 60)).replace("|", "\\|")
    lines = [f"{head} — {reason}" if reason else head]
    if where:
        lines += _wrap(fam.where(finding.cells), "  ")
    why = finding.why
    if why:
        more = f" (+{m.plural(len(why) - 1, 'other reason')} in report.html)" if len(why) > 1 else ""
        because = m.one_line(why[0], 2 * REASON_WIDTH).replace("|", "\\|")
        lines += _wrap(f"*Expected because:* {because}{more}", "  ")
    return lines


def _cell_findings(fam: m.Family) -> list[str]:
    """``findings`` dicts that cells reported (e.g. locks a migration took), as one small table per family."""
    rows = [(c, f) for c in fam.details() for f in c.get("findings") or [] if isinstance(f, dict)
            and (c.get("outcome") not in m.QUIET_OUTCOMES or m.is_deviation(c))]
    if not rows:
        return []
    keys = list(dict.fromkeys(k for _, f in rows for k in f))[:6]
    body = [[m.one_line(c.get("case"), 40), m.cell_place(c.get("target"), c.get("driver")),
             *(m.one_line(_value(f.get(k)), 40) for k in keys)] for c, f in rows[:20]]
    lines = ["", f"Reported by the cells ({len(rows)}):", "", *_table(["case", "cell", *keys], body)]
    if len(rows) > 20:
        lines.append(f"\n… and {len(rows) - 20} more in report.html")
    return lines


def _value(v: object) -> str:
    return v if isinstance(v, str) else json.dumps(v, default=str)


def _artifacts(fam: m.Family) -> list[str]:
    # every isolation cell writes a transcript; report.html links each, here they would crowd out the rest
    paths = [(c, p) for r in fam.rows for c in fam.row_cells(r) for p in c.get("artifacts") or []
             if PurePosixPath(str(p)).name != TRANSCRIPT]
    if not paths:
        return []
    return ["", "Artifacts:", "", *(f"- `{m.text(p)}` ({m.text(c.get('case'))} on {m.text(c.get('target'))})"
                                    for c, p in paths[:20])]


def _findings(fams: list[m.Family], doc: dict[str, Any], *, extras: bool = True, where: bool = True,
              per_family: int | None = None) -> list[str]:
    lines = ["## Findings", ""]
    if not fams:
        return [*lines, "No results.", ""]
    impossible = m.impossible_cells(doc)
    if impossible:
        lines += [f"Not listed: {m.plural(len(impossible), 'cell')} of combinations that cannot exist (an isolation"
                  " level an engine does not have, refused as expected); report.html shows them.", ""]
    for fam in fams:
        # a cell that works as expected is no finding here, even with structured findings (report.html lists it)
        found = [f for f in fam.findings() if f.outcome not in m.QUIET_OUTCOMES or f.deviations]
        rows = [r for r in fam.rows if not fam.is_impossible(r)]
        uniform = sum(1 for r in rows if fam.is_uniform(r))
        lines.append(f"### {fam.name}")
        lines.append("")
        stats = (f"{m.plural(len(rows), 'row')} × {m.plural(len(fam.columns), 'column')}; "
                 f"{uniform} alike in every column")
        if not found:
            lines.append(f"Nothing differs: {stats}.")
        else:
            lines += [f"{m.plural(len(found), 'reason')} ({stats}):", ""]
            for finding in found[:per_family]:  # the ones needing attention come first
                lines += _finding_lines(fam, finding, where)
            if per_family is not None and len(found) > per_family:
                lines.append(f"- … and {m.plural(len(found) - per_family, 'more reason')} in report.html")
        lines += _cell_findings(fam) + _artifacts(fam)
        extra = markdown_lines(fam, doc) if extras else summary_markdown_lines(fam, doc)  # (the bench's ladder)
        if extra:
            lines += ["", *extra]
        lines.append("")
    return lines


def _agreement(cells: list[dict[str, Any]]) -> str:
    """One table cell for a target: its drivers' outcomes counted, deviations marked."""
    if not cells:
        return m.NO_CELL
    cells = [c for c in cells if not m.is_impossible(c)]
    if not cells:
        return "n/a"
    counts = Counter(str(c.get("outcome")) for c in cells)
    dev = sum(1 for c in cells if m.is_deviation(c))
    if len(counts) == 1:
        out = next(iter(counts))
    else:
        out = ", ".join(f"{o} {n}" for o, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    return f"{out} ⚠{dev}" if dev else out


def _narrow_tables(fams: list[m.Family]) -> list[str]:
    lines = ["## Matrix by target", "",
             "One column per target; where its drivers disagree the outcomes are counted. "
             "Every driver's cell is in report.html.", ""]
    for fam in fams:
        targets = fam.targets()
        rows = []
        for row in fam.rows:
            if fam.is_impossible(row):
                continue
            per_target = [[c for c in fam.row_cells(row) if c.get("target") == t] for t in targets]
            rows.append([fam.row_label(row), *(_agreement(cs) for cs in per_target)])
        header = ["case", *(f"{t} ({len(fam.drivers_of(t))})" for t in targets)]
        lines += [f"### {fam.name}", "", *_table(header, rows), ""]
    return lines


def _targets(doc: dict[str, Any]) -> list[str]:
    targets = [t for t in doc.get("targets") or [] if isinstance(t, dict)]
    if not targets:
        return ["## Targets", "", "No targets.", ""]
    rows = [[t.get("name"), t.get("kind"), t.get("server_version"), m.target_properties(t), t.get("url"),
             t.get("status"), m.one_line(t.get("reason"), REASON_WIDTH)] for t in targets]
    header = ["name", "kind", "server version", "properties", "url", "status", "reason"]
    return ["## Targets", "", *_table(header, rows), ""]


def _run(doc: dict[str, Any]) -> list[str]:
    run = doc.get("run") or {}
    complete = "yes" if run.get("complete") else "**no — partial results**"
    return [
        "## Run",
        "",
        f"- Started: {m.text(run.get('started')) or '?'}",
        f"- Finished: {m.text(run.get('finished')) or '?'}",
        f"- Complete: {complete}",
        f"- Python: {m.text(run.get('python')) or '?'}",
        f"- dbmatrix: {m.text(run.get('dbmatrix')) or '?'}",
        *_libraries(doc),
        "",
    ]


def _libraries(doc: dict[str, Any]) -> list[str]:
    libs = m.libraries_text(doc)
    if not libs:
        return []
    lines = _wrap(f"Libraries: {libs}", "  ")
    return [f"- {lines[0].strip()}", *lines[1:]]


def render_markdown(doc: dict[str, Any], max_chars: int = MAX_CHARS) -> str:
    """The whole report as Markdown: summary, attention, findings, narrow tables, targets, run; within
    ``max_chars`` by leaving out, in this order, the narrow tables, the findings beyond the first 30, 20, 10 of
    each family (the ones needing attention come first), the families' own sections and the cell lists of
    findings (each time saying so)."""
    fams = m.families(doc)
    text = ""
    shorter = [(True, True, True, None), *((False, True, True, n) for n in (None, 30, 20, 10)),
               (False, False, True, 10), *((False, False, False, n) for n in (10, 5, 2, 0))]
    for tables, extras, where, per_family in shorter:
        lines = _header(doc) + _attention(doc) + _findings(fams, doc, extras=extras, where=where,
                                                            per_family=per_family)
        if fams:
            lines += _narrow_tables(fams) if tables else _left_out(extras, where, per_family)
        lines += _targets(doc) + _run(doc)
        # Scrub the final text too: defence in depth against a secret split across fields we joined.
        text = scrub("\n".join(lines).rstrip("\n") + "\n", known=False)
        if len(text) <= max_chars:
            break
    return text


def _left_out(extras: bool, where: bool, per_family: int | None) -> list[str]:
    parts = ["the matrix by target"] + ([] if extras else ["the families' own tables"]) + \
        ([] if where else ["which cells each finding covers"]) + \
        ([] if per_family is None else [f"findings beyond the first {per_family} of each family"])
    return ["## Left out to fit a pull-request comment", "",
            f"{', '.join(parts).capitalize()}: see report.html (every cell, filterable) and results.json.", ""]
