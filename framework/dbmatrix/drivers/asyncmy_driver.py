"""asyncmy: asyncio MySQL/MariaDB driver (a Cython port of PyMySQL); client-side interpolation, no server prepare."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any, ClassVar

from ..engines.mysql import with_utf8_password
from .async_session import AsyncSession
from .dbapi import cursor_result, translate
from .mysql_common import MySQLKnowledge, SessionLevel, connect_errors, connect_kwargs
from .protocol import ConnectInfo, Result
from .session import Session


async def stream_batches(conn: Any, cursor_class: Any, query: str, args: Any,
                         batch: int) -> AsyncIterator[list[tuple[Any, ...]]]:
    """The driver's unbuffered ``SSCursor``, ``batch`` rows per ``fetchmany``; closing it drains what is left."""
    async with conn.cursor(cursor_class) as cursor:
        await cursor.execute(query, args)
        while rows := await cursor.fetchmany(batch):
            yield rows


class AsyncmySession(AsyncSession):
    """One autocommit connection of asyncmy (or aiomysql: the same PyMySQL-shaped asyncio API), driven on the
    session's own event loop."""

    conn: Any = None

    async def _aexecute(self, sql: str, params: Mapping[str, Any] | None, types: Mapping[str, Any] | None) -> Result:
        query, args = translate(self.adapter, sql, params)
        async with self.conn.cursor() as cursor:
            await cursor.execute(query, args)
            return cursor_result(cursor, await cursor.fetchall() if cursor.description is not None else None)

    async def _aclose(self) -> None:
        if self.conn is not None:
            await self.conn.ensure_closed()  # sends QUIT; tears down locally if the peer is gone

    def begin_native(self, isolation: str) -> str:
        how, conn = SessionLevel.of(self, isolation), self.conn

        async def query(sql: str, args: Any = None) -> Any:
            async with conn.cursor() as cursor:
                await cursor.execute(sql, args)
                return await cursor.fetchall()

        saved = self.run(query(how.read))[0][0]

        async def apply() -> None:
            await query(how.apply)
            await conn.begin()

        return self._open_with_settings(conn, apply, lambda: query(how.restore, (saved,)), how.api)

    def _stream(self, sql: str, params: Mapping[str, Any] | None, batch: int) -> Iterator[list[tuple[Any, ...]]]:
        query, args = translate(self.adapter, sql, params)
        # asyncmy.cursors.SSCursor / aiomysql.cursors.SSCursor: the same class name in both drivers
        cursor_class = importlib.import_module(f"{self.adapter.modules[0]}.cursors").SSCursor
        return self._drive(stream_batches(self.conn, cursor_class, query, args, batch))

    def _ahot_path(self, sql: str, params: Mapping[str, Any] | None) -> Callable[[], Any]:
        query, args = translate(self.adapter, sql, params)
        conn = self.conn

        async def once() -> Any:
            async with conn.cursor() as cursor:
                await cursor.execute(query, args)
                return await cursor.fetchall()

        return once


class AsyncmyAdapter(MySQLKnowledge):
    id: ClassVar[str] = "asyncmy"
    is_async: ClassVar[bool] = True
    modules: ClassVar[tuple[str, ...]] = ("asyncmy",)
    exceptions: ClassVar[tuple[str, ...]] = ("asyncmy.errors.MySQLError",)
    distributions: ClassVar[tuple[str, ...]] = ("asyncmy",)
    bench_shape: ClassVar[str] = "async-cursor"
    sa_driver: ClassVar[str | None] = "asyncmy"
    sa_modules: ClassVar[tuple[str, ...]] = ("greenlet",)

    def connect_kwargs(self, info: ConnectInfo) -> dict[str, Any]:
        return with_utf8_password(connect_kwargs(info))

    def open(self, info: ConnectInfo) -> Session:
        module = importlib.import_module(self.modules[0])
        session = AsyncmySession(self, info)

        async def connect() -> Any:
            return await module.connect(**self.connect_kwargs(info))

        try:
            with connect_errors(self):
                session.conn = session.run(connect())
        except BaseException:
            session.close()  # stops the loop thread this session started
            raise
        return session
