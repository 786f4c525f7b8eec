"""How each DBAPI stops a running statement, shared by its own adapter and the SQLAlchemy layers over it.

* psycopg, psycopg-async, psycopg2: libpq's cancel request (``conn.cancel()``, safe from another thread).
* asyncpg: cancelling the step's task; asyncpg then sends the cancel request itself and keeps the connection.
* PyMySQL, mysqlclient, asyncmy: ``KILL QUERY <thread>`` from an admin connection of its own (the protocol has no
  out-of-band cancel).
* sqlite3, aiosqlite: ``interrupt()`` on the ``sqlite3`` connection (aiosqlite's underlying one), plus the busy
  watch giving up a lock wait, which ``sqlite3_interrupt`` does not end.

``terminate_backend`` is close()'s last resort when a cancel did not take: the server ends the connection.
"""

from __future__ import annotations

import concurrent.futures
from typing import TYPE_CHECKING, Any

from ..engines import mysql as mysql_engine
from ..engines import postgresql as pg_engine

if TYPE_CHECKING:
    from .base import Session

LIBPQ = frozenset({"psycopg", "psycopg-async", "psycopg2"})
MYSQL = frozenset({"pymysql", "mysqlclient", "asyncmy"})


def cancel_step(session: Session, dbapi: str, raw: Any, fut: concurrent.futures.Future[Any]) -> None:
    """Stop ``fut`` (the pending step of ``session``, whose driver connection is ``raw``) the ``dbapi``'s way."""
    if dbapi in LIBPQ:
        raw.cancel()
    elif dbapi == "asyncpg":
        session._owner.cancel_task(fut)
    elif dbapi in MYSQL:
        mysql_engine.kill_query(session.info.url, int(session.server_id))  # type: ignore[arg-type]
    elif dbapi == "sqlite3":
        raw.interrupt()
    elif dbapi == "aiosqlite":
        raw._conn.interrupt()  # aiosqlite's own interrupt() is a coroutine queued behind the running step
    else:
        raise session._unsupported("cannot cancel a running statement")


def terminate_backend(session: Session) -> None:
    """End the session's server connection from an admin connection (PostgreSQL, MySQL); nothing for SQLite."""
    kind = session.info.kind
    if kind == "postgresql":
        conn = pg_engine.admin_dbapi_connection(session.info.url)
        try:
            cur = conn.cursor()
            if session.server_id is not None:
                cur.execute("SELECT pg_terminate_backend(%(pid)s)", {"pid": int(session.server_id)})
            else:  # behind a transaction pooler: the backend lent to this session right now, if any
                cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %(n)s"
                            " AND state IS DISTINCT FROM 'idle'", {"n": session.info.application_name})
        finally:
            conn.close()
    elif kind == "mysql" and session.server_id is not None:
        conn = mysql_engine.admin_dbapi_connection(session.info.url)
        try:
            conn.cursor().execute(f"KILL {int(session.server_id)}")
        except Exception:  # noqa: BLE001 - already gone is fine
            pass
        finally:
            conn.close()
