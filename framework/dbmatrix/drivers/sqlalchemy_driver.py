"""SQLAlchemy Core and ORM layered over any DBAPI driver: ``sa-core+<dbapi>`` and ``sa-orm+<dbapi>``.

What a case records here is what a SQLAlchemy user gets: statements go through ``text()`` (which takes
``:name`` natively), values come back after SQLAlchemy's own type processing when ``types`` is given, and
transactions are SQLAlchemy's (``begin``/``commit``/``rollback`` with the ``isolation_level`` execution option),
not SQL we send ourselves.

One session owns exactly one DBAPI connection (``NullPool`` and a single ``Connection``; the ORM ``Session`` is
bound to that ``Connection``, because binding it to the engine would open a new connection per transaction).
Between transactions the connection is at ``isolation_level='AUTOCOMMIT'``, like the DBAPI adapters.

SQLite: sqlite3/aiosqlite do not emit BEGIN for every statement (legacy transaction control), so we apply the
recipe from SQLAlchemy's SQLite docs ("Enabling Non-Legacy SQLite Transactional Modes"): the DBAPI's own BEGIN
is disabled and a ``begin`` event listener emits it. The listener emits the lock mode the case asked for, so
``immediate``/``exclusive`` work through SQLAlchemy's own transaction too (SQLAlchemy has no isolation level
for them); ``read uncommitted`` is SQLAlchemy's ``READ UNCOMMITTED`` (``PRAGMA read_uncommitted``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar

from sqlalchemy import create_engine, event, text
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError, StatementError
from sqlalchemy.pool import NullPool

from ..engines import IsolationUnsupported
from ..errors import DriverError
from . import params
from .async_session import AsyncSession
from .dbapi import translate
from .normalise import default_normalise, first_line
from .protocol import PG_KINDS, ConnectInfo, DriverAdapter, Layer, Result, begin_statements, with_options
from .session import Session
from .sqlalchemy_sql import result_of, statement, streaming, text_sql

# SQLAlchemy dialect name per target kind; CockroachDB needs the third-party sqlalchemy-cockroachdb dialect.
_DIALECTS = {"postgresql": "postgresql", "cockroachdb": "cockroachdb", "mysql": "mysql", "sqlite": "sqlite"}
COCKROACH_MODULE = "sqlalchemy_cockroachdb"

AUTOCOMMIT = "AUTOCOMMIT"
_SQLITE_BEGIN = "dbmatrix_sqlite_begin"  # our execution option: the BEGIN statement the listener emits


def _sqlite_no_dbapi_begin(dbapi_connection: Any, connection_record: Any) -> None:
    # SQLAlchemy's recipe: stop sqlite3's own (legacy) BEGIN handling; the ``begin`` listener emits BEGIN.
    dbapi_connection.isolation_level = None


def _sqlite_emit_begin(conn: Any) -> None:
    # In AUTOCOMMIT mode SQLAlchemy still "autobegins"; emitting BEGIN then would end autocommit.
    opts = conn.get_execution_options()
    if opts.get("isolation_level") != AUTOCOMMIT:
        conn.exec_driver_sql(opts.get(_SQLITE_BEGIN, "BEGIN"))


class SQLAlchemyOps:
    """Every SQLAlchemy session method, written once against the *sync* API (``Connection``, ORM ``Session``).

    A sync engine's session runs each operation on its worker thread; an async engine's session runs the same
    function on its loop through ``AsyncConnection.run_sync`` — SQLAlchemy's greenlet bridge, the very path its own
    ``await conn.execute()`` takes — so there is one implementation, not a sync and an async half.
    ``self.conn``/``self.orm``/``self.executor`` are the sync objects in both cases.
    """

    adapter: SQLAlchemyAdapter
    engine: Any
    conn: Any
    orm: Any
    executor: Any
    info: ConnectInfo
    in_transaction: bool

    def _sa(self, fn: Callable[[], Any]) -> Any:
        """``fn`` as one owner operation (sync: itself; async: a coroutine function running it in a greenlet)."""
        raise NotImplementedError

    def _statement(self, sql: str, params: Mapping[str, Any] | None, types: Mapping[str, Any] | None) -> Any:
        return self._sa(lambda: self._execute(sql, params, types))

    def _execute(self, sql: str, params: Mapping[str, Any] | None, types: Mapping[str, Any] | None) -> Result:
        query, args = translate(self.adapter, sql, params)
        return result_of(self.executor.execute(statement(query, types), args or {}))

    def begin(self, isolation: str | None = None) -> None:
        opts = self.adapter.transaction_options(self.info.kind, isolation, self.engine.dialect, self.info.engine)
        try:
            self._do(self._sa(lambda: self._begin(opts)))
        except BaseException:
            if not self.in_transaction:  # (a begin() inside a transaction is SQLAlchemy's error; keep that one open)
                self._restore_quietly()  # e.g. SQLITE_BUSY on BEGIN IMMEDIATE: back to autocommit, not half-begun
            raise
        self.in_transaction = True

    def begin_native(self, isolation: str) -> str:
        """SQLAlchemy's own way is what ``begin`` does already: the ``isolation_level`` execution option."""
        self.begin(isolation)
        level = self.adapter.transaction_options(self.info.kind, isolation, self.engine.dialect,
                                                 self.info.engine)["isolation_level"]
        how = (f"SQLAlchemy conn.execution_options(isolation_level={level!r}).begin()" if self.orm is None else
               "SQLAlchemy ORM session.begin(); session.connection(execution_options="
               f"{{'isolation_level': {level!r}}})")
        if self.info.kind == "sqlite":  # SQLAlchemy has no level for SQLite's modes: the documented begin-event recipe
            how += f" with a 'begin' event emitting {begin_statements(self.info.kind, isolation, self.info.engine)[-1]}"
        return how

    def _begin(self, opts: dict[str, Any]) -> None:
        if self.executor.in_transaction() and not self.in_transaction:
            self.executor.commit()  # the no-op transaction SQLAlchemy autobegan in AUTOCOMMIT mode
        try:
            self._begin_at(opts)
        except ArgumentError as exc:  # e.g. SQLAlchemy's asyncpg dialect has no READ UNCOMMITTED
            if "isolation_level" not in str(exc):
                raise
            dialect = self.engine.dialect
            raise IsolationUnsupported(f"SQLAlchemy's {dialect.name}+{dialect.driver} dialect",
                                       str(opts["isolation_level"]).lower(), detail=first_line(exc)) from None

    def _begin_at(self, opts: dict[str, Any]) -> None:
        if self.orm is None:
            self.conn.execution_options(**opts)
            self.conn.begin()
        else:
            self.orm.begin()
            self.orm.connection(execution_options=opts)  # how ORM users set the level; starts the transaction

    def commit(self) -> None:
        self._end(lambda: self.executor.commit())

    def rollback(self) -> None:
        self._end(lambda: self.executor.rollback())

    def _end(self, finish: Callable[[], None]) -> None:
        try:
            self._do(self._sa(finish))
        except BaseException:
            self._restore_quietly()  # the COMMIT's own error is the finding, not a failure to clean up after it
            raise
        finally:
            self.in_transaction = False
        self._do(self._sa(lambda: self.conn.execution_options(isolation_level=AUTOCOMMIT)))

    def _restore_quietly(self) -> None:
        try:
            self._do(self._sa(self._reset))
        except Exception:  # noqa: BLE001 - the original error is what the caller reports
            pass

    def _reset(self) -> None:
        # After a failed COMMIT SQLAlchemy keeps an inactive transaction that needs rollback(), and that rollback()
        # sends nothing to the DBAPI; but SQLite keeps its transaction open when COMMIT fails (deferred foreign
        # key). A pooled connection would be rolled back on return to the pool: we do the same, as the pool does.
        self.executor.rollback()
        self.conn.connection.dbapi_connection.rollback()
        self.conn.execution_options(isolation_level=AUTOCOMMIT)

    def driver_connection(self) -> Any:
        try:
            return self.conn.connection.driver_connection if self.conn is not None else None
        except SQLAlchemyError:  # invalidated (e.g. after a cancelled step): there is no driver connection now
            return None

    def raw_sqlite3(self) -> Any:
        raw = self.driver_connection()
        return getattr(raw, "_conn", raw)  # aiosqlite keeps its sqlite3 connection as ``_conn``

    # --- streaming: SQLAlchemy's stream_results (notifications: the DBAPI adapter's notifier on the raw connection)
    def _stream(self, sql: str, params: Mapping[str, Any] | None, batch: int) -> Iterator[Sequence[tuple[Any, ...]]]:
        query, args = translate(self.adapter, sql, params)
        batches = self._stepped(self._stream_batches(streaming(query, batch), args or {}, batch))
        # PostgreSQL's server-side cursors live in a transaction (SQLAlchemy's own here, as a user would open)
        return self._within_transaction(batches) if self.info.kind in PG_KINDS else batches

    def _stream_batches(self, stmt: Any, args: Mapping[str, Any], batch: int) -> Iterator[Sequence[Any]]:
        result = self.executor.execute(stmt, args)
        try:
            yield from result.partitions(batch)
        finally:
            result.close()

    def _stepped(self, gen: Iterator[Sequence[Any]]) -> Iterator[Sequence[Any]]:
        """``gen`` advanced one owner operation per batch (the transaction around it is begun from outside)."""
        done = object()
        try:
            while (rows := self._do(self._sa(lambda: next(gen, done)))) is not done:
                yield rows
        finally:
            self._do(self._sa(gen.close))  # type: ignore[attr-defined]

    def _next_batch(self, batches: Iterator[Sequence[tuple[Any, ...]]], done: object) -> Any:
        return self._call(lambda: next(batches, done))

    def _close_batches(self, batches: Iterator[Sequence[tuple[Any, ...]]]) -> None:
        self._call(batches.close)  # type: ignore[attr-defined]


class SQLAlchemySession(SQLAlchemyOps, Session):
    """A sync engine with one Connection; ``orm`` is an ORM Session bound to it (sa-orm) or None (sa-core)."""

    def __init__(self, adapter: SQLAlchemyAdapter, info: ConnectInfo, engine: Any, conn: Any, orm: Any):
        super().__init__(adapter, info)
        self.engine, self.conn, self.orm = engine, conn, orm
        self.executor = orm if orm is not None else conn  # what statements and transactions go through

    def _sa(self, fn: Callable[[], Any]) -> Any:
        return fn

    def _close(self) -> None:
        try:
            if self.orm is not None:
                self.orm.close()
            self.conn.close()
        finally:
            self.engine.dispose()

    def hot_path(self, sql: str, params: Mapping[str, Any] | None = None) -> Callable[[], Any]:
        query, args = translate(self.adapter, sql, params)
        stmt, bound, executor = text(text_sql(query)), args or {}, self.executor
        # text() is built once: SQLAlchemy compiles it on the first call and reuses its compiled cache after that
        return lambda: executor.execute(stmt, bound).all()


class SQLAlchemyAsyncSession(SQLAlchemyOps, AsyncSession):
    """An async engine with one AsyncConnection (``aconn``); ``aorm`` is an AsyncSession bound to it (sa-orm)."""

    def __init__(self, adapter: SQLAlchemyAdapter, info: ConnectInfo):
        super().__init__(adapter, info)
        self.aengine: Any = None
        self.aconn: Any = None
        self.aorm: Any = None
        self.engine = self.conn = self.orm = self.executor = None

    def _sa(self, fn: Callable[[], Any]) -> Any:
        return lambda: self.aconn.run_sync(lambda _sync_conn: fn())

    async def _aopen(self, url: Any, connect_args: dict[str, Any]) -> None:
        # the ORM and the asyncio extension take ~0.5 s to import: only when a session of them opens, not per command
        from sqlalchemy.ext.asyncio import create_async_engine

        self.aengine = create_async_engine(url, poolclass=NullPool, connect_args=connect_args)
        self.engine = self.aengine.sync_engine
        if self.info.kind == "sqlite":
            _listen_sqlite(self.engine)
        self.aconn = await self.aengine.connect()
        await self.aconn.execution_options(isolation_level=AUTOCOMMIT)
        self.conn = self.aconn.sync_connection
        self.aorm = self.adapter.orm_session(self.aconn) if self.adapter.uses_orm else None
        self.orm = self.aorm.sync_session if self.aorm is not None else None
        self.executor = self.orm if self.orm is not None else self.conn

    async def _aclose(self) -> None:
        try:
            if self.aorm is not None:
                await self.aorm.close()
            if self.aconn is not None:
                await self.aconn.close()
        finally:
            if self.aengine is not None:
                await self.aengine.dispose()

    def _ahot_path(self, sql: str, params: Mapping[str, Any] | None) -> Callable[[], Any]:
        query, args = translate(self.adapter, sql, params)
        stmt, bound, executor = text(text_sql(query)), args or {}, self.aorm or self.aconn

        async def once() -> Any:
            return (await executor.execute(stmt, bound)).all()

        # text() is built once: SQLAlchemy compiles it on the first call and reuses its compiled cache after that
        return once


def _listen_sqlite(sync_engine: Any) -> None:
    event.listen(sync_engine, "connect", _sqlite_no_dbapi_begin)
    event.listen(sync_engine, "begin", _sqlite_emit_begin)


class SQLAlchemyAdapter(Layer):
    """A SQLAlchemy layer over the DBAPI adapter ``under``: SQLAlchemy's dialect for that driver (the adapter's
    ``sa_driver``), its connect arguments and notification API taken from the adapter."""

    paramstyle: ClassVar[str] = params.NAMED  # text() takes :name itself
    exceptions: ClassVar[tuple[str, ...]] = ("sqlalchemy.exc.DBAPIError",)
    # SQLAlchemy's own type processing refusing a value (a TypeError inside a StatementError)
    refusals: ClassVar[tuple[tuple[str, str], ...]] = (("TypeError", r"^SQLite \w+ type only accepts Python"),)
    uses_orm: ClassVar[bool] = False  # an ORM Session over the connection (sa-orm) or the Connection itself
    # SQLAlchemy's default driver per engine (a URL without +driver): the ORM rung's rows in the default bench
    default_dbapis: ClassVar[frozenset[str]] = frozenset({"psycopg2", "mysqlclient", "sqlite3"})
    bench_module: ClassVar[str] = "dbmatrix.bench.ops_sqlalchemy"
    profile_parts: ClassVar[tuple[tuple[str, str], ...]] = (
        ("sqlalchemy/orm", "sqlalchemy-orm"), ("sqlalchemy", "sqlalchemy-core"), ("greenlet", "sqlalchemy-core"))
    # Core compiles the statement and processes result rows (type processors, Row objects): SQL building is most
    # of it; the ORM's own modules are the entities (loading, identity map, unit of work)
    profile_stages: ClassVar[dict[str, str]] = {"sqlalchemy-core": "sql", "sqlalchemy-orm": "objects"}

    def __init__(self, under: DriverAdapter):
        super().__init__(under)
        self.modules = ("sqlalchemy", *under.modules, *under.sa_modules)  # type: ignore[misc]

    @classmethod
    def can_sit_on(cls, dbapi: DriverAdapter) -> bool:
        return dbapi.sa_driver is not None

    def pooler_fix(self) -> dict[str, Any] | None:
        return self.under.sa_pooler_safe_options()

    def unavailable_reason_for(self, kind: str) -> str | None:
        """Like ``unavailable_reason``, plus the dialect package a target kind needs (CockroachDB)."""
        reason = self.unavailable_reason()
        if reason is None and kind == "cockroachdb":
            try:
                importlib.import_module(COCKROACH_MODULE)
            except ImportError as exc:
                return f"driver {self.id} on cockroachdb needs sqlalchemy-cockroachdb ({COCKROACH_MODULE}: {exc})"
        return reason

    def transaction_options(self, kind: str, isolation: str | None, dialect: Any, engine: str = "") -> dict[str, Any]:
        """Execution options that make SQLAlchemy's next transaction run at ``isolation``."""
        begin_sql = begin_statements(kind, isolation, engine)[-1]  # IsolationUnsupported for a level not offered
        if kind == "sqlite":
            # the engine gives the lock mode; its PRAGMA is SQLAlchemy's job here
            level = "READ UNCOMMITTED" if isolation and isolation.lower() == "read uncommitted" else "SERIALIZABLE"
            return {"isolation_level": level, _SQLITE_BEGIN: begin_sql}
        # None: the server's default (detected by SQLAlchemy at connect), undoing a level an earlier begin set
        return {"isolation_level": isolation.upper() if isolation else dialect.default_isolation_level}

    def connect_args_for(self, info: ConnectInfo) -> dict[str, Any]:
        """The DBAPI's connect arguments (its adapter's ``sa_connect_args``) plus the cell's connect options."""
        return with_options(self.under.sa_connect_args(info), info)

    def url_for(self, info: ConnectInfo) -> Any:
        """``info.url`` with this driver's ``dialect+driver`` name."""
        return info.url.set(drivername=f"{_DIALECTS[info.kind]}+{self.under.sa_driver}")

    def open(self, info: ConnectInfo) -> Session:
        reason = self.unavailable_reason_for(info.kind)
        if reason is not None:
            raise DriverError(None, "DriverUnavailable", reason)
        try:
            return self._open_async(info) if self.is_async else self._open_sync(info)
        except DriverError:
            raise
        except Exception as exc:
            # e.g. asyncpg raises a bare OSError for a refused connection, which is no DBAPI error
            raise self.normalise_error(exc) or DriverError(None, type(exc).__name__, first_line(exc)) from None

    def orm_session(self, bind: Any) -> Any:
        """The ORM session bound to ``bind`` (a ``Connection``, or an ``AsyncConnection`` for an async driver):
        SQLAlchemy's own here; a layer built on the ORM (SQLModel) returns its subclass."""
        if self.is_async:
            from sqlalchemy.ext.asyncio import AsyncSession  # imported when a session opens: see _aopen

            return AsyncSession(bind=bind)
        from sqlalchemy.orm import Session as ORMSession

        return ORMSession(bind=bind)

    def _open_sync(self, info: ConnectInfo) -> Session:
        engine = create_engine(self.url_for(info), poolclass=NullPool, connect_args=self.connect_args_for(info))
        if info.kind == "sqlite":
            _listen_sqlite(engine)
        try:
            conn = engine.connect()
            conn.execution_options(isolation_level=AUTOCOMMIT)
        except BaseException:
            engine.dispose()
            raise
        orm = self.orm_session(conn) if self.uses_orm else None
        return SQLAlchemySession(self, info, engine, conn, orm)

    def _open_async(self, info: ConnectInfo) -> Session:
        session = SQLAlchemyAsyncSession(self, info)
        try:
            session.run(session._aopen(self.url_for(info), self.connect_args_for(info)))
        except BaseException:
            session.close()
            raise
        return session

    def normalise_error(self, exc: BaseException) -> DriverError | None:
        """Unwrap SQLAlchemy's ``DBAPIError.orig`` and, for async dialects, the driver exception they adapt."""
        driver_exc = _driver_exception(exc)
        # the DBAPI adapter's own mapping (MySQL drivers: the errno, not the coarser sqlstate)
        err = self.under.normalise_error(driver_exc) if driver_exc is not exc else None
        if err is None and isinstance(exc, StatementError) and not isinstance(exc, DBAPIError):
            if isinstance(exc.orig, (ValueError, TypeError, OverflowError)):
                # SQLAlchemy's type processing refused a value (e.g. SQLite DateTime given a str): a finding,
                # like a driver refusing one (see Session._call)
                return DriverError(None, type(exc.orig).__name__, first_line(exc.orig))
        return err if err is not None else default_normalise(exc)


def _driver_exception(exc: BaseException) -> BaseException:
    """The innermost driver exception: DBAPIError.orig, then an async dialect's adapted error's own orig/cause."""
    seen = {id(exc)}
    while True:
        inner = getattr(exc, "orig", None) or exc.__cause__
        if not isinstance(inner, BaseException) or id(inner) in seen:
            return exc
        seen.add(id(inner))
        exc = inner


class SQLAlchemyCore(SQLAlchemyAdapter):
    name = "sa-core"
    rung: ClassVar[str] = "builder"


class SQLAlchemyORM(SQLAlchemyAdapter):
    name = "sa-orm"
    uses_orm = True

    def orm_kit(self, session: Session, prefix: str) -> Any:
        """The ``orm.*`` cases' models and operations, declared the SQLAlchemy ORM way (``layers/sa_kit.py``)."""
        from ..layers.sa_kit import SAKit  # the case family's models: imported when an orm.* case asks

        return SAKit(session, prefix)
