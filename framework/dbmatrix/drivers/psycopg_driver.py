"""psycopg 3 over libpq, sync (``psycopg``) and asyncio (``psycopg-async``, a small subclass).

Connected with psycopg's defaults on purpose: ``prepare_threshold=5`` means the 6th execution of the same
query on a connection becomes a named server-side prepared statement ``_pg3_<n>`` (``n`` counting per
connection), which is what breaks behind PgBouncer < 1.21 in transaction pooling — dbmatrix records that.
Statements without parameters use the simple query protocol (psycopg's choice), so session setup works there.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any

from ..redaction import register_secret
from . import params as paramstyles
from .base import (
    CONNECT_TIMEOUT_S,
    AsyncSession,
    ConnectInfo,
    DriverAdapter,
    Result,
    Session,
    cursor_result,
    translate,
    with_options,
)


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
    from psycopg import sql

    return sql.SQL("LISTEN {}").format(sql.Identifier(channel))


def listen_on(conn: Any, channel: str) -> None:
    conn.execute(listen_statement(channel))


async def alisten_on(conn: Any, channel: str) -> None:
    await conn.execute(listen_statement(channel))


def notifications_of(conn: Any, timeout: float) -> list[tuple[str, str]]:
    """Wait up to ``timeout`` s for the first notification, then take whatever else has arrived (psycopg >= 3.2:
    ``notifies(timeout=, stop_after=)``; ones received during other statements wait in psycopg's backlog)."""
    got = [(n.channel, n.payload) for n in conn.notifies(timeout=timeout, stop_after=1)]
    if got:
        got += [(n.channel, n.payload) for n in conn.notifies(timeout=0)]  # timeout=0 polls once
    return got


async def anotifications_of(conn: Any, timeout: float) -> list[tuple[str, str]]:
    """``notifications_of`` for an ``AsyncConnection``."""
    got = [(n.channel, n.payload) async for n in conn.notifies(timeout=timeout, stop_after=1)]
    if got:
        got += [(n.channel, n.payload) async for n in conn.notifies(timeout=0)]
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


class LibpqSession(Session):
    """What a psycopg and a psycopg2 session share: both are libpq underneath, with the same cursor API, the same
    libpq cancel (``drivers/cancel.py``) and the same shape of notification and named-cursor APIs; a subclass opens
    the connection and names its module's ``listen_on`` / ``notifications_of`` / ``stream_batches``."""

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
    def listen_on(conn: Any, channel: str) -> None:
        raise NotImplementedError

    @staticmethod
    def notifications_of(conn: Any, timeout: float) -> list[tuple[str, str]]:
        raise NotImplementedError

    @staticmethod
    def stream_batches(conn: Any, sql: Any, args: Any, batch: int) -> Iterator[list[tuple[Any, ...]]]:
        raise NotImplementedError

    def _execute(self, sql: str, params: Mapping[str, Any] | None, types: Mapping[str, Any] | None) -> Result:
        sql, args = translate(self.adapter, sql, params)
        cur = self.conn.cursor()
        cur.execute(sql, args)
        return cursor_result(cur)

    def _close(self) -> None:
        self.conn.close()

    def hot_path(self, sql: str, params: Mapping[str, Any] | None = None) -> Callable[[], Any]:
        sql, args = translate(self.adapter, sql, params)
        cur = self.conn.cursor()

        def call() -> Any:
            cur.execute(sql, args)
            return cur.fetchall() if cur.description is not None else None

        return call

    def _listen(self, channel: str) -> None:
        self.listen_on(self.conn, channel)

    def _notifications(self, timeout: float) -> list[tuple[str, str]]:
        return self.notifications_of(self.conn, timeout)

    def _stream(self, sql: str, params: Mapping[str, Any] | None, batch: int) -> Iterator[list[tuple[Any, ...]]]:
        sql, args = translate(self.adapter, sql, params)
        return self._within_transaction(self.stream_batches(self.conn, sql, args, batch))


def isolation_level(isolation: str) -> Any:
    """psycopg's ``IsolationLevel`` member for a lower-case level name."""
    from psycopg import IsolationLevel

    return IsolationLevel[isolation.upper().replace(" ", "_")]


class PsycopgSession(LibpqSession):
    listen_on = staticmethod(listen_on)
    notifications_of = staticmethod(notifications_of)
    stream_batches = staticmethod(stream_batches)

    def open_connection(self, info: ConnectInfo) -> Any:
        import psycopg

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
        import psycopg

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

    def _listen(self, channel: str) -> None:
        self.run(alisten_on(self.conn, channel))

    def _notifications(self, timeout: float) -> list[tuple[str, str]]:
        return self.run(anotifications_of(self.conn, timeout))

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


class PsycopgAdapter(DriverAdapter):
    id = "psycopg"
    kinds = frozenset({"postgresql", "cockroachdb"})  # CockroachDB speaks the PostgreSQL wire protocol
    paramstyle = paramstyles.PYFORMAT
    modules = ("psycopg",)
    session_class: type[Session] = PsycopgSession

    def open(self, info: ConnectInfo) -> Session:
        return self.session_class(self, info)


class PsycopgAsyncAdapter(PsycopgAdapter):
    id = "psycopg-async"
    is_async = True
    session_class = PsycopgAsyncSession
