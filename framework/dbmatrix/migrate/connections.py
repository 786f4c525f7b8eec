"""The connections dbmatrix opens on a scratch database for a migration, and the bounds every connection to it
gets (dbmatrix's own, and the ones a tool or an env.py opens for itself): no wait on a lock or a statement is
unlimited, so a stuck migration fails instead of hanging the run. The bounds are the engine's (``wait_bounds``)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL

from ..engines import engine_for
from ..targets.admin import admin_drivername
from ..targets.urls import kind_of

BOUNDED = "dbmatrix_bounded"  # set in a pooled connection's info once bound_session ran on it


def sync_engine(url: URL) -> sa.Engine:
    """A plain (sync) SQLAlchemy engine on ``url`` with the admin DBAPI for its kind; no pooling, bounded waits."""
    kind = kind_of(url)
    engine = sa.create_engine(url.set(drivername=admin_drivername(kind)), poolclass=sa.pool.NullPool)

    @sa.event.listens_for(engine, "connect")
    def _bound(dbapi_conn: Any, record: Any) -> None:
        bound_session(kind, dbapi_conn)
        record.info[BOUNDED] = True

    return engine


def _is_mariadb(dbapi_conn: Any) -> bool:
    cur = dbapi_conn.cursor()
    cur.execute("SELECT VERSION()")
    version = str(cur.fetchone()[0])
    cur.close()
    return "mariadb" in version.lower()


def bound_session(kind: str, dbapi_conn: Any) -> None:
    """Put the engine's lock and statement bounds on a DBAPI connection (ours, yoyo's, or one env.py opened).
    psycopg's automatic server-side prepared statements are turned off: behind a transaction pooler (PgBouncer)
    they collide."""
    if hasattr(dbapi_conn, "prepare_threshold"):
        dbapi_conn.prepare_threshold = None
    product = "mariadb" if kind == "mysql" and _is_mariadb(dbapi_conn) else ""  # their statement timeouts differ
    cur = dbapi_conn.cursor()
    for sql in engine_for(kind, product).wait_bounds():
        cur.execute(sql)
    cur.close()
    if kind != "sqlite":
        dbapi_conn.commit()
