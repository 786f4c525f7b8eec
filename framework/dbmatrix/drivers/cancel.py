"""Stopping a statement from the server side, for adapters whose driver has no cancel of its own and as
``close()``'s last resort when a driver's cancel did not take (the adapters declare their own way of cancelling:
``DriverAdapter.cancel_running``).

* ``cancel_backend``: PostgreSQL's ``pg_cancel_backend`` from an admin connection (what ``psql``'s Ctrl-C sends
  through libpq, for a driver without a cancel request of its own).
* ``terminate_backend``: the server ends the session's connection (PostgreSQL, MySQL); nothing for SQLite.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..engines import mysql as mysql_engine
from ..engines import postgresql as pg_engine

if TYPE_CHECKING:
    from .session import Session


def _signal_backend(session: Session, function: str) -> None:
    conn = pg_engine.admin_dbapi_connection(session.info.url)
    try:
        cur = conn.cursor()
        if session.server_id is not None:
            cur.execute(f"SELECT {function}(%(pid)s)", {"pid": int(session.server_id)})
        else:  # behind a transaction pooler: the backend lent to this session right now, if any
            cur.execute(f"SELECT {function}(pid) FROM pg_stat_activity WHERE application_name = %(n)s"
                        " AND state IS DISTINCT FROM 'idle'", {"n": session.info.application_name})
    finally:
        conn.close()


def cancel_backend(session: Session) -> None:
    """Cancel the statement the session's PostgreSQL backend is running (``pg_cancel_backend``)."""
    _signal_backend(session, "pg_cancel_backend")


def terminate_backend(session: Session) -> None:
    """End the session's server connection from an admin connection (PostgreSQL, MySQL); nothing for SQLite."""
    kind = session.info.kind
    if kind == "postgresql":
        _signal_backend(session, "pg_terminate_backend")
    elif kind == "mysql" and session.server_id is not None:
        conn = mysql_engine.admin_dbapi_connection(session.info.url)
        try:
            conn.cursor().execute(f"KILL {int(session.server_id)}")
        except Exception:  # noqa: BLE001 - already gone is fine
            pass
        finally:
            conn.close()
