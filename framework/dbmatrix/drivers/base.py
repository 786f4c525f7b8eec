"""The driver adapter protocol: one small surface every driver is driven through.

A ``DriverAdapter`` describes a driver (id, target kinds, sync/async, paramstyle) and opens ``Session``s.
A ``Session`` is one connection, driven step by step by the harness:

* ``execute(sql, params)`` runs one statement and returns a ``Result``; SQL uses ``:name`` parameters
  (see ``params.py``) whatever the driver's own paramstyle.
* ``submit(sql, params)`` starts it and returns a ``Future`` at once — so a case can start a step that may block
  on a lock and watch it from outside (``cell.observer()``). ``execute`` is ``submit`` plus a bounded wait.
* ``begin(isolation)`` / ``commit()`` / ``rollback()`` — explicit transactions; sessions are otherwise in
  autocommit mode, so what runs is exactly what the case wrote. ``begin_native(isolation)`` opens one through the
  driver's own way of asking for a level instead (and says which call that was); its commit/rollback put back
  every session setting it changed.
* ``cancel()`` stops the pending step the driver's own way; ``close()`` cancels first and returns within
  ``CLOSE_BOUND_S``, leaving no server connection, thread or event loop of the session behind.
* ``hot_path(sql, params)`` — the driver's own call with nothing of ours around it; ``timed_loop(sql, params, n)``
  runs it ``n`` times where the connection lives (one hop) and returns the nanoseconds of each call.

Sessions are serial: every operation goes through one owner — a worker thread for a blocking driver, the
session's event loop for an asyncio driver (several sessions may share one loop) — and a call while a submitted
step is still pending fails at once with DriverError "SessionBusy" instead of queueing behind it.
Errors come out as ``DriverError`` (SQLSTATE or errno, class, message), scrubbed of secrets.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import functools
import importlib
import itertools
import queue
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from sqlalchemy.engine import URL

from ..engines import engine_for
from ..engines.base import LOCK_TIMEOUT_S, STATEMENT_TIMEOUT_S
from ..errors import DriverError
from ..redaction import scrub
from . import params as paramstyles

# Bounds so that nothing hangs (a session must never wait without limit); the server-side ones live in engines/.
CONNECT_TIMEOUT_S = 10
HARNESS_DEADLINE_S = 120
CLOSE_BOUND_S = 2.0
__all__ = ["LOCK_TIMEOUT_S", "STATEMENT_TIMEOUT_S"]


@dataclass
class ConnectInfo:
    """Everything an adapter needs to open a connection to a target's scratch space."""

    kind: str  # sqlite | postgresql | mysql | cockroachdb
    url: URL  # SQLAlchemy URL without a +driver part, pointing at the scratch database or file
    init_sql: list[str] = field(default_factory=list)  # run after connect (e.g. search_path for a scratch schema)
    engine: str = ""  # detected product: postgresql, mariadb, mysql, sqlite, cockroachdb
    options: dict[str, Any] = field(default_factory=dict)  # extra keywords for the driver's own connect call
    pooler: str | None = None  # "transaction": the server connection changes between transactions
    database_timeouts: bool = False  # the scratch database itself carries statement/lock timeouts
    application_name: str = ""  # set per session by DriverAdapter.connect (PostgreSQL): how observers find it
    loop: LoopThread | None = field(default=None, compare=False)  # an event loop to share (async drivers)


def with_options(kwargs: dict[str, Any], info: ConnectInfo) -> dict[str, Any]:
    """``kwargs`` for a driver's connect call plus ``info.options`` (from ``cell.connect(options=...)``).

    A dict-valued option (asyncpg ``server_settings``) is merged into ours, and the session's own
    ``application_name`` is kept wherever it is: observers find the session by it.
    """
    out = dict(kwargs)
    for key, value in info.options.items():
        mine = out.get(key)
        out[key] = {**value, **mine} if isinstance(value, dict) and isinstance(mine, dict) else value
    if info.application_name and "application_name" in out:
        out["application_name"] = info.application_name
    return out


@dataclass
class Result:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    rowcount: int  # as reported by the driver (-1 when it does not say), after the rows were fetched
    rowcount_at_execute: int | None = None  # the same right after execute, before any fetch (where we saw it)

    def scalar(self) -> Any:
        """The first column of the first row (``None`` when there are no rows)."""
        return self.rows[0][0] if self.rows else None


def begin_statements(kind: str, isolation: str | None, engine: str = "") -> list[str]:
    """The SQL that opens a transaction at ``isolation`` (see ``engines``; IsolationUnsupported if not offered)."""
    return engine_for(kind, engine).begin_statements(isolation)


def session_setup_statements(info: ConnectInfo) -> list[str]:
    """Per-connection bounds for what the scratch database cannot hold itself."""
    return engine_for(info.kind, info.engine).session_setup(info)


def server_id_query(kind: str) -> str | None:
    """SQL returning the server-side id of this connection (for observing it from another one)."""
    return engine_for(kind).server_id_query


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

    def connect(self, info: ConnectInfo, options: Mapping[str, Any] | None = None, *,
                loop: LoopThread | None = None) -> Session:
        """Open a session on ``info``: connected, bounded by timeouts, in autocommit mode.

        ``options`` are extra keywords for the driver's own connect call (``info.options`` to ``open``).
        ``loop``: an event loop (``LoopThread``) an async session runs on instead of one of its own, so several
        sessions can run concurrently on one loop; the session leaves it running when it closes.
        """
        info = dataclasses.replace(info, application_name=f"dbmatrix-{uuid.uuid4().hex[:12]}", loop=loop,
                                   options={**info.options, **(options or {})})
        engine = engine_for(info.kind, info.engine)
        session = self.open(info)
        try:
            for stmt in engine.session_setup(info) + list(info.init_sql):
                session.execute(stmt)
            # Behind a transaction pooler the server connection changes between transactions: no id is right,
            # so none is given; observers find the session by its application_name instead.
            if engine.server_id_query and info.pooler != "transaction":
                session.server_id = session.execute(engine.server_id_query).scalar()
            engine.attach(session)
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


# The driver's own exceptions, by the module an adapter imports (an SQLAlchemy adapter imports sqlalchemy and
# its DBAPI's module, so it gets both): the DBAPI Error bases, and the client-side refusals of a parameter value
# that the driver raises outside that hierarchy or that we name explicitly, as (exception class, message regex).
DRIVER_EXCEPTIONS: dict[str, tuple[tuple[str, ...], tuple[tuple[str, str], ...]]] = {
    "sqlite3": (("sqlite3.Error",), (("ProgrammingError", r"type '[\w.]+' is not supported"),)),
    "aiosqlite": (("sqlite3.Error",), (("ProgrammingError", r"type '[\w.]+' is not supported"),)),
    "psycopg2": (("psycopg2.Error",), (("ValueError", r"^A string literal cannot contain NUL \(0x00\) characters"),)),
    "psycopg": (("psycopg.Error",), ()),
    "asyncpg": (("asyncpg.PostgresError", "asyncpg.InterfaceError"), ()),
    "pymysql": (("pymysql.err.MySQLError",), (("ProgrammingError", r"^(nan|inf|-inf) can not be used with MySQL"),)),
    "MySQLdb": (("MySQLdb.MySQLError",), ()),
    "asyncmy": (("asyncmy.errors.MySQLError",), ()),
    # SQLAlchemy's own type processing refusing a value (a TypeError inside a StatementError)
    "sqlalchemy": (("sqlalchemy.exc.DBAPIError",), (("TypeError", r"^SQLite \w+ type only accepts Python"),)),
}


def driver_finding(adapter: DriverAdapter, exc: BaseException, *, refusals: bool = True) -> DriverError | None:
    """``exc`` as a DriverError when it is the driver's own (a DBAPI error, a lost connection, a listed
    client-side refusal), else None: a bug of ours, which must end the cell as ``error``."""
    if isinstance(exc, DriverError):
        return exc
    inner = getattr(exc, "orig", None)  # SQLAlchemy's StatementError wraps what its DBAPI or a type refused
    for module in adapter.modules:
        bases, listed = DRIVER_EXCEPTIONS.get(module, ((), ()))
        for candidate in (exc, inner) if refusals else ():
            if isinstance(candidate, BaseException) and any(
                    type(candidate).__name__ == cls and re.search(pattern, str(candidate)) for cls, pattern in listed):
                return DriverError(None, type(candidate).__name__, _message(candidate))
        if any(isinstance(exc, cls) for cls in _classes(bases)):
            return adapter.normalise_error(exc) or DriverError(None, type(exc).__name__, _message(exc))
    if isinstance(exc, OSError):  # the connection itself failed (refused, reset, timed out): infrastructure
        return adapter.normalise_error(exc) or DriverError(None, type(exc).__name__, _message(exc))
    return None


def _classes(dotted: Sequence[str]) -> list[type]:
    out = []
    for name in dotted:
        module, _, attr = name.rpartition(".")
        try:
            obj = importlib.import_module(module)
            for part in attr.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError):
            continue  # the driver is not installed: none of its exceptions can occur
        out.append(obj)
    return out


class Session:
    """One connection, driven through its owner. Subclasses implement the ``_``-prefixed primitives.

    A blocking driver's owner is a worker thread of the session (``ThreadOwner``); an asyncio driver's is an event
    loop (``AsyncSession``). ``_start(op)`` hands one operation to the owner and returns its future; ``_do(op)``
    waits for it within the harness deadline. An operation started from the owner itself (a stream that opens its
    own transaction) runs inline.
    """

    server_id: int | str | None = None
    busy_watch: Any = None  # SQLite: the busy handler that tells the observer this session waits (engines/sqlite)

    def __init__(self, adapter: DriverAdapter, info: ConnectInfo):
        self.adapter = adapter
        self.info = info
        self.step_ms: list[float] = []  # wall time of every step on its owner, for per-step metrics
        self.in_transaction = False
        self._closed = False
        self._pending: concurrent.futures.Future[Any] | None = None
        self._state = threading.Lock()
        self._owner = self._make_owner()

    def _make_owner(self) -> Any:
        return ThreadOwner(f"dbm-{self.adapter.id}-{next(_session_numbers)}")

    # --- what cases call -------------------------------------------------------------------------------
    def execute(self, sql: str, params: Mapping[str, Any] | None = None, *, types: Mapping[str, Any] | None = None
                ) -> Result:
        """Run one statement; ``types`` maps parameter/column names to SQLAlchemy types (SA layers use it)."""
        return self._wait(self.submit(sql, params, types=types))

    def submit(self, sql: str, params: Mapping[str, Any] | None = None, *, types: Mapping[str, Any] | None = None
               ) -> concurrent.futures.Future[Result]:
        """Start a statement (it may block); the future raises DriverError on failure. Until it is done, any
        other call on this session raises DriverError "SessionBusy"."""
        if self.busy_watch is not None and (pragma := _BUSY_TIMEOUT_PRAGMA.match(sql)):
            self._rearm_after = int(pragma[1])  # the pragma replaces the busy watch's handler: re-install it
        return self._start(self._statement(sql, params, types), refusals=True, timed=True)

    @property
    def pending(self) -> concurrent.futures.Future[Any] | None:
        """The submitted step still running, if any."""
        fut = self._pending
        return fut if fut is not None and not fut.done() else None

    def begin(self, isolation: str | None = None) -> None:
        for stmt in begin_statements(self.info.kind, isolation, self.info.engine):
            self.execute(stmt)
        self.in_transaction = True

    def begin_native(self, isolation: str) -> str:
        """Open a transaction at ``isolation`` through the driver's own API for asking a level (not our SQL), and
        return which call that was, e.g. ``"asyncpg conn.transaction(isolation='repeatable_read').start()"``.

        Where that API is lazy (psycopg's ``isolation_level``, sqlite3's legacy ``isolation_level``) the server
        transaction starts when the driver decides, as in application code. ``commit()``/``rollback()`` end it
        through the driver too and put back every session setting the call changed (autocommit, the session's
        isolation), also when they fail; a failing ``begin_native`` puts them back before raising. IsolationUnsupported
        for a level the engine lacks; the driver's refusal of a level comes out as DriverError. An adapter without
        a native way falls back to ``begin`` and says so.
        """
        iso = self.checked_level(isolation)
        self.begin(iso)
        sql = "; ".join(begin_statements(self.info.kind, iso, self.info.engine))
        return f"{self.adapter.id}: no isolation API in its adapter, dbmatrix's SQL: {sql}"

    def checked_level(self, isolation: str) -> str:
        """``isolation`` in lower case; IsolationUnsupported (nothing sent) when the engine has no such level."""
        return engine_for(self.info.kind, self.info.engine).check_isolation(isolation) or ""

    def _open_native(self, begin: Callable[[], Any], end: Callable[[bool], Any]) -> str:
        """Run ``begin`` (an owner operation returning the API's description; it undoes its own settings when it
        fails) and keep ``end(commit)`` (an owner operation: end the transaction, then restore) for commit/rollback."""
        api = self._do(begin)
        self._native_end = end
        self.in_transaction = True
        return api

    def _open_with_settings(self, conn: Any, apply: Callable[[], Any], restore: Callable[[], Any], api: str) -> str:
        """``begin_native`` of a driver whose level is a connection setting: ``apply()`` (undone by ``restore()`` if
        it fails) opens the transaction, the driver's ``conn.commit()``/``conn.rollback()`` ends it, then
        ``restore()``. Runs on a blocking driver's worker thread (``AsyncSession`` has the coroutine version)."""
        def begin() -> str:
            try:
                apply()
            except BaseException:
                restore()
                raise
            return api

        return self._open_native(begin, lambda commit: end_then_restore(
            conn.commit if commit else conn.rollback, restore, conn.rollback))

    _native_end: Callable[[bool], Any] | None = None

    def _end_native(self, commit: bool) -> None:
        end, self._native_end = self._native_end, None
        try:
            self._do(lambda: end(commit))  # type: ignore[misc]
        finally:
            self.in_transaction = False

    def commit(self) -> None:
        if self._native_end is not None:
            return self._end_native(True)
        self.execute("COMMIT")
        self.in_transaction = False

    def rollback(self) -> None:
        if self._native_end is not None:
            return self._end_native(False)
        self.execute("ROLLBACK")
        self.in_transaction = False

    def isolation_in_effect(self) -> str | None:
        """The isolation level the server says is in effect (inside a transaction: that transaction's), in lower
        case ('repeatable read'); None where the engine has no way to say. Servers map levels silently (MySQL's
        SERIALIZABLE, CockroachDB's READ COMMITTED), so a case compares this with what it asked for."""
        engine = engine_for(self.info.kind, self.info.engine)
        if engine.read_isolation_sql is None:
            return None
        return engine.normalise_isolation(self.execute(engine.read_isolation_sql).scalar())

    def cancel(self) -> bool:
        """Ask the driver to stop the pending step (its own way: libpq cancel, task cancellation, ``KILL QUERY``,
        ``interrupt()``). The step's future then ends with the driver's error. False if nothing was pending."""
        fut = self.pending
        if fut is None:
            return False
        if self.busy_watch is not None:
            self.busy_watch.cancel()
        try:
            self._cancel(fut)
        except Exception as exc:  # noqa: BLE001 - a failed cancel request is reported, not raised mid-cleanup
            err = self.adapter.normalise_error(exc)
            raise (err or DriverError(None, type(exc).__name__, scrub(str(exc)))) from None
        return True

    def close(self) -> None:
        """Cancel what is pending, close the connection, stop the owner: all within ``CLOSE_BOUND_S``."""
        with self._state:
            if self._closed:
                return
            self._closed = True
        deadline = time.monotonic() + CLOSE_BOUND_S
        fut = self.pending
        if fut is not None:
            try:
                self.cancel()
            except DriverError:
                pass
            concurrent.futures.wait([fut], timeout=CLOSE_BOUND_S / 2)
            if not fut.done():
                self._terminate()  # the cancel did not take: end the server side so the owner gets free
                concurrent.futures.wait([fut], timeout=max(0.0, deadline - time.monotonic() - 0.3))
        # aiosqlite runs its own worker thread, which ends just after its close() resolves: wait for it too
        driver_thread = getattr(self.driver_connection(), "_thread", None)
        try:
            closing = self._owner.submit(self._close_op(), lambda: None)
            closing.result(max(0.05, deadline - time.monotonic()))
        except Exception:  # noqa: BLE001 - closing a broken connection is not a finding
            pass
        finally:
            self._owner.stop(max(0.05, deadline - time.monotonic()))
            if isinstance(driver_thread, threading.Thread) and driver_thread.ident is not None:
                driver_thread.join(max(0.05, deadline - time.monotonic()))

    def hot_path(self, sql: str, params: Mapping[str, Any] | None = None) -> Callable[[], Any]:
        """A zero-argument callable that runs ``sql`` with the driver's own API and nothing of ours around it.
        For a blocking driver it runs on the calling thread (use it while no step is pending)."""
        raise NotImplementedError  # every adapter implements it with its driver's own call

    def timed_loop(self, sql: str, params: Mapping[str, Any] | None = None, n: int = 1000) -> list[int]:
        """Run the hot-path call ``n`` times on the session's owner, in one hop; the nanoseconds of each call."""
        call = self.hot_path(sql, params)

        def loop() -> list[int]:
            clock, out = time.perf_counter_ns, [0] * n
            for i in range(n):
                start = clock()
                call()
                out[i] = clock() - start
            return out

        return self._do(loop)

    # --- the driver's own APIs beyond plain statements (a driver without one raises DriverError "Unsupported") ---
    def listen(self, channel: str) -> None:
        """Subscribe this session to ``NOTIFY`` on ``channel`` through the driver's own notification API."""
        self._do(lambda: self._listen(channel))

    def notifications(self, timeout: float) -> list[tuple[str, str]]:
        """``(channel, payload)`` of the notifications this session received, in arrival order.

        Waits up to ``timeout`` seconds for the first one, then returns it with every other one already
        received; ``[]`` when none arrived in time. Each notification is returned once.
        """
        return self._do(lambda: self._notifications(timeout))

    def stream(self, sql: str, params: Mapping[str, Any] | None = None, batch: int = 1000
               ) -> Iterator[tuple[Any, ...]]:
        """The rows of ``sql`` one by one, fetched ``batch`` at a time with the driver's server-side (unbuffered)
        cursor API, so that client memory stays bounded whatever the size of the result.

        Where that API needs a transaction (PostgreSQL cursors) and none is open, the stream opens one and ends
        it when the iterator is exhausted or closed. Exhaust or ``close()`` the iterator before the next statement
        on this session: until then the connection is busy with the cursor.
        """
        return self._rows_of(self._stream(sql, params, batch))

    def _rows_of(self, batches: Iterator[Sequence[tuple[Any, ...]]]) -> Iterator[tuple[Any, ...]]:
        # Each batch is fetched by the owner, so driver errors come out as DriverError, like execute's.
        done = object()
        try:
            while (rows := self._next_batch(batches, done)) is not done:
                for row in rows:
                    yield tuple(row)
        finally:
            self._close_batches(batches)  # ends the cursor (and the transaction the stream opened)

    def _next_batch(self, batches: Iterator[Sequence[tuple[Any, ...]]], done: object) -> Any:
        return self._do(lambda: next(batches, done))

    def _close_batches(self, batches: Iterator[Sequence[tuple[Any, ...]]]) -> None:
        self._do(lambda: batches.close())  # type: ignore[attr-defined]

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

    def _statement(self, sql: str, params: Mapping[str, Any] | None, types: Mapping[str, Any] | None) -> Any:
        """The owner operation that runs one statement."""
        return lambda: self._execute(sql, params, types)

    def _close(self) -> None:
        raise NotImplementedError

    def _close_op(self) -> Any:
        return self._close

    def _cancel(self, fut: concurrent.futures.Future[Any]) -> None:
        """Stop the pending step the DBAPI's own way (``drivers/cancel.py``)."""
        from .cancel import cancel_step

        cancel_step(self, getattr(self.adapter, "dbapi", self.adapter.id), self.driver_connection(), fut)

    def driver_connection(self) -> Any:
        """The driver's own connection object under this session."""
        return getattr(self, "conn", None)

    def _terminate(self) -> None:
        """Last resort when a cancel did not take: end the connection from the server side (see cancel.py)."""
        from .cancel import terminate_backend

        terminate_backend(self)

    def raw_sqlite3(self) -> Any:
        """The ``sqlite3.Connection`` under this session (SQLite drivers), for the busy watch."""
        return None

    def _listen(self, channel: str) -> None:
        raise self._unsupported("has no notification API")

    def _notifications(self, timeout: float) -> list[tuple[str, str]]:
        raise self._unsupported("has no notification API")

    def _stream(self, sql: str, params: Mapping[str, Any] | None, batch: int) -> Iterator[Sequence[tuple[Any, ...]]]:
        """Batches of rows; a generator, so its ``finally`` ends the cursor when the caller stops early."""
        raise self._unsupported("has no streaming (server-side cursor) API")

    # --- plumbing ----------------------------------------------------------------------------------------
    def _start(self, op: Any, *, refusals: bool = False, timed: bool = False) -> concurrent.futures.Future[Any]:
        """Hand ``op`` to the owner; SessionBusy at once if a step is still pending, SessionClosed after close."""
        if self._owner.is_current():
            fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
            fut.set_result(self._call(op, refusals=refusals))
            return fut
        with self._state:
            if self._closed:
                raise DriverError(None, "SessionClosed", f"{self.adapter.id}: the session is closed")
            busy = self._pending
            if busy is not None and not busy.done():
                raise DriverError(None, "SessionBusy", f"{self.adapter.id}: a step submitted earlier is still "
                                  "running; wait for its future (or cancel() it) before the next call")
            self._pending = self._owner.submit(op, self._step_done, lambda fn: self._call(fn, refusals=refusals),
                                               self.step_ms if timed else None)
            return self._pending

    _rearm_after: int | None = None

    def _step_done(self) -> None:
        if self.busy_watch is not None:
            self.busy_watch.step_done()
            if self._rearm_after is not None:
                self.busy_watch.rearm(self._rearm_after)
                self._rearm_after = None

    def _do(self, op: Any, *, refusals: bool = False) -> Any:
        return self._wait(self._start(op, refusals=refusals))

    def _wait(self, fut: concurrent.futures.Future[Any], timeout: float = HARNESS_DEADLINE_S) -> Any:
        try:
            return fut.result(timeout)
        except concurrent.futures.TimeoutError:
            try:
                self.cancel()
            except DriverError:
                pass
            raise DriverError(None, "HarnessTimeout", f"step exceeded the harness deadline of {timeout}s") from None
        except concurrent.futures.CancelledError:
            raise DriverError(None, "Cancelled", f"{self.adapter.id}: the step was cancelled") from None

    def _call(self, fn: Callable[[], Any], *, refusals: bool = False) -> Any:
        """Run ``fn``, turning the driver's own exceptions into DriverError (see ``driver_finding``).

        Anything else (a TypeError in our code, a KeyError) propagates unchanged: the cell ends as ``error``,
        never as a finding about the database. With ``refusals``, the client-side refusals the driver lists
        (e.g. psycopg2 and a NUL in a string) are findings too.
        """
        try:
            return fn()
        except DriverError:
            raise
        except Exception as exc:
            err = driver_finding(self.adapter, exc, refusals=refusals)
            if err is None:
                raise
            raise err from None


_session_numbers = itertools.count(1)
_BUSY_TIMEOUT_PRAGMA = re.compile(r"\s*PRAGMA\s+(?:main\.)?busy_timeout\s*=\s*(-?\d+)\s*;?\s*$", re.IGNORECASE)


class ThreadOwner:
    """A daemon worker thread running one session's operations in order (the owner of a blocking connection)."""

    def __init__(self, name: str):
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._work, name=name, daemon=True)
        self.thread.start()

    def is_current(self) -> bool:
        return threading.current_thread() is self.thread

    def submit(self, op: Callable[[], Any], after: Callable[[], None],
               call: Callable[[Callable[[], Any]], Any] | None = None,
               step_ms: list[float] | None = None) -> concurrent.futures.Future[Any]:
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._queue.put((op, after, call or (lambda fn: fn()), step_ms, fut))
        return fut

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            op, after, call, step_ms, fut = item
            if not fut.set_running_or_notify_cancel():
                continue
            start = time.perf_counter()
            try:
                fut.set_result(call(op))
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting side
                fut.set_exception(exc)
            finally:
                if step_ms is not None:
                    step_ms.append((time.perf_counter() - start) * 1000.0)
                after()

    def stop(self, timeout: float) -> None:
        self._queue.put(None)
        self.thread.join(timeout)


class LoopThread:
    """An event loop running in its own daemon thread. One per async session, or one shared by several sessions
    (pass it to ``DriverAdapter.connect(info, loop=...)``; whoever created it stops it)."""

    def __init__(self, name: str = "dbm-loop"):
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def is_current(self) -> bool:
        return threading.current_thread() is self._thread

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = HARNESS_DEADLINE_S) -> Any:
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return fut.result(timeout)
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise DriverError(None, "HarnessTimeout", f"step exceeded the harness deadline of {timeout}s") from None

    def submit(self, coro: Coroutine[Any, Any, Any]) -> concurrent.futures.Future[Any]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def stop(self, timeout: float = 5.0) -> None:
        if self.loop.is_closed():
            return

        async def cancel_leftovers() -> None:  # so no task is "destroyed but pending" when the loop closes
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.wait(tasks, timeout=timeout / 2) if tasks else None

        if self._thread.is_alive():
            try:
                asyncio.run_coroutine_threadsafe(cancel_leftovers(), self.loop).result(timeout / 2)
            except Exception:  # noqa: BLE001 - best effort before stopping
                pass
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout / 2)
        if not self._thread.is_alive():
            self.loop.close()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()


class LoopOwner:
    """The owner of an async session: its operations are coroutines run as tasks on a ``LoopThread``."""

    def __init__(self, loop_thread: LoopThread, owns_loop: bool):
        self.loop_thread = loop_thread
        self.owns_loop = owns_loop

    def is_current(self) -> bool:
        return False  # operations started on the loop itself are awaited there, never handed over

    def submit(self, op: Callable[[], Awaitable[Any]], after: Callable[[], None],
               call: Callable[[Callable[[], Any]], Any] | None = None,
               step_ms: list[float] | None = None) -> concurrent.futures.Future[Any]:
        """Run ``op()`` as a task on the loop. The returned future settles when the task has really ended (a
        cancelled task first runs its driver's cleanup), and a cancelled task gives DriverError "Cancelled"."""
        out: concurrent.futures.Future[Any] = concurrent.futures.Future()

        async def run() -> Any:
            start = time.perf_counter()
            try:
                return await op()
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # noqa: BLE001 - mapped to DriverError like a blocking driver's
                if call is None:
                    raise
                return call(functools.partial(_reraise, exc))
            finally:
                if step_ms is not None:
                    step_ms.append((time.perf_counter() - start) * 1000.0)
                after()

        def settle(task: asyncio.Task[Any]) -> None:
            if task.cancelled():
                out.set_exception(DriverError(None, "Cancelled", "the step was cancelled"))
            elif (exc := task.exception()) is not None:
                out.set_exception(exc)
            else:
                out.set_result(task.result())

        def start() -> None:
            if out.set_running_or_notify_cancel():
                task = self.loop_thread.loop.create_task(run())
                out.task = task  # type: ignore[attr-defined]  # for cancel_task
                task.add_done_callback(settle)

        self.loop_thread.loop.call_soon_threadsafe(start)
        return out

    def cancel_task(self, fut: concurrent.futures.Future[Any]) -> None:
        """Cancel the task behind ``fut`` (asyncio's own cancellation; the driver reacts to CancelledError)."""
        task = getattr(fut, "task", None)
        if task is not None:
            self.loop_thread.loop.call_soon_threadsafe(task.cancel)

    def stop(self, timeout: float) -> None:
        if self.owns_loop:
            self.loop_thread.stop(timeout)


def _reraise(exc: BaseException) -> Any:
    raise exc


class AsyncSession(Session):
    """Base for asyncio drivers: subclasses implement ``_aexecute``, ``_aclose`` and ``_ahot_path`` as coroutines
    (functions); every operation is a task on the session's loop."""

    def _make_owner(self) -> LoopOwner:
        shared = self.info.loop
        loop_thread = shared or LoopThread(f"dbm-loop-{self.adapter.id}-{next(_session_numbers)}")
        self.loop_thread = loop_thread
        return LoopOwner(loop_thread, owns_loop=shared is None)

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run a coroutine on this session's loop as one operation and wait for it (harness deadline)."""
        return self._do(lambda: coro)

    def _open_with_settings(self, conn: Any, apply: Callable[[], Any], restore: Callable[[], Any], api: str) -> str:
        """``Session._open_with_settings`` with ``apply``, ``restore`` and the driver's commit/rollback awaited."""
        async def begin() -> str:
            try:
                await apply()
            except BaseException:
                await restore()
                raise
            return api

        async def end(commit: bool) -> None:
            await aend_then_restore(conn.commit if commit else conn.rollback, restore, conn.rollback)

        return self._open_native(begin, end)

    def _statement(self, sql: str, params: Mapping[str, Any] | None, types: Mapping[str, Any] | None) -> Any:
        return lambda: self._aexecute(sql, params, types)

    def _close_op(self) -> Any:
        return self._aclose

    def _next_batch(self, batches: Iterator[Sequence[tuple[Any, ...]]], done: object) -> Any:
        # the iterator itself runs each step on the loop (``_drive``); advancing it here keeps the loop free
        return self._call(lambda: next(batches, done))

    def _close_batches(self, batches: Iterator[Sequence[tuple[Any, ...]]]) -> None:
        self._call(batches.close)  # type: ignore[attr-defined]

    def listen(self, channel: str) -> None:
        self._call(lambda: self._listen(channel))

    def notifications(self, timeout: float) -> list[tuple[str, str]]:
        return self._call(lambda: self._notifications(timeout))

    def hot_path(self, sql: str, params: Mapping[str, Any] | None = None) -> Callable[[], Any]:
        """The driver call, one hop to the session's loop per call (``timed_loop`` avoids the hop)."""
        acall, loop = self._ahot_path(sql, params), self.loop_thread
        return lambda: loop.run(acall())

    def async_call(self, sql: str, params: Mapping[str, Any] | None = None) -> Callable[[], Awaitable[Any]]:
        """The hot-path call as a coroutine function, to await on this session's loop (e.g. several sessions
        gathered on one shared loop)."""
        return self._ahot_path(sql, params)

    def timed_loop(self, sql: str, params: Mapping[str, Any] | None = None, n: int = 1000) -> list[int]:
        acall = self._ahot_path(sql, params)

        async def loop() -> list[int]:
            clock, out = time.perf_counter_ns, [0] * n
            for i in range(n):
                start = clock()
                await acall()
                out[i] = clock() - start
            return out

        return self._do(loop)

    def _ahot_path(self, sql: str, params: Mapping[str, Any] | None) -> Callable[[], Awaitable[Any]]:
        raise NotImplementedError

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
        try:
            while (rows := self._do(lambda: anext(batches, done))) is not done:
                yield rows
        finally:
            self._do(batches.aclose)


def cursor_result(cursor: Any, rows: Sequence[Any] | None = None) -> Result:
    """A Result from a DBAPI cursor that has just executed, values exactly as the driver built them.

    Rows are fetched here unless given (async drivers fetch them with ``await`` first).
    """
    at_execute = cursor.rowcount if rows is None else None  # sqlite3 counts RETURNING rows only as they are fetched
    if cursor.description is None:
        return Result([], [], cursor.rowcount, at_execute)
    if rows is None:
        rows = cursor.fetchall()
    return Result([d[0] for d in cursor.description], [tuple(r) for r in rows], cursor.rowcount, at_execute)


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


def end_then_restore(finish: Callable[[], Any], restore: Callable[[], Any], undo: Callable[[], Any]) -> None:
    """``finish()`` (the driver's commit or rollback), then ``restore()`` the session settings, whatever happens. When
    ``finish`` fails, ``undo()`` (the driver's rollback) first ends what may still be open — SQLite keeps its
    transaction open after a failed COMMIT (a deferred foreign key) — and ``finish``'s error is the one raised."""
    try:
        finish()
    except BaseException:
        for step in (undo, restore):
            with contextlib.suppress(Exception):
                step()
        raise
    restore()


async def aend_then_restore(finish: Callable[[], Awaitable[Any]], restore: Callable[[], Awaitable[Any]],
                            undo: Callable[[], Awaitable[Any]]) -> None:
    """``end_then_restore`` for coroutine functions."""
    try:
        await finish()
    except BaseException:
        for step in (undo, restore):
            with contextlib.suppress(Exception):
                await step()
        raise
    await restore()
