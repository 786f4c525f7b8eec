"""The isolation section of the report: per engine, anomaly x isolation level, the way Hermitage shows it, then
what hypothesis found (schedules.*) with the shrunk counterexample as session columns.

Renders from the results document only (``results.json``), like the rest of report/.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

ANOMALIES = [  # (case, Hermitage name)
    ("isolation.dirty_write", "G0"), ("isolation.aborted_read", "G1a"), ("isolation.intermediate_read", "G1b"),
    ("isolation.circular_information_flow", "G1c"), ("isolation.observed_transaction_vanishes", "OTV"),
    ("isolation.predicate_many_preceders", "PMP"), ("isolation.lost_update", "P4"),
    ("isolation.read_skew", "G-single"), ("isolation.write_skew", "G2-item"),
    ("isolation.predicate_write_skew", "G2"),
]
LEVELS = ["read uncommitted", "read committed", "repeatable read", "serializable", "deferred", "immediate"]
SHOWN = ("allowed", "prevented")


def verdict_text(r: dict[str, Any]) -> str:
    if r["outcome"] == "prevented":
        return f"prevented ({r.get('mechanism') or 'snapshot'})"
    return r["outcome"]


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return out + ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]


def anomaly_tables(results: list[dict[str, Any]]) -> list[str]:
    """One table per target: rows are anomalies, columns the levels it ran; a cell shows what most drivers saw,
    and the last column names each driver whose result differs from that."""
    cells: dict[str, dict[tuple[str, str], dict[str, str]]] = defaultdict(lambda: defaultdict(dict))
    for r in results:
        level = (r.get("params") or {}).get("isolation")
        if r["case"].startswith("isolation.") and level and r["outcome"] in SHOWN:
            cells[r["target"]][(r["case"], level)][r["driver"]] = verdict_text(r)
    lines: list[str] = []
    for target in sorted(cells):
        grid = cells[target]
        levels = [lv for lv in LEVELS if any(k[1] == lv for k in grid)]
        rows = []
        for case, name in ANOMALIES:
            row, odd = [name], []
            for lv in levels:
                by_driver = grid.get((case, lv), {})
                if not by_driver:
                    row.append("")
                    continue
                common, _ = Counter(by_driver.values()).most_common(1)[0]
                row.append(common)
                odd += [f"{d} @ {lv}: {v}" for d, v in sorted(by_driver.items()) if v != common]
            rows.append(row + ["; ".join(odd) or "—"])
        drivers = sorted({d for v in grid.values() for d in v})
        lines += [f"### {target}", "", f"Drivers: {', '.join(drivers)}.", "",
                  *_table(["anomaly", *levels, "drivers that differ"], rows), ""]
    return lines


def schedule_summaries(results: list[dict[str, Any]]) -> list[str]:
    """Per target x level: schedules tried, schedules/s, time to the first counterexample, the shrunk schedule."""
    found = [r for r in results if r["case"].startswith("schedules.") and r["outcome"] in SHOWN]
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
            scripts += [f"**{r['target']} at {level}** ({shrunk.get('anomaly', 'anomaly')}):", "", "```sql",
                        shrunk["script"].rstrip("\n"), "```", ""]
    return ["### Generated schedules (hypothesis)", "",
            *_table(["target", "level", "outcome", "schedules", "per s", "first counterexample", "shrunk program"],
                    rows), "", *scripts]


def isolation_sections(doc: dict[str, Any]) -> list[str]:
    """The Markdown lines of the isolation section ([] when the run has no isolation or schedules results)."""
    results = doc.get("results") or []
    body = anomaly_tables(results) + schedule_summaries(results)
    if not body:
        return []
    return ["## Isolation: anomaly x level per engine (Hermitage style)", "",
            "Each cell: `allowed` (the anomaly happened) or `prevented (how)`: blocked on a lock, aborted with the "
            "engine's code, busy (SQLite), or snapshot (the reads did not see the other transaction).", "",
            *body]


def markdown_section(family: Any, doc: dict[str, Any]) -> list[str]:
    """The report's hook (report/sections.py): the isolation tables after the family's findings."""
    return isolation_sections(doc)
