"""MariaDB Connector/Python (the ``mariadb`` package): a C extension over MariaDB Connector/C (libmariadb).

Its paramstyle is ``qmark`` (``?``). Like the PyMySQL family its default cursor substitutes parameters client-side
into a plain COM_QUERY (text protocol): nothing is prepared on the server, not even with ``cursor(prepared=True)``;
only ``cursor(binary=True)`` sends COM_STMT_PREPARE/EXECUTE. No isolation
API: the level is set with SQL, as with the other MySQL drivers. Its errors carry the message alone in ``args``;
the errno is ``exc.errno``. ``read_timeout``/``write_timeout`` bound every statement at the harness deadline.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from . import params
from .dbapi import fetch_batches, translate
from .mysql_common import MySQLDBAPIAdapter, MySQLDBAPISession, connect_errors, connect_kwargs
from .protocol import CONNECT_TIMEOUT_S, HARNESS_DEADLINE_S, ConnectInfo
from .session import Session


def stream_batches(conn: Any, query: str, args: Any, batch: int) -> Iterator[list[tuple[Any, ...]]]:
    """An unbuffered cursor (rows read from the socket as they are fetched; ``close()`` skips the rest), ``batch``
    rows per ``fetchmany``. A generator: nothing runs until the caller starts reading."""
    cursor = conn.cursor(buffered=False)
    try:
        cursor.execute(query, args or ())
    except BaseException:
        cursor.close()
        raise
    yield from fetch_batches(cursor, batch)


class MariaDBSession(MySQLDBAPISession):
    def _stream(self, sql: str, params: Mapping[str, Any] | None, batch: int) -> Iterator[list[tuple[Any, ...]]]:
        query, args = translate(self.adapter, sql, params)
        return stream_batches(self.conn, query, args, batch)


class MariaDBConnectorAdapter(MySQLDBAPIAdapter):
    id: ClassVar[str] = "mariadb-connector"
    paramstyle: ClassVar[str] = params.QMARK
    modules: ClassVar[tuple[str, ...]] = ("mariadb",)
    exceptions: ClassVar[tuple[str, ...]] = ("mariadb.Error",)
    distributions: ClassVar[tuple[str, ...]] = ("mariadb",)
    profile_modules: ClassVar[tuple[str, ...]] = ("mariadb",)
    sa_driver: ClassVar[str | None] = "mariadbconnector"
    ci_sample_layers: ClassVar[bool] = True  # a newer rung: its sa-core+/sa-orm+ pairs are sampled in CI
    bench_layers_by_default: ClassVar[bool] = False  # its SQLAlchemy rows in the bench when named

    def connect_kwargs(self, info: ConnectInfo) -> dict[str, Any]:
        kwargs = connect_kwargs(info)
        kwargs.pop("charset", None)  # Connector/C's default is utf8mb4 already; it takes no charset keyword
        kwargs.update(read_timeout=HARNESS_DEADLINE_S, write_timeout=HARNESS_DEADLINE_S)
        return kwargs

    def open(self, info: ConnectInfo) -> Session:
        import mariadb  # optional driver: imported when a session of it opens

        with connect_errors(self):
            conn = mariadb.connect(**self.connect_kwargs(info))
        return MariaDBSession(self, info, conn)

    def sa_connect_args(self, info: ConnectInfo) -> dict[str, Any]:
        return {"connect_timeout": CONNECT_TIMEOUT_S, "read_timeout": HARNESS_DEADLINE_S,
                "write_timeout": HARNESS_DEADLINE_S}
