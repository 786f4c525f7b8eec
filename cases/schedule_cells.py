"""What the isolation, schedules and lock cases share: skipping transaction-pooled targets, opening a level, and
running a lock spec (``run_spec``)."""

from __future__ import annotations

import pytest

from dbmatrix.cell import Cell
from dbmatrix.drivers.base import Session
from dbmatrix.engines import engine_for
from dbmatrix.errors import DriverError
from dbmatrix.schedules.executor import ScheduleExecutor
from dbmatrix.schedules.model import Execution, Schedule


def skip_transaction_pooled(cell: Cell) -> None:
    """Schedules need each session on one server connection throughout: the lock observer follows the server's
    id of each session, and drivers' auto-prepared statements must stay where they were prepared. A transaction
    pooler (PgBouncer) lends each transaction another server connection, so these cases do not apply there
    (pooling.* shows what such a pooler does to a session)."""
    if cell.target.pooler == "transaction":
        pytest.skip(f"target {cell.target.name} pools transactions: a schedule's session has no fixed server "
                    "connection to observe")


def level_refusal(session: Session, isolation: str) -> DriverError | None:
    """The error with which the driver stack refuses to open a transaction at ``isolation`` (None: it opens).

    SQLAlchemy refuses some levels itself (its asyncpg dialect has no READ UNCOMMITTED) with its own exception:
    that is a finding about the driver stack, named by its class."""
    try:
        session.begin(isolation)
    except DriverError as exc:
        return exc
    except Exception as exc:
        if not type(exc).__module__.startswith("sqlalchemy"):
            raise
        return DriverError(None, type(exc).__name__, str(exc).strip().splitlines()[0])
    session.rollback()
    return None


def run_spec(cell: Cell, schedule: Schedule, table: str = "", deadline: float = 15.0) -> Execution:
    """Run a lock spec on fresh sessions of the cell (one per schedule session, default isolation level, no
    schedule tuning: these cases also run behind transaction poolers) and return what it did.

    A step whose expectation does not speak of errors and that the engine refused (a clause this engine lacks)
    is raised as the driver's error, as a case's own statement would be: the plugin then judges it against the
    capability profile (``unsupported``) instead of the case calling it a finding."""
    sessions = {name: cell.connect() for name in schedule.sessions}
    executor = ScheduleExecutor(sessions, cell.observer(), None, table, deadline=deadline, tuned=False)
    execution = executor.run(schedule)
    failure = execution.unexpected_failure()
    if failure is not None and failure.error is not None:
        raise failure.error
    return execution


def lock_wait_bound(seconds: int, engines: tuple[str, ...] = ("postgresql", "mysql")) -> dict[str, str | None]:
    """A schedule step's per-engine SQL bounding the transaction's lock waits (nothing where a lock request
    carries its own bound, or on an engine not named)."""
    sql: dict[str, str | None] = {"*": None}
    for name in engines:
        sql[name] = next(iter(engine_for(name).lock_wait_bound(seconds)), None)
    return sql
