"""Case axes, per-cell scratch databases, primary/replica pairs, connect options and structured results,
run end to end through pytest against the live local servers (PostgreSQL + its hot standby, MariaDB, SQLite).

The case module below is written into a temporary folder so these demo cases never join the real matrix.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest
from live import reachable

DEMO_CASES = '''
import time

import sqlalchemy as sa

from dbmatrix.casekit import axes, expect


@axes("target", tool="sqlalchemy")
@expect("pass")
def test_own_database(cell):
    """Every cell gets its own database: the same table name in every cell never collides."""
    url = cell.scratch_database()
    assert "***" in str(url) or url.password is None  # printing a URL never shows a password
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE alembic_version (v VARCHAR(32))")
            conn.exec_driver_sql("INSERT INTO alembic_version VALUES ('a')")
            rows = conn.exec_driver_sql("SELECT COUNT(*) FROM alembic_version").scalar()
    finally:
        engine.dispose()
    path = cell.artifact_path("state.sql")
    path.write_text("-- one row\\n")
    cell.record("pass", findings=[{"database": url.database, "rows": rows}],
                metrics={"rows": [rows], "by_kind": {"rows": rows}})


@axes("target")
@expect("pass")
def test_no_driver(cell):
    assert cell.driver is None
    cell.record("pass")


@expect("pass")
def test_connect_options(cell):
    options = {"statement_cache_size": 0} if cell.driver.id == "asyncpg" else {}
    session = cell.connect(options=options)
    assert session.execute("SELECT 1").scalar() == 1
    cell.record("pass")


@axes("pair")
@expect("pass")
def test_pair_replays(cell):
    """A row written on the primary's per-cell database shows on the replica within a bound."""
    cell.scratch_database()
    primary, replica = sa.create_engine(cell.url()), sa.create_engine(cell.url(role="replica"))
    try:
        with primary.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (k INT PRIMARY KEY)")
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        deadline = time.monotonic() + 20
        with replica.connect() as conn:
            while True:
                try:
                    seen = conn.exec_driver_sql("SELECT COUNT(*) FROM t").scalar()
                except sa.exc.ProgrammingError:
                    conn.rollback()
                    seen = 0
                if seen or time.monotonic() > deadline:
                    break
                time.sleep(0.02)
    finally:
        primary.dispose()
        replica.dispose()
    cell.record("pass" if seen == 1 else "fail", findings=[{"database": cell.url().database}])


@axes("pair", "driver")
@expect("pass")
def test_pair_sessions(cell):
    """Sessions on both roles of the run's scratch: the replica refuses writes (read-only)."""
    table = cell.table("t")
    writer = cell.connect()
    writer.execute(f"CREATE TABLE {table} (k INT)")
    reader = cell.connect(role="replica")
    try:
        reader.execute(f"CREATE TABLE {table}_r (k INT)")
        cell.record("fail", "the replica accepted a write")
    except Exception as exc:  # noqa: BLE001
        cell.record("pass", findings=[{"refused": getattr(exc, "code", None)}])
'''


def run_demo(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, Path]:
    cases = tmp_path / "cases"
    cases.mkdir(exist_ok=True)
    (cases / "test_axes_demo.py").write_text(DEMO_CASES)
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBMATRIX_")}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(cases), "-q", "-p", "no:randomly", "--dbm-out", str(out),
         f"--rootdir={tmp_path}", *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    return proc, out


def scratch_left(run_id: str) -> list[str]:
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        pg = [r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (f"%{run_id}%",))]
    conn2 = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="")
    try:
        with conn2.cursor() as cur:
            cur.execute("SHOW DATABASES LIKE %s", (f"%{run_id}%",))
            my = [r[0] for r in cur.fetchall()]
    finally:
        conn2.close()
    return pg + my


def test_axes_scratch_pairs_and_results(tmp_path: Path) -> None:
    assert reachable(5433), "postgres-replica (hot standby on 5433) must run: ci/provision starts it"
    proc, out = run_demo(tmp_path, "--target", "sqlite", "--target", "postgres", "--target", "postgres-replica",
                         "--target", "mariadb", "--driver", "sqlite3,psycopg,asyncpg,pymysql")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = json.loads((out / "latest" / "results.json").read_text())
    run_id = doc["run"]["id"]
    cells: dict[tuple[str, str, str], dict[str, Any]] = {
        (r["case"], r["target"], r["driver"]): r for r in doc["results"]
    }

    # @axes("target", tool=...): one cell per writable target, its own database each, driver = the tool
    own = {k: r for k, r in cells.items() if k[0] == "axes.own_database"}
    assert set(own) == {("axes.own_database", t, "sqlalchemy") for t in ("sqlite", "postgres", "mariadb")}
    databases = [r["findings"][0]["database"] for r in own.values()]
    assert len(set(databases)) == 3
    assert all(r["outcome"] == "pass" and r["verdict"] == "as-expected" for r in own.values())
    for t in ("postgres", "mariadb"):
        r = own[("axes.own_database", t, "sqlalchemy")]
        assert r["findings"][0]["database"].startswith(f"dbmatrix_{run_id}_{t}_")
        assert r["metrics"]["rows"] == [1] and r["metrics"]["by_kind"] == {"rows": 1}
        (artifact,) = r["artifacts"]
        assert (out / run_id / artifact).read_text() == "-- one row\n"

    # @axes("target") without a tool: driver "-"
    assert {k for k in cells if k[0] == "axes.no_driver"} == {
        ("axes.no_driver", t, "-") for t in ("sqlite", "postgres", "mariadb")
    }

    # default axes: target x driver, never on the read-only replica; options recorded in params
    opts = {k: r for k, r in cells.items() if k[0] == "axes.connect_options"}
    assert not [k for k in opts if k[1] == "postgres-replica"]
    assert opts[("axes.connect_options", "postgres", "asyncpg")]["params"] == {
        "options": {"statement_cache_size": 0}
    }
    assert opts[("axes.connect_options", "postgres", "psycopg")]["params"] == {}

    # pairs: one cell per replica (target = the replica), replay observed, the replica refuses writes
    pair = cells[("axes.pair_replays", "postgres-replica", "-")]
    assert pair["outcome"] == "pass", pair
    assert pair["findings"][0]["database"].startswith(f"dbmatrix_{run_id}_postgres_")
    sessions = {k: r for k, r in cells.items() if k[0] == "axes.pair_sessions"}
    assert set(sessions) == {("axes.pair_sessions", "postgres-replica", d) for d in ("psycopg", "asyncpg")}
    assert all(r["findings"] == [{"refused": "25006"}] for r in sessions.values()), sessions

    # the run record: versions of libraries and servers, host, and replica_of on the target
    assert doc["run"]["libraries"]["sqlalchemy"] and doc["run"]["libraries"]["pytest"]
    assert doc["run"]["host"]["cpus"] >= 1 and "cpu_model" in doc["run"]["host"]
    targets = {t["name"]: t for t in doc["targets"]}
    assert targets["postgres-replica"]["replica_of"] == "postgres"
    assert targets["postgres"]["server_version"] and targets["mariadb"]["server_version"]

    # every scratch database of this run (per cell and per run) is gone
    assert scratch_left(run_id) == []


def test_replica_without_its_primary_brings_the_primary(tmp_path: Path) -> None:
    """``--target postgres-replica`` alone: the primary is prepared (scratch) but gets no cells of its own."""
    proc, out = run_demo(tmp_path, "--target", "postgres-replica", "--driver", "psycopg", "-k", "pair")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = json.loads((out / "latest" / "results.json").read_text())
    assert {r["target"] for r in doc["results"]} == {"postgres-replica"}
    assert {r["outcome"] for r in doc["results"]} == {"pass"}
    assert scratch_left(doc["run"]["id"]) == []


@pytest.mark.parametrize("bad", ["self", "unknown"])
def test_replica_of_must_name_another_target(tmp_path: Path, bad: str) -> None:
    from dbmatrix.errors import UsageError
    from dbmatrix.targets.config import TargetResolver

    primary = "mine" if bad == "self" else "nowhere"
    (tmp_path / "dbmatrix.toml").write_text(
        f'[targets]\nmine = {{ url = "postgresql://u@127.0.0.1:5433/db", replica_of = "{primary}" }}\n'
    )
    with pytest.raises(UsageError, match="replica_of"):
        TargetResolver(tmp_path, environ={}).resolve("mine")


def test_configured_replica_of_is_kept(tmp_path: Path) -> None:
    from dbmatrix.targets.config import TargetResolver

    (tmp_path / "dbmatrix.toml").write_text(
        '[targets]\nstandby = { url = "postgresql://u@127.0.0.1:5433/db", replica_of = "postgres" }\n'
    )
    resolver = TargetResolver(tmp_path, environ={})
    standby = resolver.resolve("standby")
    assert standby.replica_of == "postgres" and standby.record().to_dict()["replica_of"] == "postgres"
    assert resolver.resolve("postgres-replica").replica_of == "postgres"
    assert [t.name for t in resolver.primaries_of([standby])] == ["postgres"]
