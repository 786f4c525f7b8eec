"""mysql-connector-python: Oracle's MySQL client, with its C extension (``mysql-connector``) and in pure Python
(``mysql-connector-pure``, ``use_pure=True``).

Both interpolate ``%(name)s`` parameters client-side into a plain COM_QUERY (a prepared cursor is opt-in), leave
every other ``%`` as it is (PyMySQL wants ``%%`` for a literal ``%`` once there are parameters; here ``%%`` would
reach the server as two), and
convert some values differently: the C extension returns a bytes parameter read back as text as ``str``. The
default cursor is unbuffered: a result must be read to its end before the connection runs anything else (``Unread
result found``), so a stream drains what it did not read before the cursor closes. The level of one transaction is
asked through the driver's own ``conn.start_transaction(isolation_level=...)``. ``read_timeout`` and
``write_timeout`` (seconds, per socket operation) bound every statement at the harness deadline.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from . import params
from .dbapi import DBAPISession, translate
from .mysql_common import MySQLKnowledge, connect_errors, connect_kwargs
from .protocol import CONNECT_TIMEOUT_S, HARNESS_DEADLINE_S, ConnectInfo
from .session import Session

try:
    # The C extension links the system libstdc++, which needs a slot in glibc's static TLS block; dlopened late in a
    # process that has loaded many other extensions (psycopg's, asyncpg's, greenlet ...) that block is full and the
    # import fails ("cannot allocate memory in static TLS block"). Loaded with the registry it always fits.
    importlib.import_module("mysql.connector.connection_cext")
except ImportError:
    pass  # not installed, or not loadable here: its cells are skipped with the reason (unavailable_reason)


def stream_batches(conn: Any, query: str, args: Any, batch: int) -> Iterator[list[tuple[Any, ...]]]:
    """The default (unbuffered) cursor, ``batch`` rows per ``fetchmany``; what is left unread is consumed before
    the cursor closes (the connection refuses every other command until it is)."""
    cursor = conn.cursor()
    try:
        cursor.execute(query, args)
        while rows := cursor.fetchmany(batch):
            yield rows
    finally:
        conn.consume_results()
        cursor.close()


class MySQLConnectorSession(DBAPISession):
    def begin_native(self, isolation: str) -> str:
        level, conn = self.checked_level(isolation).upper(), self.conn
        # SET TRANSACTION ISOLATION LEVEL (the next transaction only), then START TRANSACTION: nothing to restore
        return self._open_with_settings(conn, lambda: conn.start_transaction(isolation_level=level), lambda: None,
                                        f"conn.start_transaction(isolation_level={level!r})")

    def _stream(self, sql: str, params: Mapping[str, Any] | None, batch: int) -> Iterator[list[tuple[Any, ...]]]:
        query, args = translate(self.adapter, sql, params)
        return stream_batches(self.conn, query, args, batch)


class MySQLConnectorAdapter(MySQLKnowledge):
    id: ClassVar[str] = "mysql-connector"
    use_pure: ClassVar[bool] = False
    paramstyle: ClassVar[str] = params.PYFORMAT_BARE  # its DBAPI paramstyle is pyformat, but '%%' is not unescaped
    # the C extension: mysql.connector falls back to nothing, it raises ImportError when it cannot load it
    modules: ClassVar[tuple[str, ...]] = ("mysql.connector", "mysql.connector.connection_cext")
    # the C extension's own error (a value it cannot convert) is raised as it is, outside mysql.connector.Error
    exceptions: ClassVar[tuple[str, ...]] = ("mysql.connector.errors.Error", "_mysql_connector.MySQLInterfaceError")
    distributions: ClassVar[tuple[str, ...]] = ("mysql-connector-python",)
    profile_modules: ClassVar[tuple[str, ...]] = ("mysql.connector", "_mysql_connector")
    sa_driver: ClassVar[str | None] = "mysqlconnector"
    ci_sample_layers: ClassVar[bool] = True  # a newer rung: its sa-core+/sa-orm+ pairs are sampled in CI
    bench_layers_by_default: ClassVar[bool] = False  # its SQLAlchemy rows in the bench when named

    def connect_kwargs(self, info: ConnectInfo) -> dict[str, Any]:
        kwargs = connect_kwargs(info)
        kwargs.update(use_pure=self.use_pure, read_timeout=HARNESS_DEADLINE_S, write_timeout=HARNESS_DEADLINE_S)
        return kwargs

    def open(self, info: ConnectInfo) -> Session:
        connector = importlib.import_module("mysql.connector")
        with connect_errors(self):
            conn = connector.connect(**self.connect_kwargs(info))
        return MySQLConnectorSession(self, info, conn)

    def sa_connect_args(self, info: ConnectInfo) -> dict[str, Any]:
        return {"connect_timeout": CONNECT_TIMEOUT_S, "use_pure": self.use_pure,
                "read_timeout": HARNESS_DEADLINE_S, "write_timeout": HARNESS_DEADLINE_S}


class MySQLConnectorPureAdapter(MySQLConnectorAdapter):
    id: ClassVar[str] = "mysql-connector-pure"
    use_pure: ClassVar[bool] = True
    modules: ClassVar[tuple[str, ...]] = ("mysql.connector",)
    exceptions: ClassVar[tuple[str, ...]] = ("mysql.connector.errors.Error",)
    profile_modules: ClassVar[tuple[str, ...]] = ("mysql.connector",)
