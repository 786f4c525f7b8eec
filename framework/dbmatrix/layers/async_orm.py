"""What the asyncio ORM layers (``tortoise+``, ``piccolo+``) share: a session that is the async DBAPI adapter's own
with the ORM attached to its connection, the ORM's exceptions unwrapped to that adapter's codes, and a kit whose
operations are coroutines run as tasks on the session's event loop.

Adoption: both ORMs normally open their connections themselves (a pool, or one connection per query); here they
are handed the connection the DBAPI adapter opened (its timeouts, ``application_name``, error mapping), through
the object they would have taken a connection from (``OnePool``: a pool of that one connection; ``Unclosable``:
the connection, whose ``close()`` leaves it to the session). Plain SQL of a session runs on the DBAPI adapter's
path unchanged, so these layers are judged by ``orm.*`` only (``cases``): any other case would copy the driver's
column.
"""

from __future__ import annotations

import asyncio
import contextvars
import importlib
from collections.abc import Awaitable, Callable, Generator
from typing import Any, ClassVar

from ..drivers.base import ConnectInfo, DriverAdapter, Layer, Session
from ..engines import engine_for
from .ormkit import OrmKit


class Unclosable:
    """``conn`` for an ORM that closes what it opened: ``close()`` is a no-op (the session closes it)."""

    def __init__(self, conn: Any):
        object.__setattr__(self, "_conn", conn)

    async def close(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._conn, name, value)  # e.g. Piccolo's ``connection.row_factory = dict_factory``

    async def __aenter__(self) -> Unclosable:
        return self

    async def __aexit__(self, *exc: object) -> None:
        pass


class _Acquired:
    """What ``pool.acquire()`` returns in asyncpg: awaitable and an async context manager."""

    def __init__(self, conn: Any):
        self.conn = conn

    def __await__(self) -> Generator[Any, None, Any]:
        yield from ()
        return self.conn

    async def __aenter__(self) -> Any:
        return self.conn

    async def __aexit__(self, *exc: object) -> None:
        pass


class OnePool:
    """A pool (asyncpg's / asyncmy's shape) holding the one connection the DBAPI adapter opened."""

    def __init__(self, conn: Any):
        self.conn = conn

    def acquire(self) -> _Acquired:
        return _Acquired(self.conn)

    async def release(self, conn: Any, *args: Any) -> None:
        pass

    def close(self) -> None:
        pass

    async def wait_closed(self) -> None:
        pass

    async def expire_connections(self) -> None:
        pass


def orm_cause(exc: BaseException) -> BaseException | None:
    """The DBAPI exception an ORM exception wraps (``OperationalError(exc)``, ``raise ... from exc``)."""
    inner = exc.args[0] if exc.args and isinstance(exc.args[0], BaseException) else None
    return inner or exc.__cause__ or exc.__context__


class AsyncOrmLayer(Layer):
    """An asyncio ORM over an async DBAPI adapter; subclasses set ``SITS_ON`` and implement ``attach``."""

    SITS_ON: ClassVar[frozenset[str]] = frozenset()
    cases: ClassVar[tuple[str, ...]] = ("orm.*",)  # plain SQL goes to the DBAPI as written: its own column
    cases_by_default: ClassVar[tuple[str, ...]] = ("orm.*",)
    kit_class: ClassVar[str] = ""  # "module:Class" of the layer's OrmKit

    def __init__(self, under: DriverAdapter):
        super().__init__(under)
        self.modules = (*under.modules, *self.layer_modules())  # type: ignore[misc]  # the driver's first
        self.server_cursor = under.server_cursor  # type: ignore[misc]  # the session is the DBAPI's own
        self.pooler_safe_options = under.pooler_safe_options  # type: ignore[misc]
        self.bench_shape = under.bench_shape  # type: ignore[misc]

    @classmethod
    def layer_modules(cls) -> tuple[str, ...]:
        return cls.layer_distributions

    @classmethod
    def can_sit_on(cls, dbapi: DriverAdapter) -> bool:
        return dbapi.id in cls.SITS_ON and dbapi.layer == "dbapi"

    def open(self, info: ConnectInfo) -> Session:
        session = self.under.open(info)
        session.adapter = self  # errors and cancels go through the layer, which asks the adapter under it
        try:
            session.orm = session._do(lambda: self.attach(session))  # type: ignore[attr-defined]
        except BaseException:
            session.close()
            raise
        return session

    def attach(self, session: Session) -> Awaitable[Any]:
        """A coroutine, run on the session's loop: the ORM's object that uses ``session``'s connection."""
        raise NotImplementedError

    def wrapped_cause(self, exc: BaseException) -> BaseException | None:
        return orm_cause(exc)

    def orm_kit(self, session: Session, prefix: str) -> Any:
        module, _, name = self.kit_class.partition(":")
        return getattr(importlib.import_module(module), name)(session, prefix)


class AsyncOrmKit(OrmKit):
    """Operations are coroutine functions; ``_op`` makes each one task of the session's loop.

    Both ORMs keep their open transaction in context variables, and a transaction of the cases spans operations
    (``lock_step`` ... ``end``): so every operation of a kit runs in one ``contextvars.Context`` of the kit's own,
    as the statements of one request handler would."""

    def __init__(self, session: Session, prefix: str):
        super().__init__(session, prefix)
        self._context = contextvars.Context()

    def _op(self, fn: Callable[[], Any]) -> Any:
        return lambda: self._around(fn)

    async def _around(self, fn: Callable[[], Awaitable[Any]]) -> Any:
        """Runs one operation in the kit's context (a subclass enters the ORM's state around it)."""
        return await asyncio.get_running_loop().create_task(self._inside(fn), context=self._context)

    async def _inside(self, fn: Callable[[], Awaitable[Any]]) -> Any:
        return await fn()

    def count_statements(self) -> None:
        """Count at the driver: asyncpg's query logger (one call per statement it sends), SQLite's trace callback
        (every statement SQLite runs), the MySQL connection's ``query()`` (what its cursors call per statement)."""
        self.statements = 0
        if getattr(self, "_counting", None) is self.session.driver_connection():
            return  # already counting on this connection: only the count starts again
        conn, adapter = self.session.driver_connection(), self.session.adapter.under.id
        self._counting = conn

        def counted(*_args: Any) -> None:
            self.statements += 1

        async def install() -> None:
            if adapter == "asyncpg":
                conn.add_query_logger(counted)
            elif adapter == "aiosqlite":
                await conn._execute(conn._conn.set_trace_callback, counted)
            else:
                query = conn.query

                async def counting(sql: Any, *args: Any, **kwargs: Any) -> Any:
                    counted()
                    return await query(sql, *args, **kwargs)

                conn.query = counting

        self.session._do(install)


def reconnect(session: Session, options: dict[str, Any]) -> None:
    """Reopen ``session``'s asyncpg connection with ``options`` added (a pooler fix is a connect option), and run
    the engine's session setup on it as ``DriverAdapter.connect`` does."""
    import asyncpg

    from ..drivers.asyncpg_driver import connect_kwargs

    old = session.driver_connection()
    session.info.options = {**session.info.options, **options}

    async def swap() -> None:
        session.conn = await asyncpg.connect(**connect_kwargs(session.info))  # type: ignore[attr-defined]
        await old.close()

    session._do(swap)
    for stmt in engine_for(session.info.kind, session.info.engine).session_setup(session.info) + session.info.init_sql:
        session.execute(stmt)
