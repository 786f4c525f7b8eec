"""The lock observer decides "blocked" by asking the engine, so its answers stay right on a loaded machine.

Per engine (PostgreSQL, PostgreSQL behind PgBouncer in transaction pooling, MariaDB, SQLite), 200 rounds while two
CPU-burning processes compete for the cores: A updates row 1 and holds the lock; B's UPDATE of row 1 must be
reported blocked; C's UPDATE of row 2 (not locked) must be reported not blocked; A commits; B resumes and has
updated A's value. Zero wrong answers. Detection latency (submit -> reported blocked) is printed for the record
(``-s``); it is never asserted.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from live import PGBOUNCER_URL, installed_adapter, mariadb_info, postgres_info, sqlite_info
from sqlalchemy.engine import make_url

from dbmatrix.drivers.base import ConnectInfo
from dbmatrix.engines import engine_for

ROUNDS = 200
BURNERS = 2
WAIT_S = 15  # bound of one detection; a round that needs it is already wrong


def pgbouncer_info() -> ConnectInfo:
    return ConnectInfo(kind="postgresql", url=make_url(PGBOUNCER_URL), engine="postgresql", pooler="transaction")


TARGETS = {
    "postgres": ("psycopg", postgres_info),
    "pgbouncer": ("psycopg2", pgbouncer_info),
    "mariadb": ("pymysql", mariadb_info),
    "sqlite": ("sqlite3", None),
}


@pytest.fixture(scope="module")
def cpu_burners() -> Iterator[None]:
    """Two processes spinning on the CPU for the whole module (the machine has 2 cores)."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(BURNERS)]
    try:
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait(5)


@pytest.mark.parametrize("target", list(TARGETS))
def test_observer_detects_every_row_lock_wait(target: str, tmp_path: Path, cpu_burners: None) -> None:
    driver_id, make_info = TARGETS[target]
    adapter = installed_adapter(driver_id)
    info = make_info() if make_info else sqlite_info(str(tmp_path / "observer.db"))
    table = f"dbm_obs_{uuid.uuid4().hex[:10]}"
    wrong: list[str] = []
    latency_ms: list[float] = []
    with engine_for(info.kind, info.engine).observer(info.url) as observer, adapter.connect(info) as a, \
            adapter.connect(info) as b, adapter.connect(info) as c:
        a.execute(f"CREATE TABLE {table} (k INTEGER PRIMARY KEY, v INTEGER NOT NULL)")
        try:
            a.execute(f"INSERT INTO {table} VALUES (1, 0), (2, 0)")
            for i in range(ROUNDS):
                value = 10 * (i + 1)
                a.begin()
                a.execute(f"UPDATE {table} SET v = :v WHERE k = 1", {"v": value})
                b.begin()
                start = time.perf_counter()
                step = b.submit(f"UPDATE {table} SET v = v + 1 WHERE k = 1")
                if observer.wait_until_blocked(b, step, WAIT_S):
                    latency_ms.append((time.perf_counter() - start) * 1000.0)
                else:
                    wrong.append(f"round {i}: B's UPDATE of A's locked row was not reported blocked")
                if target != "sqlite":  # SQLite locks the whole database: C would wait too, rightly
                    c.begin()
                    free = c.submit(f"UPDATE {table} SET v = v WHERE k = 2")
                    if observer.wait_until_blocked(c, free, WAIT_S):
                        wrong.append(f"round {i}: C's UPDATE of an unlocked row was reported blocked")
                    free.result(WAIT_S)
                    c.commit()
                a.commit()
                step.result(WAIT_S)
                got = b.execute(f"SELECT v FROM {table} WHERE k = 1").scalar()
                b.commit()
                if got != value + 1:
                    wrong.append(f"round {i}: after A committed v = {value}, B's update gave {got!r}")
        finally:
            for s in (a, b, c):
                if s.in_transaction:
                    s.rollback()
            a.execute(f"DROP TABLE {table}")
    if latency_ms:
        print(f"\n{target}: detection latency median {statistics.median(latency_ms):.2f} ms, "
              f"max {max(latency_ms):.2f} ms over {len(latency_ms)} rounds")
    assert not wrong, f"{len(wrong)} wrong answers in {ROUNDS} rounds: {wrong[:5]}"
