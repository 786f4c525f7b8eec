"""The isolation section of the report: per engine, anomaly x isolation level, the way Hermitage shows it, then
what hypothesis found (schedules.*) with the shrunk counterexample as session columns.

Renders from the results document only (``results.json``), like the rest of report/.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any, NamedTuple
from urllib.parse import quote

ANOMALIES = [  # (case, Hermitage name; its variants by the names of Hermitage's test scripts, after their column)
    ("isolation.dirty_write", "G0"), ("isolation.aborted_read", "G1a"), ("isolation.intermediate_read", "G1b"),
    ("isolation.circular_information_flow", "G1c"), ("isolation.observed_transaction_vanishes", "OTV"),
    ("isolation.predicate_many_preceders", "PMP"), ("isolation.predicate_many_preceders_write", "PMP-write"),
    ("isolation.lost_update", "P4"), ("isolation.read_skew", "G-single"),
    ("isolation.read_skew_dependencies", "G-single-dependencies"), ("isolation.read_skew_write_1", "G-single-write-1"),
    ("isolation.read_skew_write_2", "G-single-write-2"), ("isolation.write_skew", "G2-item"),
    ("isolation.predicate_write_skew", "G2"), ("isolation.read_only_anomaly", "G2-two-edges (read-only)"),
]
TRANSCRIPT = "transcript.sql"  # the artifact in which an isolation cell writes its SQL as run, per session
LEVELS = ["read uncommitted", "read committed", "repeatable read", "serializable", "deferred", "immediate"]
SHOWN = ("allowed", "prevented")
SEARCHED = (*SHOWN, "not-found")  # schedules.*: a bounded search may also have found nothing


def verdict_text(r: dict[str, Any]) -> str:
    if r["outcome"] == "prevented":
        return f"prevented ({r.get('mechanism') or 'snapshot'})"
    if r["outcome"] == "not-found":
        return f"not found in {(r.get('metrics') or {}).get('schedules', '?')} schedules"
    return r["outcome"]


class Linked(NamedTuple):
    """A table cell that links to a file of the run (relative to the run folder, where the reports are written).
    ``in_markdown`` False: only report.html shows the link. report.md is read as a PR comment, where a link into the
    run folder does not open and every character counts, so it links only what a reviewer must look at."""

    text: str
    href: str
    in_markdown: bool


Cell = str | Linked
Block = tuple  # ("h", text) | ("p", text) | ("table", header, rows of Cell) | ("pre", text): Markdown or HTML


def transcript_of(r: dict[str, Any]) -> str | None:
    return next((a for a in r.get("artifacts") or [] if a.rsplit("/", 1)[-1] == TRANSCRIPT), None)


def anomaly_tables(results: list[dict[str, Any]]) -> list[Block]:
    """One table per target: rows are anomalies, columns the levels it ran; a cell shows what most drivers saw
    (linked to that driver's SQL transcript: in report.html always, in report.md where a cell deviates), and the
    last column names each driver whose result differs from that."""
    cells: dict[str, dict[tuple[str, str], dict[str, str]]] = defaultdict(lambda: defaultdict(dict))
    scripts: dict[tuple[str, str, str, str], str] = {}  # (target, case, level, driver) -> transcript path
    deviating: set[tuple[str, str, str]] = set()  # (target, case, level) where a driver's cell deviates
    for r in results:
        level = (r.get("params") or {}).get("isolation")
        if r["case"].startswith("isolation.") and level and r["outcome"] in SHOWN:
            cells[r["target"]][(r["case"], level)][r["driver"]] = verdict_text(r)
            path = transcript_of(r)
            if path:
                scripts[(r["target"], r["case"], level, r["driver"])] = path
            if r.get("verdict") == "deviation":
                deviating.add((r["target"], r["case"], level))
    blocks: list[Block] = []
    for target in sorted(cells):
        grid = cells[target]
        levels = [lv for lv in LEVELS if any(k[1] == lv for k in grid)]
        rows = []
        for case, name in ANOMALIES:
            row: list[Cell] = [name]
            odd: list[str] = []
            for lv in levels:
                by_driver = grid.get((case, lv), {})
                if not by_driver:
                    row.append("")
                    continue
                common, _ = Counter(by_driver.values()).most_common(1)[0]
                path = next((scripts[(target, case, lv, d)] for d, v in sorted(by_driver.items())
                             if v == common and (target, case, lv, d) in scripts), None)
                row.append(Linked(common, path, (target, case, lv) in deviating) if path else common)
                odd += [f"{d} @ {lv}: {v}" for d, v in sorted(by_driver.items()) if v != common]
            rows.append(row + ["; ".join(odd) or "—"])
        given = level_given_row(results, target, levels)
        if given:
            rows.append(given)
        drivers = sorted({d for v in grid.values() for d in v})
        blocks += [("h", target), ("p", f"Drivers: {', '.join(drivers)}."),
                   ("table", ["anomaly", *levels, "drivers that differ"], rows)]
    return blocks


def level_given_row(results: list[dict[str, Any]], target: str, levels: list[str]) -> list[str] | None:
    """``isolation.effective_level`` under the anomalies: per level, how many drivers got the level they asked for;
    a driver that silently runs another level (or refuses it) is named in the last column."""
    by_level: dict[str, dict[str, str]] = defaultdict(dict)
    for r in results:
        level = (r.get("params") or {}).get("isolation")
        if r["case"] == "isolation.effective_level" and r["target"] == target and level in levels:
            by_level[level][r["driver"]] = r["outcome"]
    if not by_level:
        return None
    row = ["level given"]
    odd: dict[str, list[str]] = defaultdict(list)  # "driver: what" -> levels
    for lv in levels:
        got = by_level.get(lv, {})
        other = {d: o for d, o in sorted(got.items()) if o != "supported"}
        row.append(f"as asked ({len(got) - len(other)}/{len(got)} drivers)" if got else "")
        for d, o in other.items():
            odd[f"{d}: {'silently another level' if o == 'differs' else o}"].append(lv)
    return row + ["; ".join(f"{what} at {', '.join(lvs)}" for what, lvs in odd.items()) or "—"]


def schedule_summaries(results: list[dict[str, Any]]) -> list[Block]:
    """Per target x level: schedules tried, schedules/s, time to the first counterexample, the shrunk schedule."""
    found = [r for r in results if r["case"].startswith("schedules.") and r["outcome"] in SEARCHED]
    if not found:
        return []
    rows, scripts = [], []
    for r in sorted(found, key=lambda r: (r["target"], LEVELS.index(r["params"].get("isolation", "serializable"))
                                          if r["params"].get("isolation") in LEVELS else 99)):
        m = r.get("metrics") or {}
        level = r["params"].get("isolation", "")
        first = m.get("first_counterexample_s")
        shrunk = next(iter(r.get("findings") or []), {})
        rows.append([r["target"], level, verdict_text(r), str(m.get("schedules", "")),
                     str(m.get("schedules_per_s", "")), f"{first} s" if first is not None else "—",
                     shrunk.get("program", "—")])
        if shrunk.get("script"):
            scripts += [("p", f"{r['target']} at {level} ({shrunk.get('anomaly', 'anomaly')}):"),
                        ("pre", shrunk["script"].rstrip("\n"))]
    return [("h", "Generated schedules (hypothesis)"),
            ("table", ["target", "level", "outcome", "schedules", "per s", "first counterexample", "shrunk program"],
             rows), *scripts]


INTRO = ("Each cell: allowed (the anomaly happened) or prevented (how): blocked on a lock, aborted with the "
         "engine's code, busy (SQLite), or snapshot (the reads did not see the other transaction). Every cell that "
         f"ran wrote its SQL as run to artifacts/<case>-<target>-<driver>-<id>/{TRANSCRIPT} in the run folder (one "
         "client per session, each statement with what it returned, that it blocked, or the code it failed with); "
         "report.html links every cell to it, report.md the cells that deviate. Generated "
         "schedules say allowed (a counterexample) or not found (none in the search's budget: no proof either way).")
TITLE = "Isolation: anomaly x level per engine (Hermitage style)"


def _blocks(doc: dict[str, Any]) -> list[Block]:
    results = doc.get("results") or []
    body = anomaly_tables(results) + schedule_summaries(results)
    return [("p", INTRO), *body] if body else []


def isolation_sections(doc: dict[str, Any]) -> list[str]:
    """The Markdown lines of the isolation section ([] when the run has no isolation or schedules results)."""
    blocks = _blocks(doc)
    if not blocks:
        return []
    lines = [f"## {TITLE}", ""]
    for b in blocks:
        if b[0] == "h":
            lines += [f"### {b[1]}", ""]
        elif b[0] == "p":
            lines += [b[1], ""]
        elif b[0] == "pre":
            lines += ["```sql", b[1], "```", ""]
        else:
            header, rows = b[1], b[2]
            lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows] + [""]
    return lines


def isolation_html(doc: dict[str, Any]) -> str:
    """The same section as an HTML fragment for report.html (every value escaped)."""
    from html import escape

    blocks = _blocks(doc)
    if not blocks:
        return ""
    out = [f'<div class="isolation-section"><h3>{escape(TITLE)}</h3>']
    for b in blocks:
        if b[0] == "h":
            out.append(f"<h4>{escape(b[1])}</h4>")
        elif b[0] == "p":
            out.append(f"<p>{escape(b[1])}</p>")
        elif b[0] == "pre":
            out.append(f"<pre>{escape(b[1])}</pre>")
        else:
            head = "".join(f"<th>{escape(h)}</th>" for h in b[1])
            body = "".join("<tr>" + "".join(f"<td>{_html_cell(c)}</td>" for c in row) + "</tr>" for row in b[2])
            out.append(f'<table class="isolation"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>')
    return "".join(out) + "</div>"


def _md_cell(c: Cell) -> str:
    if isinstance(c, Linked):
        text = c.text.replace("|", "\\|")
        return f"[{text}]({quote(c.href)})" if c.in_markdown else text
    return c.replace("|", "\\|")


def _html_cell(c: Cell) -> str:
    from html import escape

    if isinstance(c, Linked):
        return f'<a href="{escape(quote(c.href))}">{escape(c.text)}</a>'
    return escape(c)


def markdown_section(family: Any, doc: dict[str, Any]) -> list[str]:
    """The report's hook (report/sections.py): the isolation tables after the family's findings."""
    return isolation_sections(doc)


def html_section(family: Any, doc: dict[str, Any]) -> str:
    return isolation_html(doc)
