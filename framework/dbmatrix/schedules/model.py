"""A schedule is data, in the spirit of PostgreSQL's isolation tester specs.

Sessions hold named steps (``"r1: select v from {t} where k = 1"``), a permutation string orders them
(``"r1 r2 w1 w2 c1 c2"``). A step's SQL may use ``{t}`` (the cell's table) and ``{<step>}`` (the first value
an earlier step read), so writes are computed by the client from what it read: ``value = {r1} + 1``. A lost
update then shows in the data, not in an inference.

Steps whose SQL is ``begin``, ``commit``, ``rollback`` (``abort``) are transaction control: the executor
opens the transaction through the session at the schedule's isolation level, so the same schedule runs at
every level the engine offers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .. import engines  # noqa: F401  (loads every engine class, so every_engine_codes sees them all)
from ..engines.base import every_engine_codes

CONTROL = {"begin": "begin", "commit": "commit", "rollback": "rollback", "abort": "rollback"}
_STEP = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*:\s*(.+?)\s*$", re.S)
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class Step:
    """One statement of one session; ``control`` is begin/commit/rollback for transaction control."""

    name: str
    session: str
    sql: str

    @property
    def control(self) -> str | None:
        return CONTROL.get(self.sql.strip().lower())

    @property
    def needs(self) -> list[str]:
        """Names of earlier steps whose values this step's SQL uses (``{r1}``), ``t`` excluded."""
        return [n for n in _PLACEHOLDER.findall(self.sql) if n != "t"]

    def render(self, table: str, values: dict[str, Any]) -> str:
        """The SQL with ``{t}`` and ``{step}`` filled in; a missing value is SQL NULL (a read of no row)."""

        def fill(m: re.Match[str]) -> str:
            name = m.group(1)
            if name == "t":
                return table
            value = values.get(name)
            return "NULL" if value is None else str(int(value))

        return _PLACEHOLDER.sub(fill, self.sql)


@dataclass
class Schedule:
    """Setup, sessions of named steps, one permutation, and the final state the schedule must leave.

    ``final`` names the rows a serializable execution leaves (``[(1, 12), (2, 20)]``) when the case asserts on
    data; the executor reads ``final_sql`` after every session has ended.
    """

    setup: list[str]
    sessions: dict[str, list[str]]
    permutation: str
    final_sql: str = "select k, v from {t} order by k"
    teardown: list[str] = field(default_factory=lambda: ["drop table if exists {t}"])

    def __post_init__(self) -> None:
        self.steps: dict[str, Step] = {}
        for session, texts in self.sessions.items():
            for text in texts:
                m = _STEP.match(text)
                if not m:
                    raise ValueError(f"step {text!r} of session {session} is not 'name: sql'")
                name, sql = m.groups()
                if name in self.steps:
                    raise ValueError(f"step name {name!r} is used twice")
                self.steps[name] = Step(name, session, sql)
        order = self.order
        missing = [n for n in order if n not in self.steps]
        if missing:
            raise ValueError(f"permutation names unknown steps: {', '.join(missing)}")
        if len(set(order)) != len(order):
            raise ValueError("permutation issues a step twice")
        for name in order:
            for need in self.steps[name].needs:
                if need not in self.steps:
                    raise ValueError(f"step {name} uses {{{need}}}, which is no step")

    @property
    def order(self) -> list[str]:
        return self.permutation.split()

    def session_of(self, step: str) -> str:
        return self.steps[step].session

    def session_steps(self, session: str) -> list[Step]:
        """The steps of ``session`` in the order the permutation issues them."""
        return [self.steps[n] for n in self.order if self.steps[n].session == session]

    def with_permutation(self, permutation: str) -> Schedule:
        return Schedule(list(self.setup), dict(self.sessions), permutation, self.final_sql, list(self.teardown))


# --- what running a schedule produced ---------------------------------------------------------------------
OK = "ok"
ABORT = "abort"  # the engine refused the step (SQLSTATE / errno in ``code``); the transaction is rolled back
DEADLOCK = "deadlock"  # an abort the engine calls a deadlock (40P01, 1213)
BUSY = "busy"  # SQLite: the database is locked (SQLITE_BUSY*)
SKIPPED = "skipped"  # not issued: its transaction had already aborted
STATUSES = (OK, ABORT, DEADLOCK, BUSY, SKIPPED)
# Refusals by which an engine keeps transactions isolated (each engine names its own: serialization failure,
# deadlock, lock timeout, MariaDB's snapshot write conflict); other failed steps (a duplicate key) are the
# program's own business. An execution does not know its engine, so it counts any engine's.
ISOLATION_CODES = every_engine_codes("isolation_codes")


@dataclass
class StepResult:
    """What one step did. ``blocked`` is True when the engine reported it waiting on a lock; it then completed
    while ``resumed_after`` (the step issued just before it finished) was running, as isolationtester's
    ``<waiting ...>`` / ``<... completed>``."""

    step: str
    session: str
    sql: str
    status: str = OK
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    code: str | None = None
    message: str | None = None
    blocked: bool = False
    resumed_after: str | None = None

    @property
    def value(self) -> Any:
        """The first column of the first row, the value ``{step}`` stands for in later steps."""
        return self.rows[0][0] if self.rows and self.rows[0] else None

    @property
    def failed(self) -> bool:
        return self.status in (ABORT, DEADLOCK, BUSY)

    def describe(self) -> str:
        text = {OK: "ok", SKIPPED: "skipped"}.get(self.status, f"{self.status}:{self.code}")
        if self.status == OK and self.rows:
            text = f"{self.rows!r}" if len(self.rows) != 1 or len(self.rows[0]) != 1 else repr(self.value)
        return f"<waiting> ... {text}" if self.blocked else text


@dataclass
class Execution:
    """The results of one schedule run: every step's result in completion order, and the final rows."""

    schedule: Schedule
    isolation: str | None
    results: list[StepResult] = field(default_factory=list)
    final: list[tuple[Any, ...]] = field(default_factory=list)

    def by_step(self) -> dict[str, StepResult]:
        return {r.step: r for r in self.results}

    def committed(self, session: str) -> bool:
        """The session's commit step ran and succeeded."""
        return any(r.session == session and self.schedule.steps[r.step].control == "commit" and r.status == OK
                   for r in self.results)

    def first_failure(self, session: str) -> StepResult | None:
        return next((r for r in self.results if r.session == session and r.failed), None)

    def mechanism(self) -> str | None:
        """How the engine stopped an anomaly, in the results vocabulary: ``abort:<code>``, ``busy``, ``blocked``.
        Only refusals that serve isolation count (``ISOLATION_CODES``, SQLite busy)."""
        failures = [r for r in self.results if r.status == BUSY or (r.failed and str(r.code) in ISOLATION_CODES)]
        if failures:
            f = failures[0]
            return "busy" if f.status == BUSY else f"abort:{f.code}"
        if any(r.blocked for r in self.results):
            return "blocked"
        return None
