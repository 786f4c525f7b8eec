"""What the isolation and schedules cases share: skipping transaction-pooled targets, and opening a level."""

from __future__ import annotations

import pytest

from dbmatrix.cell import Cell
from dbmatrix.drivers.base import Session
from dbmatrix.errors import DriverError


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


