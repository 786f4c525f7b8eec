"""The session protocol: one connection, driven step by step by the harness.

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

import concurrent.futures
import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from ..engines import engine_for
from ..engines import postgresql as pg_engine
from ..errors import DriverError
from ..redaction import scrub
from .cancel import terminate_backend
from .normalise import driver_finding
from .protocol import (
    CLOSE_BOUND_S,
    HARNESS_DEADLINE_S,
    PG_KINDS,
    SILENCE_S,
    ConnectInfo,
    DriverAdapter,
    Result,
    begin_statements,
)
from .runners import ThreadOwner, session_numbers


class Session:
    """One connection, driven through its owner. Subclasses implement the ``_``-prefixed primitives.

    A blocking driver's owner is a worker thread of the session (``ThreadOwner``); an asyncio driver's is an event
    loop (``AsyncSession``). ``_start(op)`` hands one operation to the owner and returns its future; ``_do(op)``
    waits for it within the harness deadline. An operation started from the owner itself (a stream that opens its
    own transaction) runs inline.
    """

    server_id: int | str | None = None
    # an engine's watch over this session's steps, installed by ``Engine.attach`` (SQLite: the busy handler that
    # tells the observer the session waits, engines/sqlite.py); told when a step starts, ends or is cancelled
    busy_watch: Any = None

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
        return ThreadOwner(f"dbm-{self.adapter.id}-{next(session_numbers)}")

    # --- what cases call -------------------------------------------------------------------------------
    def execute(self, sql: str, params: Mapping[str, Any] | None = None, *, types: Mapping[str, Any] | None = None
                ) -> Result:
        """Run one statement; ``types`` maps parameter/column names to SQLAlchemy types (SA layers use it)."""
        return self._wait(self.submit(sql, params, types=types))

    def submit(self, sql: str, params: Mapping[str, Any] | None = None, *, types: Mapping[str, Any] | None = None
               ) -> concurrent.futures.Future[Result]:
        """Start a statement (it may block); the future raises DriverError on failure. Until it is done, any
        other call on this session raises DriverError "SessionBusy"."""
        if self.busy_watch is not None:
            self.busy_watch.step_starts(sql)
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
        """Run the hot-path call ``n`` times on the session's owner, in one hop; the nanoseconds of each call.
        The call is built there too: a driver's ``cursor()`` may touch the connection (mysql-connector pings it),
        which must not happen beside a pending step."""
        def loop() -> list[int]:
            call = self.hot_path(sql, params)
            clock, out = time.perf_counter_ns, [0] * n
            for i in range(n):
                start = clock()
                call()
                out[i] = clock() - start
            return out

        return self._do(loop)

    # --- the driver's own APIs beyond plain statements (a driver without one raises DriverError "Unsupported") ---
    def listen(self, channel: str) -> None:
        """Subscribe this session to ``NOTIFY`` on ``channel`` through the driver's own notification API (the
        adapter's ``notifier()``), run where the connection lives."""
        notifier, raw = self._notifier(), self.driver_connection()
        self._do(lambda: notifier.listen(raw, channel), refusals=True)

    def notifications(self, timeout: float) -> list[tuple[str, str]]:
        """``(channel, payload)`` of the notifications this session received, in arrival order.

        Waits up to ``timeout`` seconds for the first one, then returns it with every other one already
        received; ``[]`` when none arrived in time. Each notification is returned once.
        """
        notifier, raw = self._notifier(), self.driver_connection()
        return self._do(lambda: notifier.received(raw, timeout), refusals=True)  # e.g. a payload it cannot decode

    _notifier_of_session: Any = None

    def _notifier(self) -> Any:
        if self._notifier_of_session is None:
            self._notifier_of_session = self.adapter.notifier()
            if self._notifier_of_session is None:
                raise self._unsupported("has no notification API")
        return self._notifier_of_session

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
        """Stop the pending step the driver's own way (its adapter's ``cancel_running``)."""
        self.adapter.cancel_running(self, self.driver_connection(), fut)

    def driver_connection(self) -> Any:
        """The driver's own connection object under this session."""
        return getattr(self, "conn", None)

    def _terminate(self) -> None:
        """Last resort when a cancel did not take: end the connection from the server side (see cancel.py)."""
        terminate_backend(self)

    def raw_sqlite3(self) -> Any:
        """The ``sqlite3.Connection`` under this session (SQLite drivers), for the busy watch."""
        return None

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

    def _step_done(self) -> None:
        if self.busy_watch is not None:
            self.busy_watch.step_done()

    def _do(self, op: Any, *, refusals: bool = False) -> Any:
        return self._wait(self._start(op, refusals=refusals))

    def _wait(self, fut: concurrent.futures.Future[Any], timeout: float = HARNESS_DEADLINE_S) -> Any:
        try:
            return self._answer(fut, timeout)
        except concurrent.futures.TimeoutError:
            try:
                self.cancel()
            except DriverError:
                pass
            raise DriverError(None, "HarnessTimeout", f"step exceeded the harness deadline of {timeout}s") from None
        except concurrent.futures.CancelledError:
            raise DriverError(None, "Cancelled", f"{self.adapter.id}: the step was cancelled") from None

    def _answer(self, fut: concurrent.futures.Future[Any], timeout: float) -> Any:
        """``fut``'s result within ``timeout``. A step silent for ``SILENCE_S`` on an adapter that knows its socket
        (``read_socket``) makes a fresh, bounded connection ask whether the server still answers; when it does not
        (frozen, gone), this session's connection is shut down on our side and the step fails at once (a long
        statement on a live server is left alone)."""
        started = time.monotonic()
        fd: int | None = None
        while True:
            left = max(0.0, timeout - (time.monotonic() - started))
            try:
                return fut.result(min(SILENCE_S, left))
            except concurrent.futures.TimeoutError:
                if time.monotonic() - started >= timeout:
                    raise
            fd = fd if fd is not None else self._read_socket()
            if fd is None:  # the adapter does not know its socket: the harness deadline bounds the step
                return fut.result(max(0.0, timeout - (time.monotonic() - started)))
            why = silent_server(self.info)
            if why is None:
                continue
            silent = time.monotonic() - started
            with contextlib.suppress(OSError):
                shut_down(fd)
            with contextlib.suppress(Exception):
                fut.result(CLOSE_BOUND_S)  # the driver's read ends with a lost connection
            raise DriverError(None, "ServerStoppedAnswering",
                              f"{self.adapter.id}: no answer for {silent:.0f} s and a fresh connection timed out or "
                              f"failed too ({why}); the connection was shut down on our side") from None

    def _read_socket(self) -> int | None:
        try:
            return self.adapter.read_socket(self.driver_connection())
        except Exception:  # noqa: BLE001 - no connection (closed, invalidated) or none known: wait as before
            return None

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


def silent_server(info: ConnectInfo) -> str | None:
    """None when the server of ``info`` answers a fresh connection (connect bound: a few seconds), else why not."""
    if info.kind not in PG_KINDS:
        return None  # only PostgreSQL-protocol adapters know their socket (read_socket)
    try:
        conn = pg_engine.admin_dbapi_connection(info.url)
    except Exception as exc:  # noqa: BLE001 - not answering is the answer
        text = " ".join(scrub(str(exc)).split())
        if "FATAL" in text or getattr(exc, "sqlstate", None):
            return None  # the server answered, with a refusal (no free slot ...): it is alive
        return text[:200] or type(exc).__name__
    with contextlib.suppress(Exception):
        conn.close()
    return None


def shut_down(fd: int) -> None:
    """Shut down the TCP connection behind ``fd`` (the driver keeps its descriptor; its blocked read returns EOF)."""
    sock = socket.socket(fileno=os.dup(fd))
    try:
        sock.shutdown(socket.SHUT_RDWR)
    finally:
        sock.close()


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
