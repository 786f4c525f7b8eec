"""A schedule and what it did as a replayable SQL script, one column per session (Hermitage style).

Open one client per column, set the isolation level as the header says, and run the lines top to bottom,
each in its own column's client; the comment after a statement is what dbmatrix saw it do.
"""

from __future__ import annotations

from typing import Any

from .model import Execution

COLUMN = 46


def hermitage_sql(execution: Execution, table: str = "t", title: str = "", begin: dict[str, list[str]] | None = None
                  ) -> str:
    """The execution as a script; ``begin`` gives each session's own BEGIN statements (default ``begin;``)."""
    schedule = execution.schedule
    names = list(schedule.sessions)
    values: dict[str, Any] = {r.step: r.value for r in execution.results}
    lines = [f"-- {title}" if title else "-- dbmatrix schedule",
             f"-- isolation: {execution.isolation or 'default'}",
             "-- one client per column; run each line in its column's client, top to bottom",
             "-- setup (any client):"]
    lines += [f"{sql.replace('{t}', table)};" for sql in schedule.setup]
    header = "".join(f"-- {n:<{COLUMN - 3}}" for n in names)
    lines += ["", header.rstrip()]
    blocked_at: dict[str, int] = {}
    for r in execution.results:
        step = schedule.steps[r.step]
        if step.control == "begin" and begin and r.session in begin:
            statements = begin[r.session]
        elif step.control:
            statements = [step.control]
        else:
            statements = [step.render(table, values)]
        col = names.index(r.session)
        for sql in statements:
            pad = " " * (COLUMN * col)
            note = r.describe() if sql is statements[-1] else ""
            if r.blocked and r.resumed_after:
                note = f"{note}  (waited; completed after {r.resumed_after})"
            lines.append(f"{pad}{sql};" + (f"  -- {r.step}: {note}" if note else f"  -- {r.step}"))
        if r.blocked:
            blocked_at[r.step] = len(lines)
    rows = ", ".join(f"({', '.join(map(str, row))})" for row in execution.final)
    lines += ["", f"-- final state: {rows or '(no rows)'}"]
    return "\n".join(lines) + "\n"
