"""An executed schedule as the SQL a reader types into two (or three) shells, Hermitage style.

One statement per line in the order it was *issued*, each with a comment naming its session and what it did:

    update test set value = 11 where id = 1;  -- s2 w2: BLOCKS
    commit;  -- s1 c1: ok
    --> s2 w2 returns: ERROR 40001 could not serialize access due to concurrent update

A step that waited on a lock is written where it was issued (``BLOCKS``) and its result where it came back
(``-->``, right after the statement that released it). The executor records results in completion order, so the
issue order is rebuilt from the permutation the same way the executor walks it: a session that waits issues
nothing until its step returns. Values a step computed from an earlier read (``{r1} + 1``) are written as run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .model import OK, SKIPPED, Execution, StepResult

ISSUE, RETURN = "issue", "return"
IN_PLACE = "in place of"  # a rollback that ends a transaction the engine aborted, where the schedule commits
RETURNS = "-->"  # starts a line that gives a waiting step's result; an SQL comment, so the script still runs
HOW_TO = ("-- Open one client per session ({sessions}) on a scratch database (psql, mariadb, sqlite3) and run each\n"
          "-- line in the session its comment names, top to bottom. A statement marked BLOCKS does not return: go\n"
          f"-- on in the other session; '{RETURNS}' marks where it returns and what it returned then.")


@dataclass(frozen=True)
class Event:
    """A step issued (``issue``), or a waiting step coming back (``return``)."""

    kind: str
    result: StepResult


def timeline(execution: Execution) -> list[Event]:
    """The execution's steps in issue order, with each waiting step's return placed after the step that released
    it (``resumed_after``), or where every session waited (the engine ended the wait itself: a deadlock victim, a
    lock timeout). Steps that never ran (a harness failure) are left out."""
    schedule = execution.schedule
    results = execution.by_step()
    pos = {r.step: i for i, r in enumerate(execution.results)}
    todo = [n for n in schedule.order if n in results]
    pending: dict[str, StepResult] = {}
    events: list[Event] = []

    def back(r: StepResult) -> None:
        events.append(Event(RETURN, r))
        del pending[r.session]

    while todo or pending:
        name = next((n for n in todo if schedule.session_of(n) not in pending), None)
        if name is None:  # every remaining step waits for its session: the first to complete comes back
            back(min(pending.values(), key=lambda r: pos[r.step]))
            continue
        # a wait the engine ended on its own came back before this step was issued if it completed before it
        early = [r for r in pending.values() if r.resumed_after is None and not results[name].blocked
                 and pos[r.step] < pos[name]]
        if early:
            for r in sorted(early, key=lambda r: pos[r.step]):
                back(r)
            continue
        todo.remove(name)
        r = results[name]
        events.append(Event(ISSUE, r))
        if r.blocked:
            pending[r.session] = r
        for waiting in sorted(pending.values(), key=lambda w: pos[w.step]):
            if waiting.resumed_after == name:
                back(waiting)
    return events


def outcome_text(r: StepResult) -> str:
    """What a completed step returned: its value or rows, ``ok``, ``no rows``, or ``ERROR <code> <message>``."""
    if r.status != OK:
        return f"ERROR {r.code} {(r.message or '').splitlines()[0] if r.message else ''}".rstrip()
    if not r.rows:
        return "no rows" if r.sql.lstrip().lower().startswith(("select", "with")) else "ok"
    if len(r.rows) == 1 and len(r.rows[0]) == 1:
        return str(r.value)
    return ", ".join(row_text(row) for row in r.rows)


def row_text(row: Sequence[object]) -> str:
    return "(" + ", ".join("NULL" if v is None else str(v) for v in row) + ")"


def session_transcript(execution: Execution, *, table: str, begin: Mapping[str, Sequence[str]],
                       header: Sequence[str] = (), notes: Sequence[str] = (), setup: Sequence[str] | None = None
                       ) -> str:
    """The execution as a script for one shell per session.

    ``begin`` maps each session to the statements that open its transaction at the run's level (the engine's
    ``begin_statements``); ``header`` lines open the script (what ran where, the outcome); ``notes`` are extra
    instructions for the shells (e.g. SQLite's busy timeout); ``setup`` defaults to the schedule's."""
    schedule = execution.schedule
    values = {r.step: r.value for r in execution.results if r.status == OK}
    lines = [f"-- {h}" for h in header]
    lines += [HOW_TO.format(sessions=", ".join(schedule.sessions)), *(f"-- {n}" for n in notes), "",
              "-- setup (any session)"]
    lines += [f"{sql.replace('{t}', table)};" for sql in (schedule.setup if setup is None else setup)]
    lines.append("")
    for event in timeline(execution):
        r = event.result
        label = f"{r.session} {r.step}"
        if event.kind == RETURN:
            lines.append(f"{RETURNS} {label} returns: {outcome_text(r)}")
            continue
        step = schedule.steps[r.step]
        if r.status == SKIPPED:
            why = r.message or "its transaction had aborted"
            if step.control:  # the executor ends the aborted transaction instead (see executor._Run.issue)
                lines.append(f"rollback;  -- {label}: {IN_PLACE} {step.control} ({why})")
            else:
                lines.append(f"-- (not run) {step.render(table, values)};  -- {label}: {why}")
            continue
        if step.control == "begin":
            sql = "; ".join(begin.get(r.session) or ["begin"])
        else:
            sql = step.control or step.render(table, values)
        lines.append(f"{sql};  -- {label}: " + ("BLOCKS" if r.blocked else outcome_text(r)))
    final = ", ".join(row_text(row) for row in execution.final) or "no rows"
    lines += ["", f"{schedule.final_sql.replace('{t}', table)};  -- any session, at the end: {final}"]
    lines += [f"{sql.replace('{t}', table)};  -- teardown" for sql in schedule.teardown]
    return "\n".join(lines) + "\n"
