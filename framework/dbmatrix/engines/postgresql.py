"""PostgreSQL (CockroachDB, which speaks its protocol, is a subclass in ``cockroachdb``)."""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

from .base import LOCK_TIMEOUT_S, SQL_STANDARD_LEVELS, STATEMENT_TIMEOUT_S, Engine
from .observer import AdminObserver

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from ..drivers.base import ConnectInfo, Session

CONNECT_TIMEOUT_S = 5


def admin_dbapi_connection(url: URL) -> Any:
    """An autocommit psycopg (else psycopg2) connection to ``url``; psycopg never prepares server-side here
    (``prepare_threshold=None``), so the observer's repeated queries also work behind a transaction pooler.
    No application_name: behind PgBouncer it would stay on the pooled server connection for the next client."""
    kwargs: dict[str, Any] = {"host": url.host, "port": url.port, "user": url.username, "password": url.password,
                              "dbname": url.database, "connect_timeout": CONNECT_TIMEOUT_S}
    kwargs.update({k: v if isinstance(v, str) else ",".join(v) for k, v in url.query.items()})
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    if importlib.util.find_spec("psycopg") is not None:
        import psycopg

        return psycopg.connect(autocommit=True, prepare_threshold=None, **kwargs)
    import psycopg2

    conn = psycopg2.connect(**kwargs)
    conn.autocommit = True
    return conn


class PostgresObserver(AdminObserver):
    """What PostgreSQL's own isolation tester asks (``pg_isolation_test_session_is_blocked``): a heavyweight lock
    wait, or a SERIALIZABLE READ ONLY DEFERRABLE safe-snapshot wait. We count every backend as interesting, so
    the question is asked directly of ``pg_blocking_pids`` and ``pg_safe_snapshot_blocking_pids`` (the two
    calls that function makes), without the list of every backend from ``pg_stat_activity`` that would only
    be intersected with them: about 0.15 ms a question instead of 0.6 ms. ``pg_blocking_pids`` names the holders.

    A session behind a transaction pooler has no fixed backend: it is found by its ``application_name`` (PgBouncer
    sets it on the server connection it lends), among the backends not idle, i.e. lent to it right now.
    """

    _BLOCKED = ("SELECT cardinality(pg_blocking_pids(%(pid)s)) > 0"
                " OR cardinality(pg_safe_snapshot_blocking_pids(%(pid)s)) > 0")

    def backend(self, session: Session) -> int | None:
        if session.server_id is not None:
            return int(session.server_id)
        rows = self.query("SELECT pid FROM pg_stat_activity WHERE application_name = %(name)s"
                          " AND state IS DISTINCT FROM 'idle'", {"name": session.info.application_name})
        return rows[0][0] if len(rows) == 1 else None

    def is_blocked(self, session: Session) -> bool:
        pid = self.backend(session)
        return pid is not None and bool(self.query(self._BLOCKED, {"pid": pid})[0][0])

    def waits_for(self, session: Session) -> list[Any]:
        pid = self.backend(session)
        if pid is None:
            return []
        return list(self.query("SELECT pg_blocking_pids(%(pid)s)", {"pid": pid})[0][0] or [])


class PostgreSQL(Engine):
    name = "postgresql"
    isolation_levels = SQL_STANDARD_LEVELS
    server_id_query = "SELECT pg_backend_pid()"
    read_isolation_sql = "SHOW transaction_isolation"

    def begin_statements(self, isolation: str | None) -> list[str]:
        iso = self.check_isolation(isolation)
        return [f"BEGIN ISOLATION LEVEL {iso.upper()}"] if iso else ["BEGIN"]

    def database_timeouts(self, database: str) -> list[str]:
        # Stored on the database: every new connection (a pooler's server connections too) starts with them.
        return [f"ALTER DATABASE \"{database}\" SET statement_timeout = '{STATEMENT_TIMEOUT_S}s'",
                f"ALTER DATABASE \"{database}\" SET lock_timeout = '{LOCK_TIMEOUT_S}s'"]

    def session_setup(self, info: ConnectInfo) -> list[str]:
        if info.database_timeouts:
            return []
        # A scratch schema (no CREATE DATABASE right) or a bare URL: the session is the only place left.
        return self.wait_bounds()

    def wait_bounds(self) -> list[str]:
        return [f"SET statement_timeout = '{STATEMENT_TIMEOUT_S}s'", f"SET lock_timeout = '{LOCK_TIMEOUT_S}s'"]

    def observer(self, admin_url: URL) -> PostgresObserver:
        return PostgresObserver(admin_dbapi_connection(admin_url))

    # --- refusals and bounds for schedules and retries ---
    deadlock_codes = frozenset({"40P01"})  # deadlock_detected
    # serialization_failure, deadlock_detected, lock_not_available (lock timeout)
    isolation_codes = frozenset({"40001", "40P01", "55P03"})
    retry_codes = frozenset({"40001", "40P01"})
    # The deadlock detector after 100 ms instead of 1 s (a superuser setting; without the right the default
    # stays, only slower); a commit need not wait for its flush to disk.
    schedule_session_setup = ("SET deadlock_timeout = '100ms'", "SET synchronous_commit = off")

    def lock_wait_bound(self, seconds: int) -> list[str]:
        # SET LOCAL: this transaction only, so it also holds behind a transaction pooler
        return [f"SET LOCAL lock_timeout = '{seconds}s'"]

