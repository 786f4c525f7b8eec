"""Serial, cancellable sessions, for every driver id (9 DBAPI drivers and SQLAlchemy Core/ORM over each).

Each test puts session B in a step blocked on a row lock held by session A, confirmed by the lock observer (never
by a timer), and then checks what the session protocol promises:

* a second call on B while that step is pending fails at once with DriverError "SessionBusy" (the step is still
  pending afterwards: the call did not wait for it);
* ``B.close()`` cancels the step and returns within ``CLOSE_BOUND_S``, and afterwards no server connection of B
  is left (``pg_stat_activity`` / processlist) and no thread or event loop of B is alive.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from live import installed_adapter, mariadb_info, postgres_info, sqlite_info

from dbmatrix.drivers import all_driver_ids
from dbmatrix.drivers.base import CLOSE_BOUND_S, ConnectInfo, Session
from dbmatrix.engines import engine_for
from dbmatrix.engines.observer import LockObserver
from dbmatrix.errors import DriverError

KIND_OF = {"asyncpg": "postgresql", "psycopg": "postgresql", "psycopg-async": "postgresql", "psycopg2": "postgresql",
           "pymysql": "mysql", "mysqlclient": "mysql", "asyncmy": "mysql", "sqlite3": "sqlite", "aiosqlite": "sqlite"}
GONE_WITHIN_S = 5.0  # how long the server may take to reap a closed connection (polled, not slept)
SLACK_S = 0.5  # scheduling slack on a loaded 2-core machine on top of the close bound


def info_for(driver_id: str, tmp_path: Path) -> ConnectInfo:
    kind = KIND_OF[driver_id.partition("+")[2] or driver_id]
    if kind == "postgresql":
        return postgres_info()
    if kind == "mysql":
        return mariadb_info()
    return sqlite_info(str(tmp_path / "sessions.db"))


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
    assert blocked.step.result(15).rowcount == 1
    assert b.execute(f"SELECT v FROM {blocked.table} WHERE k = 1").scalar() == 111
    b.rollback()


def test_close_while_blocked_cancels_and_leaves_nothing(blocked: Blocked) -> None:
    """close() of a blocked session cancels the step, returns within CLOSE_BOUND_S, and leaves no server connection,
    thread or event loop of the session behind; A's transaction is untouched."""
    b = blocked.b
    start = time.monotonic()
    b.close()
    elapsed = time.monotonic() - start
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
