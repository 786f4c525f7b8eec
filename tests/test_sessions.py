"""Serial, cancellable sessions, for every registered driver id (DBAPI drivers and every layer over each).

Each test puts session B in a step blocked on a row lock held by session A, confirmed by the lock observer (never
by a timer), and then checks what the session protocol promises:

* a second call on B while that step is pending fails at once with DriverError "SessionBusy" (the step is still
  pending afterwards: the call did not wait for it);
* ``B.close()`` cancels the step and returns within ``CLOSE_BOUND_S``, and afterwards no server connection of B
  is left (``pg_stat_activity`` / processlist) and no thread or event loop of B is alive.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from live import installed_adapter, live_info, postgres_info

from dbmatrix.drivers import all_driver_ids
from dbmatrix.drivers.base import CLOSE_BOUND_S, ConnectInfo, LoopThread, Session
from dbmatrix.engines import IsolationUnsupported, engine_for
from dbmatrix.engines.observer import LockObserver
from dbmatrix.errors import DriverError

GONE_WITHIN_S = 5.0  # how long the server may take to reap a closed connection (polled, not slept)
SLACK_S = 0.5  # scheduling slack on a loaded 2-core machine on top of the close bound


def info_for(driver_id: str, tmp_path: Path) -> ConnectInfo:
    return live_info(driver_id, str(tmp_path / "sessions.db"))


@dataclass
class Blocked:
    """A holds row 1 of ``table``; B's UPDATE of it is pending (``step``) and the observer saw it waiting."""

    a: Session
    b: Session
    step: concurrent.futures.Future
    table: str
    observer: LockObserver
    threads_before: set[threading.Thread]


@pytest.fixture(params=all_driver_ids())
def blocked(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Blocked]:
    adapter = installed_adapter(request.param)
    info = info_for(request.param, tmp_path)
    observer = engine_for(info.kind, info.engine).observer(info.url)
    table = f"dbm_sess_{uuid.uuid4().hex[:10]}"
    a = adapter.connect(info)
    try:
        a.execute(f"CREATE TABLE {table} (k INTEGER PRIMARY KEY, v INTEGER NOT NULL)")
        a.execute(f"INSERT INTO {table} VALUES (1, 10)")
        threads_before = set(threading.enumerate())
        b = adapter.connect(info)
        a.begin()
        a.execute(f"UPDATE {table} SET v = 11 WHERE k = 1")
        b.begin()
        step = b.submit(f"UPDATE {table} SET v = v + 100 WHERE k = 1")
        assert observer.wait_until_blocked(b, step, timeout=15), "B's UPDATE did not wait for A's row lock"
        yield Blocked(a, b, step, table, observer, threads_before)
    finally:
        try:
            if a.in_transaction:
                a.rollback()
            if "b" in locals():
                b.close()
            a.execute(f"DROP TABLE {table}")
        finally:
            a.close()
            observer.close()


def test_second_call_while_pending_fails_at_once(blocked: Blocked) -> None:
    """Any call on a session whose submitted step is pending raises SessionBusy without waiting for that step."""
    b = blocked.b
    for call in (lambda: b.execute("SELECT 1"), lambda: b.submit("SELECT 1"), b.commit, b.rollback,
                 lambda: b.timed_loop("SELECT 1", None, 3)):
        with pytest.raises(DriverError) as err:
            call()
        assert err.value.cls == "SessionBusy" and "still running" in err.value.message
        assert not blocked.step.done(), "the refused call waited for the pending step"
    blocked.a.commit()  # A lets go: B's step completes, and B answers again
    # the UPDATE changed one row; a driver that declares it has no rowcount (psqlpy) says -1
    assert blocked.step.result(15).rowcount == (1 if b.adapter.under.reports_rowcount else -1)
    assert b.execute(f"SELECT v FROM {blocked.table} WHERE k = 1").scalar() == 111
    b.rollback()


def test_close_while_blocked_cancels_and_leaves_nothing(blocked: Blocked) -> None:
    """close() of a blocked session cancels the step, returns within CLOSE_BOUND_S, and leaves no server connection,
    thread or event loop of the session behind; A's transaction is untouched."""
    b = blocked.b
    start = time.monotonic()
    b.close()
    elapsed = time.monotonic() - start
    print(f"\n{b.adapter.id}: close() while blocked took {elapsed * 1000:.0f} ms")  # for the record (-s)
    assert elapsed < CLOSE_BOUND_S + SLACK_S, f"close() took {elapsed:.2f}s"
    assert blocked.step.done(), "the blocked step is still running after close()"
    with pytest.raises(DriverError):
        blocked.step.result(0)  # cancelled: the driver's own error (57014, 1317, SQLITE_BUSY ...) or "Cancelled"
    assert_no_backend(b, blocked.observer)
    left = [t.name for t in set(threading.enumerate()) - blocked.threads_before if t.is_alive()]
    assert not left, f"threads of the closed session still alive: {left}"
    loop_thread = getattr(b, "loop_thread", None)
    if loop_thread is not None:
        assert loop_thread.loop.is_closed()
    with pytest.raises(DriverError, match="closed"):
        b.execute("SELECT 1")
    blocked.a.commit()  # A was not disturbed by B's cancellation
    assert blocked.a.execute(f"SELECT v FROM {blocked.table} WHERE k = 1").scalar() == 11


def assert_no_backend(session: Session, observer: LockObserver) -> None:
    """No server connection of ``session`` remains (polled: the server reaps a closed connection asynchronously)."""
    kind = session.info.kind
    if kind == "sqlite":
        return  # in-process: nothing on a server; the thread check covers aiosqlite's worker
    if kind == "postgresql":
        sql, args = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %(n)s", {
            "n": session.info.application_name}
    else:
        sql, args = "SELECT count(*) FROM information_schema.processlist WHERE id = %(n)s", {"n": session.server_id}
    deadline = time.monotonic() + GONE_WITHIN_S
    while (left := observer.query(sql, args)[0][0]) and time.monotonic() < deadline:  # type: ignore[attr-defined]
        time.sleep(0.02)
    assert left == 0, f"the closed session's server connection is still there ({kind})"


@pytest.mark.parametrize("driver_id", ["psycopg", "sa-orm+asyncpg", "pymysql", "sa-core+asyncmy", "sqlite3"])
def test_isolation_read_back_and_unsupported_levels(driver_id: str, tmp_path: Path) -> None:
    """The level a transaction runs at is read back from the server; a level the engine lacks is refused with
    IsolationUnsupported (a cell's ``unsupported``) before anything is sent, leaving the session usable."""
    info = info_for(driver_id, tmp_path)
    engine = engine_for(info.kind, info.engine)
    with installed_adapter(driver_id).connect(info) as s:
        refused = []
        for level in engine.isolation_levels:
            try:
                s.begin(level)
            except IsolationUnsupported:
                refused.append(level)
                continue
            got = s.isolation_in_effect()
            s.rollback()
            want = "serializable" if info.kind == "sqlite" and level != "read uncommitted" else level
            assert got == want, f"began {level!r}, the server says {got!r}"
        # the only level a layer here lacks: SQLAlchemy's asyncpg dialect has no READ UNCOMMITTED
        assert refused == (["read uncommitted"] if driver_id == "sa-orm+asyncpg" else [])
        with pytest.raises(IsolationUnsupported) as err:
            s.begin("snapshot")
        assert err.value.cls == "IsolationUnsupported" and "snapshot" in err.value.message
        assert not s.in_transaction and s.execute("SELECT 1").scalar() == 1


@pytest.mark.parametrize("driver_id", ["asyncpg", "psycopg-async", "aiosqlite", "sa-core+asyncpg", "psycopg"])
def test_timed_loop_runs_on_the_owner_in_one_hop(driver_id: str, tmp_path: Path) -> None:
    """timed_loop gives one duration (ns) per driver call, each call returning the driver's own rows."""
    info = info_for(driver_id, tmp_path)
    with installed_adapter(driver_id).connect(info) as s:
        times = s.timed_loop("SELECT 1", None, 50)
        assert len(times) == 50 and all(isinstance(t, int) and t > 0 for t in times)
        assert list(s.hot_path("SELECT 1")()[0]) == [1]


def test_async_sessions_share_one_loop(tmp_path: Path) -> None:
    """Several async sessions on one LoopThread: their calls can be gathered on it; closing them leaves it running
    for its owner, who stops it."""
    loop = LoopThread("dbm-shared-test")
    try:
        adapter = installed_adapter("asyncpg")
        sessions = [adapter.connect(postgres_info(), loop=loop) for _ in range(3)]
        assert all(s.loop_thread is loop for s in sessions)
        calls = [s.async_call("SELECT pg_backend_pid()") for s in sessions]

        async def together() -> list[Any]:
            return await asyncio.gather(*(call() for call in calls))

        pids = [rows[0][0] for rows in loop.run(together())]
        assert pids == [s.server_id for s in sessions] and len(set(pids)) == 3
        for s in sessions:
            s.close()
        assert loop.alive and loop.run(asyncio.sleep(0, result="still running")) == "still running"
    finally:
        loop.stop()
    assert not loop.alive
