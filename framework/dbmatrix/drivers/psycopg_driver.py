"""psycopg 3 over libpq, sync (``psycopg``) and asyncio (``psycopg-async``, a small subclass).

Connected with psycopg's defaults on purpose: ``prepare_threshold=5`` means the 6th execution of the same
query on a connection becomes a named server-side prepared statement ``_pg3_<n>`` (``n`` counting per
connection), which is what breaks behind PgBouncer < 1.21 in transaction pooling — dbmatrix records that.
Statements without parameters use the simple query protocol (psycopg's choice), so session setup works there.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any, ClassVar

from ..redaction import register_secret
from . import params as paramstyles
from .async_session import AsyncSession
from .dbapi import DBAPISession, cursor_result, translate
from .protocol import CONNECT_TIMEOUT_S, PG_KINDS, ConnectInfo, DriverAdapter, Notifier, Result, with_options
from .session import Session


def libpq_kwargs(info: ConnectInfo) -> dict[str, Any]:
    """libpq connection keywords from the URL; every ``?key=value`` (host, sslmode, ...) goes to libpq as is."""
    url = info.url
    register_secret(url.password)
    kwargs: dict[str, Any] = {
        "host": url.host,
        "port": url.port,
        "user": url.username,
        "password": url.password,
        "dbname": url.database,
        "connect_timeout": CONNECT_TIMEOUT_S,
        "application_name": info.application_name or None,
    }
    # URL query wins (it is how a unix socket dir is given: postgresql://u@/db?host=/run/postgresql);
    # repeated keys become libpq's comma lists (multi-host URLs).
    kwargs.update({k: v if isinstance(v, str) else ",".join(v) for k, v in url.query.items()})
    return with_options({k: v for k, v in kwargs.items() if v is not None}, info)


# --- notifications and streaming, shared with the SQLAlchemy layers (they pass the raw psycopg connection) -------
_cursor_numbers = itertools.count(1)


def cursor_name() -> str:
    """A server-side cursor name unique in this process (cursor names are per connection; unique is simplest)."""
    return f"dbm_stream_{next(_cursor_numbers)}"


def listen_statement(channel: str) -> Any:
    """``LISTEN "channel"`` with the channel quoted as an identifier by psycopg."""
    from psycopg import sql  # optional driver, imported when used

    return sql.SQL("LISTEN {}").format(sql.Identifier(channel))


class PsycopgNotifier(Notifier):
    """psycopg's ``conn.notifies(timeout=, stop_after=)`` (psycopg >= 3.2); notifications received during other
    statements wait in psycopg's backlog."""

    def listen(self, raw: Any, channel: str) -> None:
        raw.execute(listen_statement(channel))

    def received(self, raw: Any, timeout: float) -> list[tuple[str, str]]:
        got = [(n.channel, n.payload) for n in raw.notifies(timeout=timeout, stop_after=1)]
        if got:
            got += [(n.channel, n.payload) for n in raw.notifies(timeout=0)]  # timeout=0 polls once
        return got


class PsycopgAsyncNotifier(Notifier):
    """``PsycopgNotifier`` for an ``AsyncConnection``."""

    async def listen(self, raw: Any, channel: str) -> None:
        await raw.execute(listen_statement(channel))

    async def received(self, raw: Any, timeout: float) -> list[tuple[str, str]]:
        got = [(n.channel, n.payload) async for n in raw.notifies(timeout=timeout, stop_after=1)]
        if got:
            got += [(n.channel, n.payload) async for n in raw.notifies(timeout=0)]
        return got


def stream_batches(conn: Any, sql: Any, args: Any, batch: int) -> Iterator[list[tuple[Any, ...]]]:
    """A named (server-side) cursor: DECLARE, then FETCH ``batch`` rows at a time; needs an open transaction."""
    with conn.cursor(name=cursor_name()) as cur:
        cur.execute(sql, args)
        while rows := cur.fetchmany(batch):
            yield rows


async def astream_batches(conn: Any, sql: Any, args: Any, batch: int) -> AsyncIterator[list[tuple[Any, ...]]]:
    """``stream_batches`` for an ``AsyncConnection``."""
    async with conn.cursor(name=cursor_name()) as cur:
        await cur.execute(sql, args)
        while rows := await cur.fetchmany(batch):
            yield rows


class LibpqSession(DBAPISession):
    """What a psycopg and a psycopg2 session share: both are libpq underneath, with the same cursor API and the
    same shape of named-cursor API; a subclass opens the connection and names its module's ``stream_batches``."""

    def __init__(self, adapter: DriverAdapter, info: ConnectInfo):
        super().__init__(adapter, info)
        try:
            self.conn = self._call(lambda: self.open_connection(info))
        except BaseException:
            self._owner.stop(1.0)  # the worker thread started above would otherwise outlive the failed open
            raise

    def open_connection(self, info: ConnectInfo) -> Any:
        raise NotImplementedError

    @staticmethod
    def stream_batches(conn: Any, sql: Any, args: Any, batch: int) -> Iterator[list[tuple[Any, ...]]]:
        raise NotImplementedError

    def _stream(self, sql: str, params: Mapping[str, Any] | None, batch: int) -> Iterator[list[tuple[Any, ...]]]:
        sql, args = translate(self.adapter, sql, params)
        return self._within_transaction(self.stream_batches(self.conn, sql, args, batch))


def isolation_level(isolation: str) -> Any:
    """psycopg's ``IsolationLevel`` member for a lower-case level name."""
    from psycopg import IsolationLevel  # optional driver, imported when used

    return IsolationLevel[isolation.upper().replace(" ", "_")]


class PsycopgSession(LibpqSession):
    stream_batches = staticmethod(stream_batches)

    def open_connection(self, info: ConnectInfo) -> Any:
        import psycopg  # optional driver, imported when used

        return psycopg.connect(autocommit=True, **libpq_kwargs(info))

    def begin_native(self, isolation: str) -> str:
        """``conn.autocommit = False`` and ``conn.isolation_level = IsolationLevel.X``: psycopg then sends
        ``BEGIN ISOLATION LEVEL X`` itself before the next statement. Both settings are put back afterwards."""
        level = isolation_level(self.checked_level(isolation))
        conn = self.conn
        saved = (conn.autocommit, conn.isolation_level)

        def apply() -> None:
            conn.autocommit = False
            conn.isolation_level = level

        def restore() -> None:
            conn.isolation_level = saved[1]
            conn.autocommit = saved[0]

        return self._open_with_settings(conn, apply, restore, "psycopg conn.autocommit = False; "
                                        f"conn.isolation_level = IsolationLevel.{level.name}")


class PsycopgAsyncSession(AsyncSession):
    def __init__(self, adapter: DriverAdapter, info: ConnectInfo):
        super().__init__(adapter, info)
        import psycopg  # optional driver, imported when used

        try:
            self.conn = self._call(
                lambda: self.run(psycopg.AsyncConnection.connect(autocommit=True, **libpq_kwargs(info)))
            )
        except BaseException:
            self._owner.stop(1.0)  # stop the loop thread started above
            raise

    async def _aexecute(self, sql: str, params: Mapping[str, Any] | None, types: Mapping[str, Any] | None) -> Result:
        sql, args = translate(self.adapter, sql, params)
        cur = await self.conn.execute(sql, args)
        return cursor_result(cur, await cur.fetchall() if cur.description is not None else None)

    async def _aclose(self) -> None:
        await self.conn.close()

    def begin_native(self, isolation: str) -> str:
        """``await conn.set_autocommit(False)`` and ``await conn.set_isolation_level(IsolationLevel.X)`` (an
        AsyncConnection refuses the attribute setters); psycopg sends the BEGIN before the next statement."""
        level = isolation_level(self.checked_level(isolation))
        conn = self.conn
        saved = (conn.autocommit, conn.isolation_level)

        async def apply() -> None:
            await conn.set_autocommit(False)
            await conn.set_isolation_level(level)

        async def restore() -> None:
            await conn.set_isolation_level(saved[1])
            await conn.set_autocommit(saved[0])

        return self._open_with_settings(conn, apply, restore, "psycopg await conn.set_autocommit(False); "
                                        f"await conn.set_isolation_level(IsolationLevel.{level.name})")

    def _stream(self, sql: str, params: Mapping[str, Any] | None, batch: int) -> Iterator[list[tuple[Any, ...]]]:
        sql, args = translate(self.adapter, sql, params)
        return self._within_transaction(self._drive(astream_batches(self.conn, sql, args, batch)))

    def _ahot_path(self, sql: str, params: Mapping[str, Any] | None) -> Callable[[], Any]:
        sql, args = translate(self.adapter, sql, params)
        cur = self.conn.cursor()

        async def call() -> Any:
            await cur.execute(sql, args)
            return await cur.fetchall() if cur.description is not None else None

        return call


class LibpqKnowledge(DriverAdapter):
    """What the libpq drivers (psycopg, psycopg2) declare alike."""

    kinds: ClassVar[frozenset[str]] = PG_KINDS
    paramstyle: ClassVar[str] = paramstyles.PYFORMAT

    def cancel_running(self, session: Session, raw: Any, fut: Any) -> None:
        raw.cancel()  # libpq's cancel request, safe from another thread


class PsycopgAdapter(LibpqKnowledge):
    id = "psycopg"
    modules = ("psycopg",)
    exceptions = ("psycopg.Error",)
    distributions = ("psycopg", "psycopg-binary")
    profile_modules = ("psycopg", "psycopg_binary", "psycopg_c")
    sa_driver = "psycopg"
    pooler_safe_options: ClassVar[dict[str, Any] | None] = {"prepare_threshold": None}
    session_class: type[Session] = PsycopgSession

    def open(self, info: ConnectInfo) -> Session:
        return self.session_class(self, info)

    def read_socket(self, raw: Any) -> int | None:
        return int(raw.pgconn.socket)  # libpq's own socket (PQsocket), sync and asyncio connections alike

    def notifier(self) -> Notifier:
        return PsycopgNotifier()


class PsycopgAsyncAdapter(PsycopgAdapter):
    id = "psycopg-async"
    is_async = True
    bench_shape = "async-cursor"
    sa_modules = ("greenlet",)
    session_class = PsycopgAsyncSession

    def notifier(self) -> Notifier:
        return PsycopgAsyncNotifier()
