"""isolation.effective_level: the level a driver stack asks for is the level the server runs the transaction at.

Each driver opens a transaction its own way (``Session.begin``: SQLAlchemy through
``execution_options(isolation_level=...)``, the DBAPI drivers through the engine's BEGIN / SET TRANSACTION
statements), then reads back what the server reports inside that transaction (``SHOW transaction_isolation``,
``@@tx_isolation``, ``PRAGMA read_uncommitted``). A level reported lower than the one asked for is a silent
downgrade: ``differs``. A level the stack refuses is ``unsupported`` with its error.

MySQL and MariaDB have no variable for the *current transaction's* level: ``@@tx_isolation`` is the session's,
which ``SET TRANSACTION`` (next transaction only) leaves alone. There the read-back tells what the session says,
and that it differs is itself the finding, named in the expectations.
"""

from __future__ import annotations

import pytest
from schedule_cells import level_refusal

from dbmatrix.casekit import case_id
from dbmatrix.engines import IsolationUnsupported, engine_for

LEVELS = ["read uncommitted", "read committed", "repeatable read", "serializable", "deferred", "immediate"]


@case_id("isolation.effective_level")
@pytest.mark.parametrize("isolation", LEVELS)
def test_effective_level(cell, isolation):
    """Inside a transaction opened at ``isolation``, the server reports that level (or, for engines that cannot
    say, the recorded difference)."""
    engine = engine_for(cell.kind, cell.engine)
    try:
        engine.check_isolation(isolation)
    except IsolationUnsupported as exc:
        cell.unsupported(exc)
        return
    s = cell.connect()
    refused = level_refusal(s, isolation)
    if refused is not None:
        cell.unsupported(refused)
        return
    s.begin(isolation)
    try:
        reported = engine.normalise_isolation(s.execute(engine.read_isolation_sql).scalar())
    finally:
        s.rollback()
    asked = {"deferred": "serializable", "immediate": "serializable"}.get(isolation, isolation)
    if reported == asked:
        cell.supported(f"the server reports {reported!r} inside the transaction")
    else:
        cell.differs(f"asked for {isolation!r}, the server reports {reported!r} inside the transaction",
                     mechanism="read-back")
