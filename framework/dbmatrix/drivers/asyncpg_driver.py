"""asyncpg: asyncio PostgreSQL driver with its own protocol implementation and a prepared-statement cache.

How statements are sent (this decides what breaks behind PgBouncer in transaction pooling):

* No parameters and a command that never returns rows (SET, BEGIN/COMMIT, DDL, DML without RETURNING)
  -> ``conn.execute(sql)``: asyncpg uses the simple query protocol, no prepared statement at all. That is
  asyncpg's own idiom for commands, and it keeps session setup (``SET statement_timeout``) and transaction
  control working behind PgBouncer.
* Everything else -> ``stmt = await conn.prepare(sql)``, ``stmt.fetch(*args)``, ``stmt.get_statusmsg()``: one
  path that gives the columns (even for zero rows), the rows and the command status (rowcount). With default
  connect settings (statement cache on) asyncpg *names* that statement ``__asyncpg_stmt_<n>__``, ``n`` counting
  per process, and Parse and Bind are separate round trips. Behind PgBouncer < 1.21 in transaction mode that
  breaks (42P05 when a server connection still holds the name from another process, 26000 when the Bind lands
  on another server connection). We keep the defaults on purpose: recording that is the point.

``hot_path`` is ``conn.fetch``, which goes through asyncpg's statement cache like application code does.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any, ClassVar

from ..errors import DriverError
from ..redaction import register_secret, scrub
from . import params as paramstyles
from .async_session import AsyncSession
from .dbapi import translate
from .normalise import default_normalise, socket_error
from .protocol import CONNECT_TIMEOUT_S, PG_KINDS, ConnectInfo, DriverAdapter, Notifier, Result, with_options
from .session import Session

# Commands that never return rows; with no parameters they take the simple query protocol.
_COMMAND = re.compile(
    r"\s*(SET|RESET|BEGIN|START|COMMIT|END|ROLLBACK|ABORT|SAVEPOINT|RELEASE|CREATE|DROP|ALTER|TRUNCATE|GRANT"
    r"|REVOKE|COMMENT|LOCK|DISCARD|DO|LISTEN|UNLISTEN|NOTIFY|VACUUM|ANALYZE|CLUSTER|REINDEX|CHECKPOINT"
    r"|DEALLOCATE|REFRESH|INSERT|UPDATE|DELETE|MERGE)\b",
    re.IGNORECASE,
)
_RETURNING = re.compile(r"\bRETURNING\b", re.IGNORECASE)
_URL_OPTIONS = {"host", "port", "sslmode"}  # URL query entries asyncpg.connect understands here


def rowcount_from_status(status: str | None) -> int:
    """The row count in a PostgreSQL command tag ('UPDATE 3' -> 3, 'INSERT 0 1' -> 1); -1 when it has none."""
    last = (status or "").rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else -1


def connect_kwargs(info: ConnectInfo) -> dict[str, Any]:
    """asyncpg.connect keywords from the URL; ``?host=`` (a unix socket dir) and ``?sslmode=`` are honoured."""
    url = info.url
    unknown = set(url.query) - _URL_OPTIONS
    if unknown:  # refusing beats silently dropping an option such as a TLS setting the user relies on
        raise DriverError(
            None, "UnsupportedURLOption", f"asyncpg adapter does not handle URL option(s) {sorted(unknown)}"
        )
    register_secret(url.password)
    query = {k: v if isinstance(v, str) else ",".join(v) for k, v in url.query.items()}
    kwargs: dict[str, Any] = {
        "host": query.get("host", url.host),
        "port": int(query["port"]) if "port" in query else url.port,
        "user": url.username,
        "password": url.password,
        "database": url.database,
        "ssl": query.get("sslmode"),  # asyncpg takes libpq sslmode names ('disable', 'require', ...)
        "timeout": CONNECT_TIMEOUT_S,
        "server_settings": {"application_name": info.application_name} if info.application_name else None,
    }
    return with_options({k: v for k, v in kwargs.items() if v is not None}, info)


class AsyncpgNotifier(Notifier):
    """asyncpg's notification API is a callback (``add_listener``) run on the connection's event loop; the callback
    puts ``(channel, payload)`` on a queue made on that loop at the first ``listen`` (asyncpg drops notifications
    nobody listens to, so before it nothing can arrive)."""

    queue: asyncio.Queue[tuple[str, str]] | None = None

    async def listen(self, raw: Any, channel: str) -> None:
        if self.queue is None:
            self.queue = asyncio.Queue()
        await raw.add_listener(channel, self._arrived)

    def _arrived(self, conn: Any, pid: int, channel: str, payload: str) -> None:
        self.queue.put_nowait((channel, payload))  # type: ignore[union-attr]

    async def received(self, raw: Any, timeout: float) -> list[tuple[str, str]]:
        if self.queue is None:
            return []
        try:
            got = [await asyncio.wait_for(self.queue.get(), timeout)]
        except TimeoutError:
            return []
        while not self.queue.empty():
            got.append(self.queue.get_nowait())
        return got


class UniqueStatementNames:
    """SQLAlchemy's asyncpg dialect ``prepared_statement_name_func``: a fresh name per statement, so two server
    connections never hold a statement of the same name (its documented setting for PgBouncer)."""

    def __call__(self) -> str:
        return f"__dbm_{uuid.uuid4().hex}__"

    def __repr__(self) -> str:  # recorded in a cell's params: stable across runs
        return "uuid4 names"

    __str__ = __repr__


async def stream_batches(conn: Any, sql: str, args: Any, batch: int) -> AsyncIterator[list[tuple[Any, ...]]]:
    """An asyncpg cursor (a portal of a prepared statement, Execute with a row limit): ``batch`` rows per
    ``fetch``; asyncpg refuses to create one outside a transaction."""
    cursor = await conn.cursor(sql, *(args or ()))
    while rows := await cursor.fetch(batch):
        yield [tuple(r) for r in rows]


class AsyncpgSession(AsyncSession):
    def __init__(self, adapter: DriverAdapter, info: ConnectInfo):
        super().__init__(adapter, info)
        import asyncpg  # optional driver, imported when used

        try:
            self.conn = self._call(lambda: self.run(asyncpg.connect(**connect_kwargs(info))))
        except BaseException:
            self._owner.stop(1.0)  # the loop thread started above would otherwise outlive the failed open
            raise

    async def _aexecute(self, sql: str, params: Mapping[str, Any] | None, types: Mapping[str, Any] | None) -> Result:
        sql, args = translate(self.adapter, sql, params)
        if args is None and _COMMAND.match(sql) and not _RETURNING.search(sql):
            status = await self.conn.execute(sql)
            return Result([], [], rowcount_from_status(status))
        stmt = await self.conn.prepare(sql)
        records = await stmt.fetch(*(args or ()))
        columns = [attr.name for attr in stmt.get_attributes()]
        return Result(columns, [tuple(r) for r in records], rowcount_from_status(stmt.get_statusmsg()))

    async def _aclose(self) -> None:
        await self.conn.close(timeout=CONNECT_TIMEOUT_S)

    def begin_native(self, isolation: str) -> str:
        """``conn.transaction(isolation=...)`` and ``start()``; ended with that Transaction's commit/rollback, so
        asyncpg's own record of the open transaction (``_top_xact``) is cleared as in application code."""
        iso = self.checked_level(isolation)
        name = iso.replace(" ", "_")  # asyncpg's spelling: 'repeatable_read'
        conn, started = self.conn, []

        async def begin() -> str:
            try:
                tx = conn.transaction(isolation=name)
            except ValueError as exc:  # asyncpg refuses a level it does not know before sending anything
                raise DriverError(None, "ValueError", scrub(str(exc))) from None
            try:
                await tx.start()
            except BaseException:
                # a failed start() leaves the Transaction recorded as the connection's open one, so the next
                # conn.transaction() would take itself for a nested one; asyncpg's own reset clears it like this
                if conn._top_xact is tx:
                    conn._top_xact = None
                raise
            started.append(tx)
            return f"asyncpg conn.transaction(isolation={name!r}).start()"

        async def end(commit: bool) -> None:
            await (started[0].commit() if commit else started[0].rollback())

        return self._open_native(begin, end)

    def _stream(self, sql: str, params: Mapping[str, Any] | None, batch: int) -> Iterator[list[tuple[Any, ...]]]:
        sql, args = translate(self.adapter, sql, params)
        return self._within_transaction(self._drive(stream_batches(self.conn, sql, args, batch)))

    def _ahot_path(self, sql: str, params: Mapping[str, Any] | None) -> Callable[[], Any]:
        sql, args = translate(self.adapter, sql, params)
        args = args or []
        fetch = self.conn.fetch
        return lambda: fetch(sql, *args)


class AsyncpgAdapter(DriverAdapter):
    id = "asyncpg"
    kinds = PG_KINDS
    is_async = True
    paramstyle = paramstyles.NUMERIC_DOLLAR
    modules = ("asyncpg",)
    exceptions = ("asyncpg.PostgresError", "asyncpg.InterfaceError")
    distributions = ("asyncpg",)
    bench_shape = "asyncpg"
    sa_driver = "asyncpg"
    sa_modules = ("greenlet",)
    pooler_safe_options: ClassVar[dict[str, Any] | None] = {"statement_cache_size": 0}

    def open(self, info: ConnectInfo) -> AsyncpgSession:
        return AsyncpgSession(self, info)

    def normalise_error(self, exc: BaseException) -> DriverError | None:
        # asyncpg lets socket errors and its connect timeout through unwrapped (psycopg wraps them in
        # OperationalError), so map them here or a refused connection would escape as a raw OSError.
        if isinstance(exc, OSError | asyncio.TimeoutError) and not hasattr(exc, "sqlstate"):
            return socket_error(exc)
        return default_normalise(exc)

    def cancel_running(self, session: Session, raw: Any, fut: Any) -> None:
        # cancelling the step's task: asyncpg then sends the cancel request itself and keeps the connection
        session._owner.cancel_task(fut)

    def read_socket(self, raw: Any) -> int | None:
        # the transport's socket; shut down from another thread, the loop sees EOF and asyncpg fails the query
        return int(raw._transport.get_extra_info("socket").fileno())

    def notifier(self) -> Notifier:
        return AsyncpgNotifier()

    def sa_connect_args(self, info: ConnectInfo) -> dict[str, Any]:
        args: dict[str, Any] = {"timeout": CONNECT_TIMEOUT_S}
        if info.application_name:
            args["server_settings"] = {"application_name": info.application_name}
        return args

    def startup_options(self, settings: Mapping[str, str]) -> dict[str, Any]:
        return {"server_settings": dict(settings)}

    def sa_pooler_safe_options(self) -> dict[str, Any] | None:
        # SQLAlchemy's asyncpg dialect keeps its own statement cache and names statements itself
        return {"prepared_statement_cache_size": 0, "prepared_statement_name_func": UniqueStatementNames()}
