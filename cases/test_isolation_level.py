"""isolation.effective_level: the level a driver stack asks for is the level the server runs the transaction at.

Each driver opens the transaction through its *own* way of asking for a level (``Session.begin_native``):
asyncpg ``conn.transaction(isolation=...)``, psycopg's ``isolation_level``, psycopg2's ``set_session``, SQLAlchemy's
``isolation_level`` execution option, sqlite3/aiosqlite's ``isolation_level``; most MySQL drivers have no isolation
API, so ``SET SESSION TRANSACTION ISOLATION LEVEL`` and the driver's ``begin()`` (mysql-connector's
``start_transaction(isolation_level=...)``). Inside that transaction the case reads what the server reports
(``Engine.transaction_isolation``): ``SHOW transaction_isolation`` on PostgreSQL, the open transaction's
``trx_isolation_level`` in ``information_schema.innodb_trx`` on MariaDB (``@@tx_isolation`` is the session's, and
misses a level set for one transaction, as mysql-connector's ``start_transaction`` sets), and on SQLite, which has
no level to report, whether a transaction is open at all and whether it holds the write lock (a probe
connection's ``BEGIN IMMEDIATE`` with busy timeout 0 gets SQLITE_BUSY).

A report other than the level asked for is ``differs`` (lower: a silent downgrade); a level the engine or the
driver stack refuses is ``unsupported`` with its error. The API used is in the message and in ``findings``.
"""

from __future__ import annotations

import pytest
from levelcheck import judge_level

from dbmatrix.casekit import case_id
from dbmatrix.engines import IsolationUnsupported, engine_for
from dbmatrix.errors import DriverError

LEVELS = ["read uncommitted", "read committed", "repeatable read", "serializable", "deferred", "immediate"]


@case_id("isolation.effective_level")
@pytest.mark.parametrize("isolation", LEVELS)
def test_effective_level(cell, isolation):
    """Inside a transaction opened at ``isolation`` through the driver's own API, the server reports that level."""
    engine = engine_for(cell.kind, cell.engine)
    try:
        engine.check_isolation(isolation)
    except IsolationUnsupported as exc:
        cell.unsupported(exc)
        return
    s = cell.connect()
    try:
        api = s.begin_native(isolation)
    except DriverError as exc:  # the driver stack refuses the level (its own error class or code)
        cell.unsupported(exc)
        return
    try:
        reported = engine.transaction_isolation(s)
    finally:
        s.rollback()
    judge_level(cell, api, engine.expected_report(isolation), reported)
