"""What the MySQL drivers share: connect arguments from a URL, and one session over the MySQLdb-style API.

PyMySQL and mysqlclient (``MySQLdb``) take the same connect keywords and have the same cursor API, so
each of their adapters is a tiny subclass of ``MySQLDBAPIAdapter`` naming its module. asyncmy reuses
``connect_kwargs``, ``normalise_mysql_error`` and ``connect_errors``.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from ..engines import engine_for
from ..engines import mysql as mysql_engine
from ..engines.mysql import READ_TIMEOUT_S
from ..errors import DriverError
from . import params
from .dbapi import DBAPISession, fetch_batches, translate
from .normalise import default_normalise, message, socket_error
from .protocol import CONNECT_TIMEOUT_S, ConnectInfo, DriverAdapter, with_options
from .session import Session


def connect_kwargs(info: ConnectInfo) -> dict[str, Any]:
    """Connect keywords every MySQL driver here understands, from ``info.url``.

    Autocommit is on: transactions are opened by ``begin`` with SQL. utf8mb4 so 4-byte characters round-trip.
    Client flags stay the driver default (no CLIENT_FOUND_ROWS): rowcount is what the driver reports by default.
    """
    url = info.url
    kwargs: dict[str, Any] = {
        "user": url.username or "root",
        "password": url.password or "",
        "charset": "utf8mb4",
        "autocommit": True,
        "connect_timeout": CONNECT_TIMEOUT_S,
        "read_timeout": READ_TIMEOUT_S,  # the greeting, authentication and every read: a mute server cannot hang us
    }
    if url.host:
        kwargs["host"] = url.host
    if url.port:
        kwargs["port"] = url.port
    if url.database:
        kwargs["database"] = url.database
    # Plain string options in the URL (unix_socket, charset, ...) go to the driver as SQLAlchemy's dialects do.
    kwargs.update({k: v for k, v in url.query.items() if isinstance(v, str)})
    return with_options(kwargs, info)


def normalise_mysql_error(exc: BaseException) -> DriverError | None:
    """The code is the MySQL errno as a string.

    PyMySQL >= 1.2 and asyncmy also set ``sqlstate`` (e.g. '23000' for every integrity error), which
    ``default_normalise`` would prefer; the errno ('1062') is the precise one. A bare socket error's errno
    is the OS's, not MySQL's, so it gets no code.
    """
    if isinstance(exc, OSError):  # refused, unresolvable host, timeout (TimeoutError is an OSError)
        return socket_error(exc)
    errno = getattr(exc, "errno", None)  # MariaDB Connector/Python, mysql-connector's C extension: an attribute
    if isinstance(errno, int) and errno > 0:
        return DriverError(str(errno), type(exc).__name__, message(exc))
    err = default_normalise(exc)
    if err is not None and exc.args and isinstance(exc.args[0], int):  # (errno, message)
        err = DriverError(str(exc.args[0]), err.cls, err.message)
    return err


@contextlib.contextmanager
def connect_errors(adapter: DriverAdapter) -> Iterator[None]:
    """Make a failed connect come out as a scrubbed DriverError, like a failed statement."""
    try:
        yield
    except DriverError:
        raise
    except Exception as exc:
        err = adapter.normalise_error(exc)
        if err is None:
            raise
        raise err from None


def stream_batches(conn: Any, cursor_class: Any, query: str, args: Any, batch: int) -> Iterator[list[tuple[Any, ...]]]:
    """An unbuffered cursor (``SSCursor``: mysql_use_result / reading the packets as they come) fetched ``batch``
    rows at a time. Closing it reads and drops what is left, as the protocol requires before the next statement."""
    cursor = conn.cursor(cursor_class)
    try:
        cursor.execute(query, args)
    except BaseException:
        cursor.close()
        raise
    yield from fetch_batches(cursor, batch)  # a generator: nothing runs until the caller starts reading


@dataclass(frozen=True)
class SessionLevel:
    """How a MySQL driver asks for a level: these drivers have no isolation API, so ``SET SESSION TRANSACTION
    ISOLATION LEVEL`` (what their users write) and then the driver's ``begin()``; the session's previous level is
    read first and set again after the transaction, so the connection is left as found."""

    read: str  # the session's level now ('REPEATABLE-READ')
    apply: str  # the session's level for the transaction
    restore: str  # back to the level read before (one %s parameter)
    api: str  # what the cell says was used

    @classmethod
    def of(cls, session: Session, isolation: str) -> SessionLevel:
        var = engine_for(session.info.kind, session.info.engine).isolation_variable  # type: ignore[attr-defined]
        level = session.checked_level(isolation).upper()
        sql = f"SET SESSION TRANSACTION ISOLATION LEVEL {level}"
        return cls(f"SELECT @@SESSION.{var}", sql, f"SET SESSION {var} = %s",
                   f"{session.adapter.id} has no isolation API: {sql}, then conn.begin()")


class MySQLDBAPISession(DBAPISession):
    """One autocommit connection of a MySQLdb-style driver; a fresh buffered cursor per statement (args None: the
    driver does no '%' interpolation at all)."""

    def begin_native(self, isolation: str) -> str:
        how, conn = SessionLevel.of(self, isolation), self.conn

        def query(sql: str, args: Any = None) -> Any:
            cursor = conn.cursor()
            try:
                cursor.execute(sql, args)
                # no result set (SET): PyMySQL's fetchall gives (), MariaDB Connector/Python's raises
                return cursor.fetchall() if cursor.description is not None else None
            finally:
                cursor.close()

        saved = self._do(lambda: query(how.read)[0][0])

        def apply() -> None:
            query(how.apply)
            conn.begin()

        return self._open_with_settings(conn, apply, lambda: query(how.restore, (saved,)), how.api)

    def _stream(self, sql: str, params: Mapping[str, Any] | None, batch: int) -> Iterator[list[tuple[Any, ...]]]:
        query, args = translate(self.adapter, sql, params)
        # pymysql.cursors.SSCursor / MySQLdb.cursors.SSCursor: the same class name in both drivers
        cursor_class = importlib.import_module(f"{self.adapter.under.modules[0]}.cursors").SSCursor
        return stream_batches(self.conn, cursor_class, query, args, batch)


class MySQLKnowledge(DriverAdapter):
    """What every MySQL driver here declares alike: the MySQL protocol has no out-of-band cancel, so a running
    statement is stopped with ``KILL QUERY <thread>`` from an admin connection of its own; client-side
    interpolation, so nothing is prepared on the server (safe behind a pooler as it is)."""

    kinds: ClassVar[frozenset[str]] = frozenset({"mysql"})
    paramstyle: ClassVar[str] = params.PYFORMAT

    def cancel_running(self, session: Session, raw: Any, fut: Any) -> None:
        mysql_engine.kill_query(session.info.url, int(session.server_id))  # type: ignore[arg-type]

    def sa_connect_args(self, info: ConnectInfo) -> dict[str, Any]:
        # every read bounded under SQLAlchemy too (PyMySQL, MySQLdb and asyncmy all take read_timeout)
        return {"connect_timeout": CONNECT_TIMEOUT_S, "read_timeout": READ_TIMEOUT_S}

    def normalise_error(self, exc: BaseException) -> DriverError | None:
        return normalise_mysql_error(exc)


class MySQLDBAPIAdapter(MySQLKnowledge):
    """A blocking MySQLdb-style driver; subclasses name the module (and may adjust ``connect_kwargs``)."""

    def connect_kwargs(self, info: ConnectInfo) -> dict[str, Any]:
        return connect_kwargs(info)

    def open(self, info: ConnectInfo) -> Session:
        module = importlib.import_module(self.modules[0])
        with connect_errors(self):
            conn = module.connect(**self.connect_kwargs(info))
        return MySQLDBAPISession(self, info, conn)
