"""aiosqlite: sqlite3 behind an asyncio facade; every call hops to aiosqlite's own worker thread."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any, ClassVar

from .async_session import AsyncSession
from .dbapi import cursor_result, translate
from .protocol import ConnectInfo, Result
from .session import Session
from .sqlite3_driver import LEGACY_MODES, SQLiteKnowledge, legacy_begin_api, sqlite_connect_args


async def stream_batches(conn: Any, query: str, args: Any, batch: int) -> AsyncIterator[list[tuple[Any, ...]]]:
    """An aiosqlite cursor, ``batch`` rows per ``fetchmany`` (one hop to aiosqlite's thread per batch)."""
    cursor = await conn.execute(query, args if args is not None else ())
    try:
        while rows := await cursor.fetchmany(batch):
            yield list(rows)
    finally:
        await cursor.close()


class AiosqliteSession(AsyncSession):
    """One aiosqlite connection in autocommit mode (``isolation_level=None``), driven on the session's loop."""

    conn: Any = None

    async def _aexecute(self, sql: str, params: Mapping[str, Any] | None, types: Mapping[str, Any] | None) -> Result:
        query, args = translate(self.adapter, sql, params)
        cursor = await self.conn.execute(query, args if args is not None else ())
        try:
            return cursor_result(cursor, await cursor.fetchall() if cursor.description is not None else None)
        finally:
            await cursor.close()

    async def _aclose(self) -> None:
        if self.conn is not None:
            await self.conn.close()  # also ends aiosqlite's (non-daemon) worker thread

    def begin_native(self, isolation: str) -> str:
        """aiosqlite's ``conn.isolation_level = 'DEFERRED' | 'IMMEDIATE'`` (sqlite3's legacy transaction control;
        aiosqlite has no ``autocommit`` property). Put back after the transaction (``None`` for our sessions)."""
        iso = self.checked_level(isolation)
        conn, saved_level, saved_pragma = self.conn, self.conn.isolation_level, []

        async def restore() -> None:
            # aiosqlite's setter runs on the caller's thread, and sqlite3 refuses ``None`` there (switching to None
            # commits, which only the connection's own thread may do): so it is set on aiosqlite's worker thread.
            await conn._execute(setattr, conn._conn, "isolation_level", saved_level)
            if saved_pragma:
                await conn.execute_fetchall(f"PRAGMA read_uncommitted = {int(saved_pragma[0])}")

        async def apply() -> None:
            if iso == "read uncommitted":
                saved_pragma.append((await conn.execute_fetchall("PRAGMA read_uncommitted"))[0][0])
                await conn.execute_fetchall("PRAGMA read_uncommitted = 1")
            conn.isolation_level = LEGACY_MODES[iso]

        return self._open_with_settings(conn, apply, restore, legacy_begin_api("aiosqlite", iso))

    def _stream(self, sql: str, params: Mapping[str, Any] | None, batch: int) -> Iterator[list[tuple[Any, ...]]]:
        query, args = translate(self.adapter, sql, params)
        return self._drive(stream_batches(self.conn, query, args, batch))

    def _ahot_path(self, sql: str, params: Mapping[str, Any] | None) -> Callable[[], Any]:
        query, args = translate(self.adapter, sql, params)
        conn, bound = self.conn, (args if args is not None else ())
        # execute_fetchall is aiosqlite's one-hop call: execute and fetch in a single trip to its thread.
        return lambda: conn.execute_fetchall(query, bound)

    def raw_sqlite3(self) -> Any:
        return self.conn._conn if self.conn is not None else None  # created on aiosqlite's own thread


class AiosqliteAdapter(SQLiteKnowledge):
    id: ClassVar[str] = "aiosqlite"
    is_async: ClassVar[bool] = True
    modules: ClassVar[tuple[str, ...]] = ("aiosqlite",)
    distributions: ClassVar[tuple[str, ...]] = ("aiosqlite",)
    profile_modules: ClassVar[tuple[str, ...]] = ("aiosqlite", "sqlite3", "_queue")  # its hop to its thread: a queue
    bench_shape: ClassVar[str] = "async-cursor"
    sa_driver: ClassVar[str | None] = "aiosqlite"
    sa_modules: ClassVar[tuple[str, ...]] = ("greenlet",)

    def open(self, info: ConnectInfo) -> Session:
        aiosqlite = importlib.import_module("aiosqlite")
        path, kwargs = sqlite_connect_args(info)
        session = AiosqliteSession(self, info)

        async def connect() -> Any:
            # sqlite3.connect runs on aiosqlite's worker thread, which then owns the connection.
            return await aiosqlite.connect(path, **kwargs)

        try:
            session.conn = session._call(lambda: session.run(connect()))
        except BaseException:
            session.close()  # stops the loop thread this session started
            raise
        return session
