"""sqlite_wal.*: how SQLite in WAL mode behaves under concurrency, measured on a file of the run's scratch space.

One writer at a time, readers on a snapshot. What bites applications: a deferred transaction that read first and
then writes gets SQLITE_BUSY at once (its snapshot is stale, so the busy handler is skipped), while
``BEGIN IMMEDIATE`` waits its turn; writers without a busy timeout fail instead of waiting; Python's ``sqlite3``
legacy transaction control leaves SELECTs outside any transaction; a long reader stops checkpoints, so the WAL
file grows. Each case names what it saw, with numbers.
"""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from dbmatrix.casekit import axes, case_id
from dbmatrix.cell import Cell
from dbmatrix.errors import DriverError
from dbmatrix.retry import RetryPolicy, RetryStats, run_with_retry

WAL_DRIVERS = {"sqlite3", "aiosqlite", "sa-core+sqlite3"}
pytestmark = axes("target", "driver", kinds=("sqlite",), drivers=tuple(sorted(WAL_DRIVERS)))
WRITERS = 4
INCREMENTS = 25  # per writer
BUSY_TIMEOUT_MS = 5000


def wal_file(cell: Cell, name: str) -> Path:
    """A fresh database file in WAL mode next to the cell's scratch file."""
    base = Path(cell.url().database or "")
    path = base.parent / f"{cell.table(name)}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    with sqlite3.connect(path) as conn:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        conn.execute("create table counter (k integer primary key, v integer not null)")
        conn.execute("insert into counter values (1, 0)")
    conn.close()
    if mode != "wal":
        raise AssertionError(f"PRAGMA journal_mode=WAL answered {mode!r}")
    return path


def raw(path: Path, busy_ms: int) -> sqlite3.Connection:
    """A raw sqlite3 connection in autocommit mode (explicit BEGIN), with the given busy timeout."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=busy_ms / 1000.0, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {busy_ms}")
    return conn


def setup_pair(cell: Cell):
    t = cell.table("wal")
    a, b = cell.connect(), cell.connect()
    a.execute(f"drop table if exists {t}")
    a.execute(f"create table {t} (k integer primary key, v integer not null)")
    a.execute(f"insert into {t} values (1, 10)")
    return a, b, t


@case_id("sqlite_wal.deferred_upgrade_busy")
def test_deferred_upgrade_busy(cell):
    """A deferred transaction that read, then tries to write after another writer committed, fails at once with
    SQLITE_BUSY (SQLITE_BUSY_SNAPSHOT): waiting could not help, so the busy handler is skipped."""
    a, b, t = setup_pair(cell)
    a.begin("deferred")
    a.execute(f"select v from {t} where k = 1")  # A's snapshot starts here
    b.begin("immediate")
    b.execute(f"update {t} set v = 20 where k = 1")
    b.commit()
    start = time.perf_counter()
    try:
        a.execute(f"update {t} set v = 11 where k = 1")
        err = None
    except DriverError as exc:
        err = exc
    finally:
        a.rollback()
        a.execute(f"drop table {t}")
    waited_ms = round((time.perf_counter() - start) * 1000.0, 1)
    metrics = {"waited_ms": waited_ms}
    if err is None:
        cell.differs("A's write on a stale snapshot succeeded", metrics=metrics)
    elif not str(err.code).startswith("SQLITE_BUSY"):
        cell.differs(f"A's write failed with {err.cls} [{err.code}], not SQLITE_BUSY", metrics=metrics)
    else:
        cell.supported(f"A's write failed after {waited_ms} ms with [{err.code}] {err.message} "
                       "(no busy wait: the snapshot is stale)", mechanism="busy", metrics=metrics)


@case_id("sqlite_wal.immediate_waits")
def test_immediate_waits(cell):
    """``BEGIN IMMEDIATE`` while another transaction writes waits in the busy handler (the observer sees it)
    and starts as soon as the writer commits."""
    a, b, t = setup_pair(cell)
    observer = cell.observer()
    a.begin("immediate")
    a.execute(f"update {t} set v = 11 where k = 1")
    pending = b.submit("BEGIN IMMEDIATE")
    try:
        blocked = observer.wait_until_blocked(b, pending, 10)
    finally:
        a.commit()
    pending.result(10)
    try:
        seen = b.execute(f"select v from {t} where k = 1").scalar()
    finally:
        b.execute("ROLLBACK")
        b.execute(f"drop table {t}")
    if not blocked:
        cell.differs("B's BEGIN IMMEDIATE did not wait for A's write transaction")
    elif seen != 11:
        cell.differs(f"after waiting, B read {seen!r} instead of A's committed 11")
    else:
        cell.supported("B's BEGIN IMMEDIATE waited (busy handler) until A committed, then read 11",
                       mechanism="blocked")


def _increment(path: str, busy_ms: int, n: int, out: multiprocessing.Queue | None = None) -> tuple[int, int]:
    """``n`` transactions ``BEGIN IMMEDIATE; read; write read + 1; COMMIT`` with bounded retries on BUSY."""
    conn = raw(Path(path), busy_ms)
    stats = RetryStats()

    def once() -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            v = conn.execute("select v from counter where k = 1").fetchone()[0]
            conn.execute("update counter set v = ? where k = 1", (v + 1,))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    try:
        for _ in range(n):
            run_with_retry(once, RetryPolicy(attempts=200, base_delay=0.001, max_delay=0.02), stats)
    finally:
        conn.close()
    result = (stats.calls, stats.retries)
    if out is not None:
        out.put(result)
    return result


@axes("target", tool="sqlite3", kinds=("sqlite",))
@pytest.mark.parametrize("busy_timeout", [0, BUSY_TIMEOUT_MS])
@pytest.mark.parametrize("workers", ["threads", "processes"])
@case_id("sqlite_wal.concurrent_writers")
def test_concurrent_writers(cell, workers, busy_timeout):
    """Concurrent writers (threads or processes) each commit client-computed increments: none is lost. Without a
    busy timeout they fail with SQLITE_BUSY and retry (dbmatrix.retry); with one they wait. Throughput measured."""
    path = wal_file(cell, f"writers_{workers}_{busy_timeout}")
    start = time.perf_counter()
    if workers == "threads":
        results: list[tuple[int, int]] = []
        errors: list[BaseException] = []

        def work() -> None:
            try:
                results.append(_increment(str(path), busy_timeout, INCREMENTS))
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(WRITERS)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(60)
        if errors or any(th.is_alive() for th in threads):
            raise AssertionError(f"a writer failed or hung: {errors[:1]}")
    else:
        ctx = multiprocessing.get_context("spawn")
        queue = ctx.Queue()
        procs = [ctx.Process(target=_increment, args=(str(path), busy_timeout, INCREMENTS, queue))
                 for _ in range(WRITERS)]
        for p in procs:
            p.start()
        results = [queue.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(10)
    seconds = time.perf_counter() - start
    with sqlite3.connect(path) as conn:
        final = conn.execute("select v from counter where k = 1").fetchone()[0]
    conn.close()
    retries = sum(r for _, r in results)
    want = WRITERS * INCREMENTS
    # (processes: the time includes starting the interpreters)
    metrics = {"commits_per_s": round(want / seconds, 1), "busy_retries": retries, "seconds": round(seconds, 3)}
    if final != want:
        cell.differs(f"{want} increments committed, the counter holds {final}: lost writes", metrics=metrics)
    else:
        cell.supported(f"{WRITERS} {workers} x {INCREMENTS} increments, busy_timeout={busy_timeout} ms: counter "
                       f"{final}, {retries} SQLITE_BUSY retries, {metrics['commits_per_s']} commits/s",
                       mechanism="busy" if retries else "blocked", metrics=metrics)


@axes("target", tool="sqlite3", kinds=("sqlite",))
@case_id("sqlite_wal.legacy_transaction_trap")
def test_legacy_transaction_trap(cell):
    """Python's sqlite3 with its default (legacy) ``isolation_level=""`` opens a transaction only before an
    INSERT/UPDATE/DELETE: two SELECTs the application thinks share a transaction see another connection's commit
    in between. Recorded as ``differs`` (the reads are not in one transaction), as the expectations predict."""
    path = wal_file(cell, "legacy")
    app = sqlite3.connect(path)  # the default: legacy transaction control
    other = raw(path, 1000)
    try:
        first = app.execute("select v from counter where k = 1").fetchone()[0]
        in_tx = app.in_transaction
        other.execute("update counter set v = v + 5 where k = 1")
        second = app.execute("select v from counter where k = 1").fetchone()[0]
        app.commit()
    finally:
        app.close()
        other.close()
    if first != second and not in_tx:
        cell.differs(f"under isolation_level='' the first SELECT opened no transaction (in_transaction=False): "
                     f"the second SELECT saw another connection's commit ({first} then {second}); use "
                     "autocommit=False (3.12+) or an explicit BEGIN", mechanism="autocommit")
    else:
        cell.supported(f"both SELECTs read {first!r}/{second!r} in one transaction (in_transaction={in_tx})")


@axes("target", tool="sqlite3", kinds=("sqlite",))
@case_id("sqlite_wal.reader_blocks_checkpoint")
def test_reader_blocks_checkpoint(cell):
    """A long reader keeps its snapshot, so checkpoints cannot reset the WAL: commits made meanwhile make the WAL
    file grow; once the reader ends, a TRUNCATE checkpoint empties it. WAL sizes measured."""
    path = wal_file(cell, "checkpoint")
    reader, writer = raw(path, 1000), raw(path, 1000)
    writer.execute("PRAGMA wal_autocheckpoint = 100")
    wal = Path(f"{path}-wal")
    try:
        writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        reader.execute("BEGIN")
        reader.execute("select v from counter").fetchall()  # the snapshot starts here and pins the WAL
        for i in range(300):
            writer.execute("update counter set v = ? where k = 1", (i,))
        busy, log_frames, done = writer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        with_reader = wal.stat().st_size
        reader.execute("COMMIT")
        writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        after = wal.stat().st_size if wal.exists() else 0
    finally:
        reader.close()
        writer.close()
        os.sync()
    metrics = {"wal_bytes_with_reader": with_reader, "wal_bytes_after": after,
               "frames": log_frames, "checkpointed_frames": done}
    if with_reader > 100 * 4096 and done < log_frames and after == 0:
        cell.supported(f"with the reader open the WAL grew to {with_reader} bytes ({log_frames} frames, only "
                       f"{done} checkpointed past autocheckpoint=100); after it ended, TRUNCATE left {after}",
                       mechanism="snapshot", metrics=metrics)
    else:
        cell.differs(f"WAL {with_reader} bytes with the reader ({done}/{log_frames} frames checkpointed), {after} "
                     "after", metrics=metrics)
