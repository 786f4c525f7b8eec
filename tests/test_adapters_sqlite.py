"""The SQLite adapters (sqlite3, aiosqlite) against a WAL-mode database file in pytest's tmp_path.

Every test runs on each adapter with the same assertions; a second session on the same file stands in
for "another client".
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from live import installed_adapter, sqlite_info

from dbmatrix.drivers.base import ConnectInfo, DriverAdapter, Session
from dbmatrix.engines import IsolationUnsupported
from dbmatrix.errors import DriverError

DRIVERS = ["sqlite3", "aiosqlite"]


@pytest.fixture(params=DRIVERS)
def adapter(request: pytest.FixtureRequest) -> DriverAdapter:
    return installed_adapter(request.param)


@pytest.fixture
def info(adapter: DriverAdapter, tmp_path: Path) -> ConnectInfo:
    """A fresh database file in WAL mode (as the ``sqlite`` target uses) holding t = {(1, 10), (2, 20)}."""
    info = sqlite_info(str(tmp_path / "matrix.db"))
    with adapter.connect(info) as s:
        assert s.execute("PRAGMA journal_mode=WAL").scalar() == "wal"
        s.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v INTEGER)")
        s.execute("INSERT INTO t VALUES (1, 10), (2, 20)")
    return info


@pytest.fixture
def session(adapter: DriverAdapter, info: ConnectInfo) -> Iterator[Session]:
    with adapter.connect(info) as s:
        yield s


@pytest.fixture
def other(adapter: DriverAdapter, info: ConnectInfo) -> Iterator[Session]:
    """A second connection to the same file."""
    with adapter.connect(info) as s:
        yield s


def test_connect_is_autocommit_and_bounded(session: Session) -> None:
    """No server id on SQLite; WAL persists in the file; the busy timeout bounds every lock wait."""
    assert session.server_id is None
    assert session.execute("PRAGMA journal_mode").scalar() == "wal"
    # the busy watch (engines/sqlite.py) replaces the busy-timeout handler with one of the same bound, so SQLite's
    # PRAGMA reports 0 and the bound lives in the watch
    assert session.busy_watch is not None and session.busy_watch.timeout_ms == 20000
    assert session.execute("PRAGMA busy_timeout").scalar() == 0
    # Autocommit: a write outside begin() is committed at once, so BEGIN is accepted right after it.
    session.execute("INSERT INTO t VALUES (3, 30)")
    session.begin()
    session.rollback()
    assert session.execute("SELECT count(*) FROM t").scalar() == 3


def test_parameters_bind_int_str_none_bytes(session: Session) -> None:
    """``:name`` parameters bind each type; a '%' in the SQL text stays a literal '%'."""
    session.execute("CREATE TEMP TABLE p (k INTEGER PRIMARY KEY, s TEXT, n INTEGER, b BLOB)")
    blob = b"\x00\xff'%s"
    res = session.execute("INSERT INTO p VALUES (:k, :s, :n, :b)", {"k": 7, "s": "é😀 50%", "n": None, "b": blob})
    assert res.rowcount == 1 and res.columns == [] and res.rows == []
    res = session.execute(
        "SELECT k, s, n, b, :x || '%' AS pct FROM p WHERE k = :k AND s LIKE '%50%'", {"k": 7, "x": "100"}
    )
    assert res.columns == ["k", "s", "n", "b", "pct"]
    assert res.rows == [(7, "é😀 50%", None, blob, "100%")]
    assert session.execute("SELECT '100%'").scalar() == "100%"


def test_update_rowcount_counts_matched_rows(session: Session) -> None:
    """SQLite counts rows the UPDATE matched (same value or not); a SELECT reports -1."""
    assert session.execute("UPDATE t SET v = v + 1 WHERE k <= :k", {"k": 2}).rowcount == 2
    assert session.execute("UPDATE t SET v = 21 WHERE k = 2").rowcount == 1  # value unchanged, still counted
    assert session.execute("SELECT * FROM t").rowcount == -1


def test_commit_persists(session: Session, other: Session) -> None:
    session.begin()
    session.execute("UPDATE t SET v = 11 WHERE k = 1")
    assert other.execute("SELECT v FROM t WHERE k = 1").scalar() == 10  # WAL: readers see the last commit
    session.commit()
    assert other.execute("SELECT v FROM t WHERE k = 1").scalar() == 11


def test_rollback_discards(session: Session, other: Session) -> None:
    session.begin()
    session.execute("UPDATE t SET v = 11 WHERE k = 1")
    session.rollback()
    assert other.execute("SELECT v FROM t WHERE k = 1").scalar() == 10
    assert session.execute("SELECT v FROM t WHERE k = 1").scalar() == 10


def test_begin_immediate_takes_the_write_lock_at_once(session: Session, other: Session) -> None:
    """BEGIN IMMEDIATE holds the write lock before any write: another writer gets SQLITE_BUSY."""
    other.execute("PRAGMA busy_timeout = 0")
    session.begin("immediate")
    with pytest.raises(DriverError) as err:
        other.execute("UPDATE t SET v = 0 WHERE k = 1")
    session.rollback()
    assert err.value.code == "SQLITE_BUSY"


def test_begin_deferred_takes_no_lock_until_it_writes(session: Session, other: Session) -> None:
    other.execute("PRAGMA busy_timeout = 0")
    session.begin("serializable")  # SQLite's only level: a DEFERRED transaction
    assert other.execute("UPDATE t SET v = 12 WHERE k = 1").rowcount == 1
    session.commit()


def test_begin_read_uncommitted_sets_the_pragma(session: Session) -> None:
    session.begin("read uncommitted")
    assert session.execute("PRAGMA read_uncommitted").scalar() == 1
    session.commit()


def test_begin_unknown_level_is_refused(session: Session) -> None:
    """A level SQLite does not offer is IsolationUnsupported (the cell becomes ``unsupported``, not ``error``)."""
    with pytest.raises(IsolationUnsupported, match="repeatable read"):
        session.begin("repeatable read")
    assert not session.in_transaction


def test_errors_carry_the_extended_result_code(session: Session) -> None:
    session.execute("CREATE TEMP TABLE e (k INTEGER PRIMARY KEY, u TEXT UNIQUE)")
    session.execute("INSERT INTO e VALUES (1, 'a')")
    with pytest.raises(DriverError) as dup:
        session.execute("INSERT INTO e VALUES (:k, 'b')", {"k": 1})
    assert (dup.value.code, dup.value.cls) == ("SQLITE_CONSTRAINT_PRIMARYKEY", "IntegrityError")
    with pytest.raises(DriverError) as unique:
        session.execute("INSERT INTO e VALUES (2, :u)", {"u": "a"})
    assert unique.value.code == "SQLITE_CONSTRAINT_UNIQUE"
    with pytest.raises(DriverError) as syntax:
        session.execute("SELEC 1")
    assert (syntax.value.code, syntax.value.cls) == ("SQLITE_ERROR", "OperationalError")
    assert "syntax error" in syntax.value.message
    assert session.execute("SELECT 1").scalar() == 1


def test_submit_waits_on_the_write_lock(session: Session, other: Session) -> None:
    """A write blocked by another connection's write transaction waits in the busy handler, then completes."""
    session.execute("PRAGMA busy_timeout = 2000")
    other.execute("BEGIN IMMEDIATE")
    other.execute("UPDATE t SET v = 11 WHERE k = 1")
    future = session.submit("UPDATE t SET v = v + 100 WHERE k = :k", {"k": 1})
    try:
        time.sleep(0.3)
        assert not future.done()
    finally:
        other.commit()
    assert future.result(timeout=10).rowcount == 1
    assert session.execute("SELECT v FROM t WHERE k = 1").scalar() == 111


def test_hot_path_runs_the_driver_call(session: Session) -> None:
    run = session.hot_path("SELECT v FROM t WHERE k = :k", {"k": 2})
    assert [tuple(r) for r in run()] == [(20,)]
    assert [tuple(r) for r in run()] == [(20,)]  # repeatable: the benchmark loop calls it many times


def test_connect_failure_is_a_driver_error(adapter: DriverAdapter, tmp_path: Path) -> None:
    info = sqlite_info(str(tmp_path / "no" / "such" / "dir" / "x.db"))
    with pytest.raises(DriverError) as err:
        adapter.connect(info)
    assert err.value.code == "SQLITE_CANTOPEN"
