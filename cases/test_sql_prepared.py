"""sql.prepared_statements: when the same statement runs many times, does the driver prepare it on the server?

One parameterised SELECT runs 20 times through the driver's own call (``hot_path``: what application code calls,
with nothing of dbmatrix's adapter around it). After every execution the same session looks at the server's own
record of its prepared statements:
``pg_prepared_statements`` (PostgreSQL: each named statement and how often it ran) or the session counters
``Com_stmt_prepare`` / ``Com_stmt_execute`` (MySQL, MariaDB). So the cell says from which execution on the driver
prepares (psycopg: the 6th, ``prepare_threshold=5``; asyncpg's statement cache and SQLAlchemy's asyncpg dialect: the
first) and how many server statements it made, or that no prepared statement is ever left on the server (client-side
interpolation: psycopg2, PyMySQL, mysqlclient, asyncmy). Every execution's rows are checked.

``supported`` when the driver prepares server-side, ``differs`` when it never does (a valid finding: it then also
never breaks behind a pooler); ``unsupported`` when an execution fails, with the error.

A second session of the same driver holds a transaction open during every other execution. On a server that is
inert; behind PgBouncer in transaction pooling it pins the server connection the first session just used, so the
next execution lands on another one, as it does in any application with more than one client. That is where a
statement prepared on one server connection is missing (26000) or already exists under the same name (42P05).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from rowcheck import same_value

from dbmatrix.casekit import requires
from dbmatrix.cell import Cell, describe_error
from dbmatrix.drivers.base import Session, driver_finding
from dbmatrix.errors import DriverError

RUNS = 20
# PgBouncer runs no reset query in transaction pooling, so pooled server connections keep the statements of
# earlier clients: each of the two server connections the case alternates between starts clean, so the outcome
# does not depend on which cases ran before. On a plain server this clears the session's own (fresh) backend.
CLEAN = {"postgresql": "DEALLOCATE ALL", "cockroachdb": "DEALLOCATE ALL"}


class PgStatements:
    """``pg_prepared_statements`` (PostgreSQL >= 14 for the run counters) for the statements holding ``marker``."""

    def __init__(self, s: Session, marker: str):
        self.s, self.marker = s, marker
        self.runs: dict[str, int] = {}  # statement name -> executions, for every name seen so far

    def after_execution(self, step: int) -> tuple[bool, int]:
        """Did the execution just made run a prepared statement, and how many new ones appeared?"""
        # the alias makes each observation's text unique: it must never become a prepared statement itself
        rows = self.s.execute(
            f"SELECT name, generic_plans + custom_plans AS runs, {step} AS obs_step FROM pg_prepared_statements"
            " WHERE strpos(statement, :marker) > 0",
            {"marker": self.marker},
        ).rows
        now = {str(name): int(runs) for name, runs, _ in rows}
        ran = any(runs > self.runs.get(name, 0) for name, runs in now.items())
        new = len(now.keys() - self.runs.keys())
        self.runs.update(now)
        return ran, new


class MySQLStatements:
    """The session's ``Com_stmt_prepare`` / ``Com_stmt_execute`` counters (binary-protocol prepare and execute)."""

    def __init__(self, s: Session, marker: str):
        self.s = s
        self.prepares, self.executes = self._counters()

    def _counters(self) -> tuple[int, int]:
        rows = self.s.execute("SHOW SESSION STATUS LIKE 'Com_stmt_%'").rows
        values = {str(name).lower(): int(value) for name, value in rows}
        return values["com_stmt_prepare"], values["com_stmt_execute"]

    def after_execution(self, step: int) -> tuple[bool, int]:
        prepares, executes = self._counters()
        ran, new = executes > self.executes, prepares - self.prepares
        self.prepares, self.executes = prepares, executes
        return ran, new


OBSERVERS = {"postgresql": PgStatements, "cockroachdb": PgStatements, "mysql": MySQLStatements}


@dataclass
class ExecutionPath:
    """What one way of executing the statement did on the server."""

    name: str
    first_prepared: int | None = None  # the first execution (1-based) that ran a server-side prepared statement
    prepared_runs: int = 0  # executions that ran one
    statements: int = 0  # server-side statements created for it
    wrong: list[str] = field(default_factory=list)

    def describe(self) -> str:
        if self.first_prepared is None:
            # what the server shows cannot tell client-side interpolation, unnamed statements, and named ones
            # closed before the next statement (asyncpg's prepare() once the statement object is garbage) apart
            return f"{self.name}: no prepared statement for it on the server after any execution"
        return (
            f"{self.name}: prepares server-side from execution {self.first_prepared} on"
            f" ({self.statements} server statement(s); {self.prepared_runs} of {RUNS} executions ran one)"
        )


class Failed(Exception):
    def __init__(self, path: str, step: int, error: DriverError):
        super().__init__(f"{path} execution {step} of {RUNS}: {describe_error(error)}")
        self.error = error


def _normalised(s: Session, exc: Exception) -> DriverError:
    """hot_path raises the driver's own exceptions; anything else is a bug of ours and propagates (``error``)."""
    err = driver_finding(s.adapter, exc)
    if err is None:
        raise exc
    return err


def _run(cell: Cell, a: Session, b: Session, path: ExecutionPath, sql: str, marker: str) -> None:
    """Execute ``sql`` RUNS times on ``a`` (``b`` pinning a server connection every other time), observing each."""
    observer = OBSERVERS[cell.kind](a, marker)
    hot = a.hot_path(sql, {"x": 41})
    for step in range(1, RUNS + 1):
        pin = step % 2 == 0
        x = 41
        try:
            if pin:
                b.begin()
                b.execute(f"SELECT {step} AS pin_step")  # a new text each time: b itself never prepares anything
            try:
                rows = [tuple(r) for r in hot()]
            except DriverError:
                raise
            except Exception as exc:
                raise _normalised(a, exc) from None
            ran, new = observer.after_execution(step)  # still pinned: the same server connection as the execution
            if pin:
                b.rollback()
        except DriverError as exc:
            if b.in_transaction:
                b.rollback()
            raise Failed(path.name, step, exc) from None
        if not same_value([tuple(r) for r in rows], [(x + 1, marker)]):
            path.wrong.append(f"execution {step} gave {rows!r}, expected {[(x + 1, marker)]!r}")
        path.statements += new
        if ran:
            path.prepared_runs += 1
            if path.first_prepared is None:
                path.first_prepared = step


def _clean(cell: Cell, a: Session, b: Session) -> None:
    """Clear the prepared statements of the two server connections the executions will alternate between."""
    sql = CLEAN.get(cell.kind)
    if sql is None:
        return
    b.begin()
    b.execute(sql)  # b holds the server connection at the head of the pool...
    try:
        a.execute(sql)  # ...so a cleans the next one: the two the executions below alternate between
    finally:
        b.rollback()


@requires("server_prepared_statements")
def test_prepared_statements(cell):
    """The same parameterised SELECT run 20 times: the server's own record says whether and when it was prepared."""
    if cell.kind not in OBSERVERS:
        pytest.skip(f"{cell.kind} is in-process: there is no server-side statement to observe")
    a, b = cell.connect(), cell.connect()
    _clean(cell, a, b)
    marker = cell.table("probe")
    paths = []
    try:
        # Only the driver's own call (hot_path: asyncpg's conn.fetch, psycopg's cursor.execute, SQLAlchemy's
        # Connection.execute): the cell describes the driver as applications use it, not dbmatrix's adapter.
        for name in ("the driver's own call",):
            path = ExecutionPath(name)
            path_marker = f"{marker}_{len(paths)}"
            _run(cell, a, b, path, f"SELECT :x + 1 AS v, '{path_marker}' AS m", path_marker)
            paths.append(path)
    except Failed as exc:
        done = "; ".join(p.describe() for p in paths)
        cell.unsupported(f"{exc}" + (f" (before that, {done})" if done else ""), mechanism=_mechanism(exc.error))
        return
    metrics: dict[str, float] = {}
    for path in paths:
        metrics["prepared_from"] = path.first_prepared or 0
        metrics["statements"] = path.statements
        metrics["prepared_runs"] = path.prepared_runs
    detail = "; ".join(p.describe() for p in paths)
    wrong = [w for p in paths for w in p.wrong]
    if wrong:
        cell.differs(f"wrong rows: {'; '.join(wrong[:3])}; {detail}", metrics=metrics)
    elif any(p.first_prepared for p in paths):
        cell.supported(detail, metrics=metrics)
    else:
        cell.differs(detail, metrics=metrics)


def _mechanism(error: DriverError) -> str:
    return f"error:{error.code}" if error.code else f"error:{error.cls}"
