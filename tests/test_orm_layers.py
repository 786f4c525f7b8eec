"""The ORM layers (peewee+, sqlmodel+) beyond the session contract suite (tests/test_sessions.py covers every id):
where they sit, that statements really go through the ORM's own objects, that the ORM's exceptions come out as the
DBAPI's codes, and that a run which does not name its drivers gives them cells in ``orm.*`` only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from live import installed_adapter, live_info

from dbmatrix.drivers import get_adapter, layer_pairs
from dbmatrix.errors import DriverError

ROOT = Path(__file__).resolve().parents[1]
# what each layer's own error for a duplicate key is, per live engine (SQLSTATE / errno / SQLite's name)
DUPLICATE = {"postgresql": "23505", "mysql": "1062", "sqlite": "SQLITE_CONSTRAINT_PRIMARYKEY"}


def test_peewee_sits_on_the_drivers_peewee_imports_and_sqlmodel_where_sqlalchemy_does() -> None:
    pairs = layer_pairs()
    assert pairs["peewee"] == ["psycopg", "psycopg2", "pymysql", "sqlite3"]
    assert pairs["sqlmodel"] == pairs["sa-orm"]


@pytest.mark.parametrize("driver_id", ["peewee+psycopg2", "peewee+psycopg", "peewee+pymysql", "peewee+sqlite3"])
def test_peewee_statements_go_through_its_database(driver_id: str, tmp_path: Path) -> None:
    """Peewee's Database adopted the DBAPI adapter's connection, sees each statement (its query hooks fire), and
    its wrapped exceptions come out as the DBAPI's own code."""
    adapter = installed_adapter(driver_id)
    info = live_info(driver_id, str(tmp_path / "pw.db"))
    s = adapter.connect(info)
    seen: list[str] = []
    try:
        db = s.peewee  # type: ignore[attr-defined]
        assert db.connection() is s.driver_connection()
        db.query_hooks.append(lambda event: seen.append(event.sql))
        t = f"dbm_pw_{tmp_path.name[-8:]}".replace("-", "_")
        s.execute(f"CREATE TABLE {t} (k INTEGER PRIMARY KEY)")
        try:
            s.execute(f"INSERT INTO {t} VALUES (:k)", {"k": 1})
            with pytest.raises(DriverError) as dup:
                s.execute(f"INSERT INTO {t} VALUES (:k)", {"k": 1})
            assert dup.value.code == DUPLICATE[info.kind], dup.value
        finally:
            s.execute(f"DROP TABLE {t}")
    finally:
        s.close()
    assert len(seen) == 4 and seen[0].startswith("CREATE TABLE"), seen


def test_sqlmodel_sessions_are_sqlmodels(tmp_path: Path) -> None:
    from sqlmodel import Session as SQLModelSession
    from sqlmodel.ext.asyncio.session import AsyncSession

    for driver_id, cls in (("sqlmodel+sqlite3", SQLModelSession), ("sqlmodel+aiosqlite", AsyncSession)):
        s = get_adapter(driver_id).connect(live_info(driver_id, str(tmp_path / "sm.db")))
        try:
            orm = getattr(s, "aorm", None) or s.orm  # type: ignore[attr-defined]
            assert isinstance(orm, cls), (driver_id, type(orm))
            assert s.execute("SELECT 1 + 1").scalar() == 2
        finally:
            s.close()


def test_orm_layers_run_only_the_orm_family_unless_named(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from dbmatrix.cli import main; sys.exit(main())", "run",
         "--target", "sqlite", "--case", "types.bool_roundtrip", "--case", "orm.upsert", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT / "framework")})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    doc = json.loads(next(out.glob("*/results.json")).read_text(encoding="utf-8"))
    drivers = {(c["case"], c["driver"]) for c in doc["results"]}
    types_drivers = {d for case, d in drivers if case == "types.bool_roundtrip"}
    assert "sqlite3" in types_drivers and not {d for d in types_drivers
                                               if d.startswith(("peewee+", "sqlmodel+", "django+", "tortoise+",
                                                                "piccolo+"))}
    assert {d for case, d in drivers if case == "orm.upsert"} == {"peewee+sqlite3", "sqlmodel+sqlite3",
                                                                    "sa-orm+sqlite3", "django+sqlite3",
                                                                    "tortoise+aiosqlite", "piccolo+aiosqlite"}


def test_default_bench_gives_the_orm_rung_its_own_driver_and_a_named_one_runs(tmp_path: Path) -> None:
    """The default bench plan gives each ORM its own default driver on the ORM rung's workloads, and
    SQLModel nothing (its 15 minutes); named, their own operations run and the profile charges each ORM's modules to
    its parts."""
    from dbmatrix.bench.runner import BenchConfig, CellSpec, plan_target
    from dbmatrix.matrix import MatrixRun

    run = MatrixRun.from_options(["sqlite"], [], [], [], "unused")
    cfg = BenchConfig.from_args([], None, None, None, quick=True)
    planned = {(s.driver, s.workload) for s in plan_target(run, run.targets[0], cfg) if isinstance(s, CellSpec)}
    orm = {(d, w) for d, w in planned if d.startswith(("peewee+", "sqlmodel+", "django+", "tortoise+", "piccolo+"))}
    assert ("sqlite3", "json_select") in planned and {d for d, _ in orm} == {
        "peewee+sqlite3", "django+sqlite3", "tortoise+aiosqlite", "piccolo+aiosqlite"}, planned
    assert {w for _, w in orm} == {"pk_select", "range_select", "insert_batch", "update_txn"}, orm

    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from dbmatrix.cli import main; sys.exit(main())", "bench", "--quick",
         "--target", "sqlite", "--driver", "peewee+sqlite3", "--driver", "django+sqlite3", "--workload", "pk_select",
         "--workload", "update_txn", "--rows", "1000", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT / "framework")})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    doc = json.loads(next(out.glob("*/results.json")).read_text(encoding="utf-8"))
    for orm in ("peewee", "django"):
        cells = [c for c in doc["results"] if c["driver"] == f"{orm}+sqlite3"]
        assert len(cells) == 4 and all(c["outcome"] == "measured" and c["metrics"]["errors"] == 0
                                       for c in cells), cells
        splits = [c["metrics"]["time_split_pct"] for c in cells if c["params"]["variant"] == "default"]
        assert splits and all(any(p.startswith(orm) for p in s) for s in splits), splits
