"""Administrative connections: detect a server's version and provision scratch space.

These use SQLAlchemy over whichever DBAPI is installed (not the driver under test), in AUTOCOMMIT mode,
with a short connect timeout so an unreachable target is reported quickly.
"""

from __future__ import annotations

import contextlib
import importlib.util
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection

from .. import interrupt
from ..drivers.protocol import SILENCE_S, ConnectInfo
from ..drivers.session import shut_down, silent_server
from ..engines import mysql as mysql_engine
from ..engines import plugin_engine_detected
from ..errors import DriverError
from ..redaction import scrub
from .hosted import cockroach_version

PROBE_CONNECT_TIMEOUT_S = 5
STOPPING_CONNECT_TIMEOUT_S = 2  # after SIGINT/SIGTERM: cleanup must not wait long on a mute server (libpq's minimum)


def connect_bound() -> int:
    return STOPPING_CONNECT_TIMEOUT_S if interrupt.requested() else PROBE_CONNECT_TIMEOUT_S

# kind -> (importable module, SQLAlchemy drivername), in order of preference
_ADMIN_DBAPIS = {
    "postgresql": [("psycopg", "postgresql+psycopg"), ("psycopg2", "postgresql+psycopg2")],
    "cockroachdb": [("psycopg", "postgresql+psycopg"), ("psycopg2", "postgresql+psycopg2")],
    "mysql": [("pymysql", "mysql+pymysql"), ("MySQLdb", "mysql+mysqldb")],
    "sqlite": [("sqlite3", "sqlite+pysqlite")],
}


def admin_drivername(kind: str) -> str:
    for module, drivername in _ADMIN_DBAPIS[kind]:
        if importlib.util.find_spec(module) is not None:
            return drivername
    wanted = " or ".join(m for m, _ in _ADMIN_DBAPIS[kind])
    raise DriverError(None, "MissingDriver", f"no driver to administer {kind} targets: install {wanted}")


@contextmanager
def admin_connection(kind: str, url: URL) -> Iterator[Connection]:
    """An AUTOCOMMIT SQLAlchemy connection to ``url``; database errors come out as one-line DriverError."""
    connect_args: dict[str, object] = {}
    drivername = admin_drivername(kind)
    if kind in ("postgresql", "cockroachdb"):
        connect_args["connect_timeout"] = connect_bound()  # libpq: TCP, TLS and authentication
    elif kind == "mysql":
        module = "pymysql" if "pymysql" in drivername else "MySQLdb"
        connect_args.update(mysql_engine.bounded_connect_args(module, connect_bound()))
        if module == "pymysql" and url.password:
            connect_args.update(mysql_engine.with_utf8_password({"password": url.password}))
    engine = sa.create_engine(
        url.set(drivername=drivername), isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool,
        connect_args=connect_args,
    )
    if kind == "mysql":
        sa.event.listen(engine, "connect", lambda dbapi_conn, _record: mysql_engine.after_handshake(dbapi_conn))
    watch = _SilenceWatch(kind, url, engine) if kind in ("postgresql", "cockroachdb") else None
    try:
        with engine.connect() as conn:
            yield conn
    except sa.exc.DBAPIError as exc:
        if watch is not None and watch.fired:
            raise DriverError(None, "ServerStoppedAnswering", watch.fired) from None
        raise _one_line(exc) from None
    finally:
        if watch is not None:
            watch.stop()
        engine.dispose()


class _SilenceWatch:
    """PostgreSQL reads after connect, bounded on our side as a session's are (``Session._answer``): a statement
    silent for ``SILENCE_S`` makes a fresh, bounded connection ask whether the server still answers; when it does
    not (frozen, gone), the admin connection's socket is shut down and the statement fails at once. No TCP option
    sees a frozen server (its kernel still acknowledges), and a long statement on a live server is left alone."""

    def __init__(self, kind: str, url: URL, engine: sa.engine.Engine):
        self.info = ConnectInfo(kind=kind, url=url, engine=kind)
        self.fired = ""
        self._since: float | None = None
        self._fd: int | None = None
        self._done = threading.Event()
        sa.event.listen(engine, "before_cursor_execute", self._starts)
        sa.event.listen(engine, "after_cursor_execute", self._ends)
        sa.event.listen(engine, "handle_error", lambda _context: self._ends())
        threading.Thread(target=self._watch, name="dbm-admin-watch", daemon=True).start()

    def _starts(self, conn: Connection, *_: object) -> None:
        with contextlib.suppress(Exception):
            self._fd = conn.connection.dbapi_connection.fileno()  # type: ignore[union-attr]
        self._since = time.monotonic()

    def _ends(self, *_: object) -> None:
        self._since = None

    def _watch(self) -> None:
        while not self._done.wait(1.0):
            since, fd = self._since, self._fd
            if since is None or fd is None or time.monotonic() - since < SILENCE_S:
                continue
            why = silent_server(self.info)
            if why is None or self._since != since:
                continue  # the server answers (a long statement), or this one ended meanwhile
            self.fired = (f"no answer for {time.monotonic() - since:.0f} s and a fresh connection timed out or "
                          f"failed too ({why}); the administrative connection was shut down on our side")
            with contextlib.suppress(OSError):
                shut_down(fd)
            return

    def stop(self) -> None:
        self._done.set()


def _one_line(exc: sa.exc.DBAPIError) -> DriverError:
    orig = exc.orig
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if getattr(orig, "args", None) and isinstance(orig.args[0], int):
        code = str(orig.args[0])  # MySQL: the errno says more than its SQLSTATE (42000 is half the errors)
    text = str(orig.args[1]) if code and orig.args and isinstance(orig.args[0], int) else str(orig)
    first = (text.strip().splitlines() or [type(orig).__name__])[0]
    return DriverError(code, type(orig).__name__, scrub(first))


def detect_server(kind: str, url: URL) -> tuple[str, str]:
    """Return ``(engine, server_version)`` for the server at ``url``."""
    if kind == "sqlite":
        import sqlite3

        return "sqlite", sqlite3.sqlite_version
    with admin_connection(kind, url) as conn:
        if kind in ("postgresql", "cockroachdb"):
            full = conn.exec_driver_sql("SELECT version()").scalar_one()
            if plugin := plugin_engine_detected(kind, full):  # an installed engine claims this product
                return plugin, conn.exec_driver_sql("SHOW server_version").scalar_one().split()[0]
            crdb = cockroach_version(full)
            if crdb is not None or "CockroachDB" in full:
                return "cockroachdb", crdb or "0"
            return "postgresql", conn.exec_driver_sql("SHOW server_version").scalar_one().split()[0]
        version = conn.exec_driver_sql("SELECT VERSION()").scalar_one()
        return (plugin_engine_detected(kind, version) or ("mariadb" if "mariadb" in version.lower() else "mysql"),
                version)


# SQLSTATE / MySQL errno -> what it means for a target we tried to reach
_REFUSALS = {
    "28P01": "refuses the password",
    "28000": "refuses the login",
    "1045": "refuses the login (wrong user or password)",
    "1698": "refuses the login",
    "42501": "permission denied",
    "1044": "permission denied",
    "1227": "permission denied",
    "1142": "permission denied",
    "3D000": "has no such database",
    "1049": "has no such database",
    "53300": "has no free connection slot",
    "1040": "has no free connection slot",
}


# A refused connection often carries no code (psycopg's OperationalError at connect): the server's words decide.
_MESSAGE_REFUSALS = (
    (re.compile(r'role "[^"]*" does not exist'), "has no such role"),
    (re.compile(r"password authentication failed|Access denied for user", re.I), "refuses the login"),
    (re.compile(r'database "[^"]*" does not exist|Unknown database', re.I), "has no such database"),
    (re.compile(r"too many clients|too many connections|remaining connection slots", re.I),
     "has no free connection slot"),
)
# libpq's preamble before the server's own words; it repeats once per address tried
_LIBPQ_PREAMBLE = re.compile(r'(?:connection failed: )?connection to server (?:at|on) "[^"]*"(?: \([^)]*\))?'
                             r'(?:, port \d+)? failed: (?:FATAL: )?')
REASON_LIMIT = 200  # a reason is one line in the targets table, the console and results.json


def failure_reason(exc: BaseException) -> str:
    """One short line saying why a target cannot be used: the server refused the login (no such role, wrong
    password), has no such database, permission denied, no free connection slot, or it does not answer."""
    if isinstance(exc, sa.exc.DBAPIError):
        return failure_reason(_one_line(exc))
    if isinstance(exc, DriverError):
        cls, code, message = exc.cls, exc.code, exc.message
    else:
        cls, code, message = type(exc).__name__, None, scrub(exc)
    message = _LIBPQ_PREAMBLE.sub("", " ".join(str(message).split()))
    what = _REFUSALS.get(code or "") or next((w for p, w in _MESSAGE_REFUSALS if p.search(message)),
                                             "does not answer")
    line = f"{what}: {cls}{f'[{code}]' if code else ''}: {message}"
    return line if len(line) <= REASON_LIMIT else line[: REASON_LIMIT - 1].rstrip() + "…"


def standby_lag(kind: str, url: URL) -> str | None:
    """For a PostgreSQL hot standby: its replay lag now ('standby, replay lag 0 B, last replay 0.2 s ago'); None
    when the server is not a standby."""
    if kind != "postgresql":
        return None
    with admin_connection(kind, url) as conn:
        row = conn.exec_driver_sql(
            "SELECT pg_is_in_recovery(), pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()),"
            " EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())"
        ).one()
    if not row[0]:
        return None
    behind = f"{int(row[1])} B" if row[1] is not None else "unknown"
    since = f", last replayed commit {float(row[2]):.1f} s ago" if row[2] is not None else ""
    return f"standby, replay lag {behind}{since}"
