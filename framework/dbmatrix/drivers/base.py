"""The driver adapter protocol: one small surface every driver is driven through.

A ``DriverAdapter`` describes a driver (id, target kinds, sync/async, paramstyle) and opens ``Session``s.
A ``Session`` is one connection, driven step by step by the harness:

* ``execute(sql, params)`` runs one statement and returns a ``Result``; SQL uses ``:name`` parameters
  (see ``params.py``) whatever the driver's own paramstyle.
* ``submit(sql, params)`` runs it in the background and returns a ``Future`` — so a case can start a step
  that may block on a lock, then look at it from another session through ``server_id``.
* ``begin(isolation)`` / ``commit()`` / ``rollback()`` — explicit transactions; sessions are otherwise in
  autocommit mode, so what runs is exactly what the case wrote.
* ``hot_path(sql, params)`` — the driver's own call with nothing of ours around it, for benchmark loops.

Async drivers run on an event loop the session owns (in its own thread), so cases stay plain functions.
Errors come out as ``DriverError`` (SQLSTATE or errno, class, message), scrubbed of secrets.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import importlib
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from sqlalchemy.engine import URL

from ..errors import DriverError
from ..redaction import scrub
from . import params as paramstyles

# Bounds so that nothing hangs (DESIGN: "Nothing hangs"); cases may lower them per session.
STATEMENT_TIMEOUT_S = 60
LOCK_TIMEOUT_S = 20
CONNECT_TIMEOUT_S = 10
HARNESS_DEADLINE_S = 120


@dataclass
class ConnectInfo:
    """Everything an adapter needs to open a connection to a target's scratch space."""

    kind: str  # sqlite | postgresql | mysql | cockroachdb
    url: URL  # SQLAlchemy URL without a +driver part, pointing at the scratch database or file
    init_sql: list[str] = field(default_factory=list)  # run after connect (e.g. search_path for a scratch schema)
    engine: str = ""  # detected product: postgresql, mariadb, mysql, sqlite, cockroachdb
    options: dict[str, Any] = field(default_factory=dict)  # extra keywords for the driver's own connect call


@dataclass
class Result:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    rowcount: int  # as reported by the driver (-1 when it does not say)

    def scalar(self) -> Any:
        """The first column of the first row (``None`` when there are no rows)."""
        return self.rows[0][0] if self.rows else None


def begin_statements(kind: str, isolation: str | None) -> list[str]:
    """The SQL that opens a transaction at ``isolation`` on an autocommit connection of ``kind``."""
    iso = isolation.lower() if isolation else None
    if kind in ("postgresql", "cockroachdb"):
        return [f"BEGIN ISOLATION LEVEL {iso.upper()}"] if iso else ["BEGIN"]
    if kind == "mysql":
        pre = [f"SET TRANSACTION ISOLATION LEVEL {iso.upper()}"] if iso else []
        return [*pre, "START TRANSACTION"]
    if kind == "sqlite":
        # SQLite is always serializable; the levels it has are lock modes and the read_uncommitted pragma.
        if iso in (None, "serializable", "deferred"):
            return ["BEGIN DEFERRED"]
        if iso in ("immediate", "exclusive"):
            return [f"BEGIN {iso.upper()}"]
        if iso == "read uncommitted":
            return ["PRAGMA read_uncommitted = 1", "BEGIN DEFERRED"]
        raise ValueError(f"SQLite has no isolation level {isolation!r}")
    raise ValueError(f"unknown target kind {kind!r}")


def session_setup_statements(info: ConnectInfo) -> list[str]:
    """Per-connection bounds so that no step can wait forever."""
    if info.kind == "postgresql":
        return [f"SET statement_timeout = '{STATEMENT_TIMEOUT_S}s'", f"SET lock_timeout = '{LOCK_TIMEOUT_S}s'"]
    if info.kind == "cockroachdb":
        return [f"SET statement_timeout = '{STATEMENT_TIMEOUT_S}s'"]
    if info.kind == "mysql":
        stmts = [f"SET SESSION innodb_lock_wait_timeout = {LOCK_TIMEOUT_S}"]
        if info.engine == "mariadb":
            stmts.append(f"SET SESSION max_statement_time = {STATEMENT_TIMEOUT_S}")
        else:
            stmts.append(f"SET SESSION max_execution_time = {STATEMENT_TIMEOUT_S * 1000}")
        return stmts
    if info.kind == "sqlite":
        return [f"PRAGMA busy_timeout = {LOCK_TIMEOUT_S * 1000}"]
    return []


def server_id_query(kind: str) -> str | None:
    """SQL returning the server-side id of this connection (for blocking detection from another one)."""
    return {
        "postgresql": "SELECT pg_backend_pid()",
        "cockroachdb": "SELECT crdb_internal.node_id()::INT8",
        "mysql": "SELECT CONNECTION_ID()",
    }.get(kind)


class DriverAdapter:
    """Describes one driver. Subclasses are mostly class attributes plus ``open``."""

    id: ClassVar[str]
    kinds: ClassVar[frozenset[str]]  # target kinds this driver can talk to
    is_async: ClassVar[bool] = False
    paramstyle: ClassVar[str]  # one of params.NAMED / PYFORMAT / NUMERIC_DOLLAR / QMARK
    modules: ClassVar[tuple[str, ...]]  # what must import for the driver to be usable
    layer: ClassVar[str] = "dbapi"  # dbapi | sa-core | sa-orm

    def unavailable_reason(self) -> str | None:
        """Why this driver cannot run here (missing module), or None. Imports lazily."""
        for mod in self.modules:
            try:
                importlib.import_module(mod)
            except ImportError as exc:
                return f"driver {self.id} not installed ({mod}: {exc})"
        return None

    def supports(self, kind: str) -> bool:
        return kind in self.kinds

    def connect(self, info: ConnectInfo, options: Mapping[str, Any] | None = None) -> Session:
        """Open a session on ``info``: connected, bounded by timeouts, in autocommit mode.

        ``options`` are extra keywords for the driver's own connect call (``info.options`` to ``open``).
        """
        if options:
            info = dataclasses.replace(info, options={**info.options, **options})
        session = self.open(info)
        try:
            for stmt in session_setup_statements(info) + list(info.init_sql):
                session.execute(stmt)
            query = server_id_query(info.kind)
            session.server_id = session.execute(query).scalar() if query else None
        except BaseException:
            session.close()
            raise
        return session

    def open(self, info: ConnectInfo) -> Session:
        raise NotImplementedError

    def normalise_error(self, exc: BaseException) -> DriverError | None:
        """Map a driver exception to DriverError; None if it is not a database error."""
        return default_normalise(exc)


def default_normalise(exc: BaseException) -> DriverError | None:
    """Best-effort SQLSTATE/errno extraction that works for most DBAPI drivers."""
    if isinstance(exc, DriverError):
        return exc
    orig = getattr(exc, "orig", None)  # SQLAlchemy wraps the DBAPI error
    if orig is not None and isinstance(orig, BaseException) and orig is not exc:
        inner = default_normalise(orig)
        if inner is not None:
            return inner
    code = None
    for attr in ("sqlstate", "pgcode"):  # asyncpg / psycopg / psycopg2
        code = code or getattr(exc, attr, None)
    diag = getattr(exc, "diag", None)
    if code is None and diag is not None:
        code = getattr(diag, "sqlstate", None)
    if code is None and getattr(exc, "sqlite_errorname", None):
        code = exc.sqlite_errorname  # type: ignore[attr-defined]
    if code is None and exc.args and isinstance(exc.args[0], int):  # MySQL drivers: (errno, message)
        code = str(exc.args[0])
    if code is None and not _looks_like_db_error(exc):
        return None
    message = _message(exc)
    return DriverError(str(code) if code is not None else None, type(exc).__name__, message)


def _looks_like_db_error(exc: BaseException) -> bool:
    names = {c.__name__ for c in type(exc).__mro__}
    return bool(names & {"Error", "DatabaseError", "InterfaceError", "PostgresError", "DBAPIError"})


def _message(exc: BaseException) -> str:
    if exc.args and isinstance(exc.args[0], int) and len(exc.args) > 1:
        text = str(exc.args[1])
    else:
        text = str(getattr(exc, "message", None) or exc)
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return scrub(first)


class Session:
    """One connection. Subclasses implement the ``_``-prefixed primitives; this class adds the rest."""

    server_id: int | str | None = None

    def __init__(self, adapter: DriverAdapter, info: ConnectInfo):
        self.adapter = adapter
        self.info = info
        self.step_ms: list[float] = []  # wall time of every execute, for per-step metrics
        self.in_transaction = False
        self._closed = False

    # --- what cases call -------------------------------------------------------------------------------
    def execute(self, sql: str, params: Mapping[str, Any] | None = None, *, types: Mapping[str, Any] | None = None
                ) -> Result:
        """Run one statement; ``types`` maps parameter/column names to SQLAlchemy types (SA layers use it)."""
        start = time.perf_counter()
        try:
            return self._call(lambda: self._execute(sql, params, types), refusals=True)
        finally:
            self.step_ms.append((time.perf_counter() - start) * 1000.0)

    def submit(self, sql: str, params: Mapping[str, Any] | None = None, *, types: Mapping[str, Any] | None = None
               ) -> concurrent.futures.Future[Result]:
        """Start a statement in the background (it may block); the future raises DriverError on failure."""
        return self._background(lambda: self.execute(sql, params, types=types))

    def begin(self, isolation: str | None = None) -> None:
        for stmt in begin_statements(self.info.kind, isolation):
            self.execute(stmt)
        self.in_transaction = True

    def commit(self) -> None:
        self.execute("COMMIT")
        self.in_transaction = False

    def rollback(self) -> None:
        self.execute("ROLLBACK")
        self.in_transaction = False

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._call(self._close)
        except DriverError:
            pass  # closing a broken connection is not a finding
        finally:
            self._shutdown()

    def hot_path(self, sql: str, params: Mapping[str, Any] | None = None) -> Callable[[], Any]:
        """A zero-argument callable that runs ``sql`` with the driver's own API and nothing of ours around it."""
        raise NotImplementedError  # every adapter implements it with its driver's own call

    # --- the driver's own APIs beyond plain statements (a driver without one raises DriverError "Unsupported") ---
    def listen(self, channel: str) -> None:
        """Subscribe this session to ``NOTIFY`` on ``channel`` through the driver's own notification API."""
        self._call(lambda: self._listen(channel))

    def notifications(self, timeout: float) -> list[tuple[str, str]]:
        """``(channel, payload)`` of the notifications this session received, in arrival order.

        Waits up to ``timeout`` seconds for the first one, then returns it with every other one already
        received; ``[]`` when none arrived in time. Each notification is returned once.
        """
        return self._call(lambda: self._notifications(timeout))

    def stream(self, sql: str, params: Mapping[str, Any] | None = None, batch: int = 1000
               ) -> Iterator[tuple[Any, ...]]:
        """The rows of ``sql`` one by one, fetched ``batch`` at a time with the driver's server-side (unbuffered)
        cursor API, so that client memory stays bounded whatever the size of the result.

        Where that API needs a transaction (PostgreSQL cursors) and none is open, the stream opens one and ends
        it when the iterator is exhausted or closed. Exhaust or ``close()`` the iterator before the next statement
        on this session: until then the connection is busy with the cursor.
        """
        batches = self._call(lambda: self._stream(sql, params, batch))
        return self._rows_of(batches)

    def _rows_of(self, batches: Iterator[Sequence[tuple[Any, ...]]]) -> Iterator[tuple[Any, ...]]:
        # Each batch is fetched inside _call so driver errors come out as DriverError, like execute's.
        done = object()
        try:
            while (rows := self._call(lambda: next(batches, done))) is not done:
                for row in rows:
                    yield tuple(row)
        finally:
            self._call(batches.close)  # ends the cursor (and the transaction the stream opened) if stopped early

    def _unsupported(self, what: str) -> DriverError:
        return DriverError(None, "Unsupported", f"{self.adapter.id} {what}")

    def _within_transaction(self, batches: Iterator[Sequence[tuple[Any, ...]]]) -> Iterator[Sequence[tuple[Any, ...]]]:
        """``batches`` inside a transaction: the session's own when one is open, else one opened here (lazily,
        at the first batch) and ended after the cursor: committed when exhausted, rolled back when the caller
        stopped early or the fetch failed."""
        if self.in_transaction:
            yield from batches
            return
        self.begin()
        try:
            yield from batches  # closing this generator closes ``batches`` (the cursor) first
        except BaseException:
            try:
                self.rollback()
            except DriverError:
                pass  # the fetch's own error is the finding; a broken connection cannot roll back
            raise
        self.commit()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- subclass primitives -----------------------------------------------------------------------------
    def _execute(self, sql: str, params: Mapping[str, Any] | None, types: Mapping[str, Any] | None) -> Result:
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError

    def _listen(self, channel: str) -> None:
        raise self._unsupported("has no notification API")

    def _notifications(self, timeout: float) -> list[tuple[str, str]]:
        raise self._unsupported("has no notification API")

    def _stream(self, sql: str, params: Mapping[str, Any] | None, batch: int) -> Iterator[Sequence[tuple[Any, ...]]]:
        """Batches of rows; a generator, so its ``finally`` ends the cursor when the caller stops early."""
        raise self._unsupported("has no streaming (server-side cursor) API")

    # --- plumbing ----------------------------------------------------------------------------------------
    def _call(self, fn: Callable[[], Any], *, refusals: bool = False) -> Any:
        """Run ``fn``, turning driver exceptions into DriverError.

        With ``refusals``, a ValueError/TypeError/OverflowError is a driver refusing a parameter value
        (psycopg2 and a NUL in a string, sqlite3 and a Decimal): that is a finding, not a harness bug.
        """
        try:
            return fn()
        except DriverError:
            raise
        except (ValueError, TypeError, OverflowError) as exc:
            err = self.adapter.normalise_error(exc)
            if err is not None:
                raise err from None
            if not refusals:
                raise
            raise DriverError(None, type(exc).__name__, scrub(str(exc).strip().splitlines()[0] if str(exc).strip()
                                                              else type(exc).__name__)) from None
        except Exception as exc:
            err = self.adapter.normalise_error(exc)
            if err is None:
                raise
            raise err from None

    _pool: concurrent.futures.ThreadPoolExecutor | None = None

    def _background(self, fn: Callable[[], Result]) -> concurrent.futures.Future[Result]:
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=f"dbm-{self.adapter.id}")
        return self._pool.submit(fn)

    def _shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)


class LoopThread:
    """An event loop running in its own daemon thread; async sessions run their coroutines here."""

    def __init__(self, name: str):
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = HARNESS_DEADLINE_S) -> Any:
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return fut.result(timeout)
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise DriverError(None, "HarnessTimeout", f"step exceeded the harness deadline of {timeout}s") from None

    def submit(self, coro: Coroutine[Any, Any, Any]) -> concurrent.futures.Future[Any]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self.loop.close()


class AsyncSession(Session):
    """Base for asyncio drivers: subclasses implement ``_aexecute`` and ``_aclose`` as coroutines."""

    def __init__(self, adapter: DriverAdapter, info: ConnectInfo):
        super().__init__(adapter, info)
        self.loop_thread = LoopThread(f"dbm-loop-{adapter.id}")

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run a coroutine on this session's loop and wait for it (bounded by the harness deadline)."""
        return self.loop_thread.run(coro)

    def _execute(self, sql: str, params: Mapping[str, Any] | None, types: Mapping[str, Any] | None) -> Result:
        return self.run(self._aexecute(sql, params, types))

    def _close(self) -> None:
        self.run(self._aclose())

    def submit(self, sql: str, params: Mapping[str, Any] | None = None, *, types: Mapping[str, Any] | None = None
               ) -> concurrent.futures.Future[Result]:
        # Blocking waits happen on the loop thread already; a plain thread keeps the error mapping uniform.
        return self._background(lambda: self.execute(sql, params, types=types))

    def _shutdown(self) -> None:
        super()._shutdown()
        self.loop_thread.stop()

    async def _aexecute(self, sql: str, params: Mapping[str, Any] | None, types: Mapping[str, Any] | None
                        ) -> Result:
        raise NotImplementedError

    async def _aclose(self) -> None:
        raise NotImplementedError

    def _drive(self, batches: AsyncIterator[Sequence[tuple[Any, ...]]]) -> Iterator[Sequence[tuple[Any, ...]]]:
        """An async generator of batches, driven one ``__anext__`` at a time on this session's loop.

        The async generator keeps its ``async with`` blocks (transaction, cursor) open across the steps, and
        closing this iterator closes it on the loop, so its cleanup runs where its connection lives.
        """
        done = object()

        async def step() -> Any:  # run() takes a coroutine; anext() gives a plain awaitable
            return await anext(batches, done)

        async def close() -> None:
            await batches.aclose()

        try:
            while (rows := self.run(step())) is not done:
                yield rows
        finally:
            self.run(close())


def cursor_result(cursor: Any, rows: Sequence[Any] | None = None) -> Result:
    """A Result from a DBAPI cursor that has just executed, values exactly as the driver built them.

    Rows are fetched here unless given (async drivers fetch them with ``await`` first).
    """
    if cursor.description is None:
        return Result([], [], cursor.rowcount)
    if rows is None:
        rows = cursor.fetchall()
    return Result([d[0] for d in cursor.description], [tuple(r) for r in rows], cursor.rowcount)


def fetch_batches(cursor: Any, batch: int) -> Iterator[list[tuple[Any, ...]]]:
    """Yield ``fetchmany(batch)`` from an executed DBAPI cursor until it is exhausted; close it in any case."""
    try:
        while rows := cursor.fetchmany(batch):
            yield rows
    finally:
        cursor.close()


def translate(adapter: DriverAdapter, sql: str, params: Mapping[str, Any] | None) -> tuple[str, Any]:
    """Translate ``:name`` SQL for ``adapter``'s paramstyle."""
    return paramstyles.translate(sql, params, adapter.paramstyle)
