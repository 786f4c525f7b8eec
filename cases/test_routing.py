"""routing.*: read/write splitting over a primary and its hot standby, proven on the servers.

Each cell is a primary/replica pair (a target configured with ``replica_of``). The router under test is
dbmatrix's reference router (``dbmatrix.routing``) or, with ``--router module:factory``, a team's own: a
callable ``factory(primary_url, replica_url)`` returning a sessionmaker of SQLAlchemy ORM sessions (sync or
asyncio). Where a statement ran is asked of the server that ran it (``pg_is_in_recovery()``,
``inet_server_port()`` in the same statement), never taken from the router's word.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hdrh.histogram import HdrHistogram
from sqlalchemy import Column, Integer, MetaData, Table, create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import registry

from dbmatrix.casekit import axes, expect
from dbmatrix.cell import Cell
from dbmatrix.errors import DriverError
from dbmatrix.routing import REFERENCE, REFERENCE_ASYNC, RoutedSessions, load_router, policy_of

ROUNDS = 300  # read-your-writes rounds per policy (bounded for CI; enough to see replica lag)
LAG_SAMPLES = 200


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``router``: the reference router, sync and asyncio, unless ``--router module:factory`` names a team's own."""
    if "router" in metafunc.fixturenames:
        spec = metafunc.config.getoption("dbm_router", None)
        routers = [spec] if spec else [REFERENCE, REFERENCE_ASYNC]
        metafunc.parametrize("router", routers, ids=[r.rpartition(":")[2] for r in routers])


@contextmanager
def engines(cell: Cell) -> Iterator[tuple[Engine, Engine]]:
    """Sync engines on the pair's scratch database: the primary's and the replica's."""
    primary, replica = create_engine(cell.url()), create_engine(cell.url(role="replica"))
    try:
        yield primary, replica
    finally:
        primary.dispose()
        replica.dispose()


def seed(cell: Cell, primary: Engine, replica: Engine, rows: int = 1) -> str:
    """A table with ``rows`` rows (k, v = 0) on the primary, replayed on the replica before the case goes on."""
    t = cell.table("routed")
    with primary.begin() as conn:
        conn.execute(text(f"CREATE TABLE {t} (k INTEGER PRIMARY KEY, v INTEGER NOT NULL)"))
        conn.execute(text(f"INSERT INTO {t} SELECT g, 0 FROM generate_series(1, {rows}) g"))
    wait_replayed(primary, replica, timeout_s=10)
    return t


def lsn(conn_engine: Engine, sql: str) -> int:
    with conn_engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


def wait_replayed(primary: Engine, replica: Engine, timeout_s: float) -> float:
    """Seconds until the replica replayed the primary's current WAL position (bounded)."""
    target = lsn(primary, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint")
    started = time.perf_counter()
    with replica.connect() as conn:
        while True:
            done = conn.execute(text("SELECT pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')::bigint")).scalar_one()
            if done >= target:
                return time.perf_counter() - started
            if time.perf_counter() - started > timeout_s:
                raise DriverError(None, "ReplicaLag", f"the replica did not replay {target} within {timeout_s}s")
            time.sleep(0.001)


class WriteLoad:
    """A background writer on the primary (its own table), so the replica has WAL to replay while we measure."""

    def __init__(self, primary: Engine, table: str):
        self.primary, self.table = primary, table
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dbm-write-load", daemon=True)
        self.commits = 0
        self.error: BaseException | None = None

    def _run(self) -> None:
        try:
            with self.primary.connect() as conn:
                while not self._stop.is_set():
                    with conn.begin():
                        conn.execute(text(f"INSERT INTO {self.table} (v) SELECT g FROM generate_series(1, 200) g"))
                    self.commits += 1
        except BaseException as exc:  # noqa: BLE001 - reported by the case after stop()
            self.error = exc

    def __enter__(self) -> WriteLoad:
        with self.primary.begin() as conn:
            conn.execute(text(f"CREATE TABLE {self.table} (id SERIAL PRIMARY KEY, v INTEGER)"))
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def open_router(spec: str, cell: Cell, **kw: Any) -> RoutedSessions:
    """Sessions of the router ``spec`` on the pair's scratch database (``kw``: the reference router's knobs)."""
    urls = (cell.url().render_as_string(hide_password=False),
            cell.url(role="replica").render_as_string(hide_password=False))
    return RoutedSessions(load_router(spec)(*urls, **kw))


@axes("pair", tool="router")
def test_writes_to_primary(cell: Cell, router: str) -> None:
    """Writes (text INSERT/UPDATE, an ORM flush) and every statement after them in the same transaction run on the
    primary; a plain read in a fresh session runs on the replica. Asked of the server: ``pg_is_in_recovery()``."""
    with engines(cell) as (primary, replica):
        t = seed(cell, primary, replica)
        table = Table(t, MetaData(), Column("k", Integer, primary_key=True), Column("v", Integer))
        mapped = type("Routed", (), {})
        reg = registry()
        reg.map_imperatively(mapped, table)
        routed = open_router(router, cell)
        misrouted: list[str] = []
        where = "SELECT pg_is_in_recovery()"
        try:
            with routed.session() as s:
                standby = s.scalar(text(f"INSERT INTO {t} (k, v) VALUES (2, 1) RETURNING pg_is_in_recovery()"))
                if standby:
                    misrouted.append("INSERT ... RETURNING ran on the standby")
                if s.scalar(text(where)):
                    misrouted.append("a read after a write in the same transaction ran on the standby")
                s.commit()
            with routed.session() as s:
                obj = mapped()
                obj.k, obj.v = 3, 1
                s.add(obj)
                s.flush()
                if s.scalar(text(where)):
                    misrouted.append("a read after an ORM flush in the same transaction ran on the standby")
                s.commit()
            with routed.session() as s:
                if not s.scalar(text(where)):
                    misrouted.append("a plain read in a fresh session ran on the primary")
        finally:
            routed.close()
            reg.dispose()
        with primary.connect() as conn:
            on_primary = conn.execute(text(f"SELECT k FROM {t} ORDER BY k")).scalars().all()
    if on_primary != [1, 2, 3]:
        misrouted.append(f"the primary holds rows {on_primary}, expected [1, 2, 3]")
    if misrouted:
        cell.differs("; ".join(misrouted))
    else:
        cell.supported("INSERT, ORM flush and same-transaction reads on the primary; a fresh read on the standby")


@axes("pair", tool="router")
def test_read_your_writes(cell: Cell, router: str) -> None:
    """After a commit, the same session reads its own write. Counted over ROUNDS commit-then-read rounds under a
    concurrent write load, first with plain routing (reads on the replica at once), then with the router under
    test (the reference router keeps reads on the primary until the replica replayed the commit's LSN)."""
    with engines(cell) as (primary, replica):
        t = seed(cell, primary, replica)
        stale: dict[str, int] = {}
        with WriteLoad(primary, cell.table("load")) as load:
            # the baseline reads the replica right after each commit: the reference router with its policy off
            for label, routed in (("without", open_router(REFERENCE, cell, ryw=False)),
                                  ("with", open_router(router, cell))):
                stale[label] = 0
                try:
                    for i in range(1, ROUNDS + 1):
                        with routed.session() as s:
                            s.execute(text(f"UPDATE {t} SET v = :v WHERE k = 1"), {"v": i})
                            s.commit()
                            stale[label] += s.scalar(text(f"SELECT v FROM {t} WHERE k = 1")) != i
                finally:
                    routed.close()
                policy = policy_of(routed.maker)
                held = policy.stats.held_for_ryw if policy is not None else None
        if load.error is not None:
            raise load.error
    per_1000 = {k: round(v * 1000 / ROUNDS, 1) for k, v in stale.items()}
    metrics = {"stale_per_1000_without_policy": per_1000["without"], "stale_per_1000_with_policy": per_1000["with"],
               "rounds": ROUNDS, "write_load_commits": load.commits}
    if held is not None:
        metrics["reads_held_on_primary"] = held
    detail = (f"stale reads per 1,000: {per_1000['without']} reading the replica at once, "
              f"{per_1000['with']} with the router's read-your-writes policy")
    if stale["with"]:
        cell.differs(detail, metrics=metrics)
    else:
        cell.supported(detail, metrics=metrics)


@axes("pair", tool="router")
@expect("measured")
def test_replica_lag(cell: Cell) -> None:
    """Replay lag under a write load: time from a commit on the primary until the standby has replayed it
    (``pg_last_wal_replay_lsn()`` reaching the commit's ``pg_current_wal_lsn()``), LAG_SAMPLES times."""
    hist = HdrHistogram(1, 60_000_000, 3)  # microseconds, up to a minute
    with engines(cell) as (primary, replica):
        t = seed(cell, primary, replica)
        with WriteLoad(primary, cell.table("load")) as load:
            with primary.connect() as conn:
                for i in range(LAG_SAMPLES):
                    with conn.begin():
                        conn.execute(text(f"UPDATE {t} SET v = :v WHERE k = 1"), {"v": i})
                    hist.record_value(max(1, int(wait_replayed(primary, replica, timeout_s=30) * 1e6)))
        if load.error is not None:
            raise load.error
    ms = {f"lag_{p}_ms": round(hist.get_value_at_percentile(q) / 1000.0, 3)
          for p, q in (("p50", 50), ("p99", 99), ("max", 100))}
    cell.record("measured", f"replay lag under write load: p50 {ms['lag_p50_ms']} ms, p99 {ms['lag_p99_ms']} ms",
                metrics={**ms, "samples": LAG_SAMPLES, "write_load_commits": load.commits})


@axes("pair", "driver")
def test_misrouted_write(cell: Cell) -> None:
    """A write sent to the standby fails with the engine's read-only error (PostgreSQL 25006
    read_only_sql_transaction), which the driver passes on with its code: a router bug is loud, not silent."""
    primary_session = cell.connect()
    t = cell.table("misrouted")
    primary_session.execute(f"CREATE TABLE {t} (k INTEGER PRIMARY KEY)")
    with engines(cell) as (primary, replica):
        wait_replayed(primary, replica, timeout_s=10)
    standby = cell.connect(role="replica")
    try:
        standby.execute(f"INSERT INTO {t} (k) VALUES (1)")
    except DriverError as err:
        if err.code == "25006":
            cell.supported(f"the standby refused the write: {err.cls} [{err.code}]: {err.message}",
                           mechanism="error:25006")
        else:
            cell.differs(f"the standby refused the write with another error: {err.cls} [{err.code}]: {err.message}",
                         mechanism=f"error:{err.code or err.cls}")
        return
    cell.differs("the INSERT sent to the standby succeeded")


@axes("pair", "driver")
@expect("differs")
def test_recovery_conflict(cell: Cell) -> None:
    """A long read on the standby while the primary deletes and vacuums the rows it reads: with
    hot_standby_feedback off, replay cancels the read after max_standby_streaming_delay with 40001 ("canceling
    statement due to conflict with recovery"). ``differs``: the standby cannot serve that read; ``supported``:
    the read finished (e.g. hot_standby_feedback on)."""
    writer = cell.connect()
    t = cell.table("conflict")
    writer.execute(f"CREATE TABLE {t} (k INTEGER PRIMARY KEY, pad TEXT)")
    writer.execute(f"INSERT INTO {t} SELECT g, repeat('x', 100) FROM generate_series(1, 2000) g")
    with engines(cell) as (primary, replica):
        wait_replayed(primary, replica, timeout_s=10)
        reader = cell.connect(role="replica")
        with replica.connect() as conn:
            delay = conn.execute(text("SHOW max_standby_streaming_delay")).scalar_one()
        # the read takes its snapshot at once, then sleeps long enough for replay to catch up with the vacuum
        future = reader.submit(f"SELECT count(*), pg_sleep(20) FROM {t}")
        _wait_active(replica, t, future)
        writer.execute(f"DELETE FROM {t}")
        writer.execute(f"VACUUM {t}")
        started = time.perf_counter()
        try:
            future.result(timeout=30)
        except DriverError as err:
            waited = round(time.perf_counter() - started, 3)
            cell.differs(f"the standby cancelled the read after {waited}s (max_standby_streaming_delay = {delay}): "
                         f"{err.cls} [{err.code}]: {err.message}", mechanism=f"abort:{err.code or err.cls}",
                         metrics={"cancelled_after_s": waited})
            return
    cell.supported("the long read on the standby finished while the primary vacuumed")


def _wait_active(replica: Engine, table: str, future: Any, timeout_s: float = 10) -> None:
    """Until the standby runs our read (so its snapshot predates the DELETE), or the read ended already."""
    started = time.perf_counter()
    with replica.connect() as conn:
        while time.perf_counter() - started < timeout_s and not future.done():
            if conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND "
                                 "strpos(query, :t) > 0 AND pid <> pg_backend_pid()"), {"t": table}).scalar():
                return
            conn.rollback()  # pg_stat_activity is a snapshot per transaction: the next look needs a new one
            time.sleep(0.005)
    if future.done():
        future.result()  # the read's own error (it ended before the primary did anything)
        return
    raise DriverError(None, "HarnessTimeout", f"the read of {table} did not start on the standby in {timeout_s}s")
