"""The asyncio ORM layers (tortoise+, piccolo+) against the live servers: where they sit, that the ORM really runs
on the DBAPI adapter's connection, and every operation of their ORM kits (the orm.* cases of the second set are
judged elsewhere; here each operation either works with the values it must return or raises the ORM's named
``Unsupported``)."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import decimal
import sqlite3
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest
from live import installed_adapter, live_info, pgbouncer_info, postgres_info

from dbmatrix.drivers import get_adapter, layer_pairs
from dbmatrix.errors import DriverError, UsageError
from dbmatrix.layers.ormkit import ISOLATION_LEVELS
from dbmatrix.layers.tortoise_layer import DEFAULT_MYSQL_DRIVER, import_tortoise_backend

IDS = ["tortoise+asyncpg", "tortoise+asyncmy", "tortoise+aiomysql", "tortoise+aiosqlite", "piccolo+asyncpg",
       "piccolo+aiosqlite"]
# (orm, kind) -> the operations of the second set the ORM has no API for there
NO_API = {("tortoise", k): {"update_returning", "isolated_read", "window", "cte"}
          for k in ("postgresql", "mysql", "sqlite")}
NO_API[("tortoise", "sqlite")] |= {"json_filter"}
NO_API |= {("piccolo", k): {"isolated_read", "window", "cte"} for k in ("postgresql", "sqlite")}


def test_where_they_sit() -> None:
    pairs = layer_pairs()
    assert pairs["tortoise"] == ["asyncpg", "asyncmy", "aiosqlite", "aiomysql"]
    assert pairs["piccolo"] == ["asyncpg", "aiosqlite"]
    with pytest.raises(UsageError, match=r"cannot sit on driver asyncmy \(Piccolo has no MySQL/MariaDB engine"):
        get_adapter("piccolo+asyncmy")
    # the MySQL driver Tortoise picks itself when both are installed: the one its client module imported
    from tortoise.backends.mysql import client

    assert client.mysql.__name__ == DEFAULT_MYSQL_DRIVER == "asyncmy"
    # tortoise+aiomysql is Tortoise's fallback: its MySQL client bound to aiomysql and PyMySQL's errors
    fallback = import_tortoise_backend("aiomysql")
    assert (fallback.mysql.__name__, fallback.errors.__name__) == ("aiomysql", "pymysql.err")
    assert client.mysql.__name__ == "asyncmy"  # the module Tortoise imported is left as it was


@pytest.mark.parametrize("driver_id", IDS)
def test_every_kit_operation(driver_id: str, tmp_path: Path) -> None:
    adapter = installed_adapter(driver_id)
    info = live_info(driver_id, str(tmp_path / "orm.db"))
    s = adapter.connect(info)
    kit = adapter.orm_kit(s, f"dbm_ak_{uuid.uuid4().hex[:8]}")  # type: ignore[attr-defined]
    orm, kind = kit.orm, info.kind
    try:
        kit.create_schema()
        ids, _ = kit.bulk_insert(["a", "b", "c"])
        assert len(ids) == 3
        kit.upsert("z", 1) if (orm, kind) != ("tortoise", "mysql") else None  # MariaDB: 1064, see expectations
        s.execute(f"UPDATE {kit.table('things')} SET n = id, f_json = :j WHERE name = 'a'", {"j": '{"k": "v"}'})
        s.execute(f"UPDATE {kit.table('things')} SET n = id WHERE n IS NULL")
        rows = s.execute(f"SELECT id, n FROM {kit.table('things')} ORDER BY id").rows
        kit.seed_books(3)
        kit.count_statements()
        for eager, most in ((False, 4), (True, 1)):
            kit.statements = 0
            got, _ = kit.books_with_authors(eager)
            assert got == [(f"book {i}", f"author {i}") for i in range(3)]
            # SQLite's trace counts Piccolo's PRAGMA foreign_keys before each query too
            assert 1 <= kit.statements <= most * (2 if (orm, kind) == ("piccolo", "sqlite") else 1), kit.statements
        second = {"update_returning": lambda: kit.update_returning([rows[0][0]], 10),
                  "isolated_read": lambda: kit.isolated_read(ISOLATION_LEVELS[-1], "SELECT 1"),
                  "json_filter": lambda: kit.json_filter("k", "v"), "window": kit.window,
                  "cte": lambda: kit.cte(1)}
        for name, op in second.items():
            if name in NO_API[(orm, kind)]:
                with pytest.raises(DriverError) as no_api:
                    op()
                assert no_api.value.cls == "Unsupported" and no_api.value.message.startswith(f"{orm}: "), name
        if "update_returning" not in NO_API[(orm, kind)]:
            assert kit.update_returning([rows[0][0]], 10)[0] == [(rows[0][0], rows[0][1] + 10)]
        if "json_filter" not in NO_API[(orm, kind)]:
            # Piccolo: arrow(key).eq() of the value's JSON text, on a JSONB column on PostgreSQL (as its docs show)
            assert kit.json_filter("k", "v")[0] == [rows[0][0]]
        pk = kit.seed_account(0)
        assert kit.read_balance(pk) == 0
        kit.save_balance(pk, 5)
        step, _ = kit.add_atomic(pk, 100)
        kit.run(step)
        kit.end(True)
        assert s.execute(f"SELECT balance FROM {kit.table('accounts')}").scalar() == 105
        assert kit.nested()[0][-1] == "outer"
        if kind == "postgresql":
            assert set(kit.pooler_fixes) == {"statement_cache_size=0"}
            kit.with_fix("statement_cache_size=0")
            assert s.driver_connection()._stmt_cache.get_max_size() == 0
        assert kit.pooled_work(2)
    finally:
        for t in ("books", "authors", "things", "accounts"):
            s.execute(f"DROP TABLE IF EXISTS {kit.table(t)}")
        s.close()


@pytest.mark.parametrize("driver_id", ["tortoise+aiosqlite", "piccolo+aiosqlite"])
def test_their_sqlite3_adapters_stay_with_their_sessions(driver_id: str, tmp_path: Path) -> None:
    """Tortoise (Decimal, date, datetime) and Piccolo (Decimal, UUID, date/time, list) register sqlite3 adapters for
    the whole process when imported: in a fresh interpreter, after the layer's kit saved a Decimal through them,
    plain sqlite3 still refuses a Decimal as it does on its own."""
    code = textwrap.dedent(f"""
        import decimal, sqlite3
        from dbmatrix.drivers import get_adapter
        from dbmatrix.drivers.base import ConnectInfo
        from sqlalchemy.engine import make_url

        def binds_decimal():
            try:
                sqlite3.connect(":memory:").execute("SELECT ?", (decimal.Decimal("1.5"),)).fetchone()
                return True
            except sqlite3.ProgrammingError:
                return False

        assert not binds_decimal()
        info = ConnectInfo(kind="sqlite", url=make_url("sqlite:///{tmp_path}/x.db"), engine="sqlite")
        adapter = get_adapter("{driver_id}")
        session = adapter.connect(info)
        kit = adapter.orm_kit(session, "ad")
        kit.create_schema()
        assert kit.load_field(kit.save_field("decimal", decimal.Decimal("2.5")), "decimal") == decimal.Decimal("2.5")
        assert not binds_decimal(), "between the ORM's operations, plain sqlite3 binds as sqlite3 does"
        session.close()
        assert not binds_decimal()
        print("ok")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stdout + proc.stderr


@pytest.mark.parametrize("driver_id", ["tortoise+asyncpg", "piccolo+asyncpg"])
def test_the_pooler_fix_through_pgbouncer(driver_id: str) -> None:
    """With the kit's pooler fix (asyncpg's statement_cache_size=0 through the ORM's config) eight concurrent clients
    do their everyday work through PgBouncer's transaction pooling (at asyncpg's defaults they fail with 26000 /
    42P05: the orm.pooler_safe case records that). Tortoise's work then never prepares a named statement. Piccolo's
    ``batch()`` is an asyncpg cursor, which prepares a named statement whatever the cache size: a client may still
    meet 26000 / 42P05 there, and only there."""
    adapter = installed_adapter(driver_id)
    prefix = f"dbm_pool_{uuid.uuid4().hex[:8]}"
    setup = adapter.connect(postgres_info())
    owner = adapter.orm_kit(setup, prefix)  # type: ignore[attr-defined]
    owner.create_schema()
    # pooler="transaction": no server id is read through the pooler (the adapter's own statements are prepared)
    sessions = [adapter.connect(dataclasses.replace(pgbouncer_info(), pooler="transaction")) for _ in range(8)]

    def work(kit: Any) -> str:
        try:
            kit.pooled_work(10)
        except DriverError as exc:
            return exc.code or exc.cls
        return "ok"

    try:
        kits = [adapter.orm_kit(s, prefix) for s in sessions]  # type: ignore[attr-defined]
        for kit in kits:
            kit.with_fix("statement_cache_size=0")
        with concurrent.futures.ThreadPoolExecutor(len(kits)) as pool:
            outcomes = list(pool.map(work, kits))
        if driver_id.startswith("tortoise+"):
            assert outcomes == ["ok"] * 8
            assert setup.execute(f"SELECT count(*) FROM {owner.table('things')}").scalar() == 80
        else:
            assert set(outcomes) <= {"ok", "26000", "42P05"}, outcomes
    finally:
        for s in sessions:
            s.close()
        for t in ("books", "authors", "things", "accounts"):
            setup.execute(f"DROP TABLE IF EXISTS {owner.table(t)}")
        setup.close()


@pytest.mark.parametrize("driver_id", ["tortoise+aiosqlite", "piccolo+aiosqlite"])
def test_their_bench_operations(driver_id: str, tmp_path: Path) -> None:
    """Every bench workload and variant of the layer, built by its bench module and run on the session's loop
    against the bench schema: reads return the users asked for, writes land (in process: no bench workers)."""
    import sqlalchemy as sa

    from dbmatrix.bench import ops, schema
    from dbmatrix.bench.op import SELECTS
    from dbmatrix.bench.workloads import BATCH_ROWS

    path = tmp_path / "bench.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        schema.Base.metadata.create_all(conn)
        conn.execute(sa.insert(schema.users), [schema.user_row(i) for i in range(1, 201)])
    engine.dispose()
    adapter = installed_adapter(driver_id)
    s = adapter.connect(live_info(driver_id, str(path)))
    try:
        for workload in (*SELECTS, "update_txn", "insert_batch"):
            for variant in ops.variants(driver_id, workload):
                op = ops.build_op(s, driver_id, workload, variant, 200, 7)
                assert op.is_async
                async def once(call: Any = op.call) -> Any:
                    return await call()  # as the bench worker's loop does (an awaitable, not always a coroutine)

                got = [s.loop_thread.run(once()) for _ in range(3)]  # type: ignore[attr-defined]
                if workload in SELECTS:
                    assert all(g for g in got), (workload, variant, got)
        events = s.execute(f"SELECT count(*) FROM {schema.EVENTS}").scalar()
        touched = s.execute(f"SELECT count(*) FROM {schema.USERS} WHERE score <> id % 1000").scalar()
        # update_txn: 3 calls x (default, tuned), one event each; insert_batch: 3 batches (default only)
        assert events == 3 * 2 + 3 * BATCH_ROWS and touched >= 1, (events, touched)
    finally:
        s.close()
    with pytest.raises(sqlite3.ProgrammingError):  # the ORM's sqlite3 adapters were held per call only
        sqlite3.connect(":memory:").execute("SELECT ?", (decimal.Decimal("1.5"),))


def test_each_library_keeps_its_own_adapters() -> None:
    """Peewee (Decimal as str), Tortoise (Decimal as str) and Piccolo (Decimal as float) register adapters for the
    same types: in a fresh interpreter that imports all three, each layer's sessions hold its own library's."""
    code = textwrap.dedent("""
        import decimal, sqlite3
        from dbmatrix.drivers import get_adapter
        from dbmatrix.layers.sqlite_adapters import kept_for

        for driver_id in ("peewee+sqlite3", "tortoise+aiosqlite", "piccolo+aiosqlite"):
            assert get_adapter(driver_id).unavailable_reason() is None  # the guarded first imports
        key = (decimal.Decimal, sqlite3.PrepareProtocol)
        kept = {lib: kept_for(lib)._kept[0, key] for lib in ("peewee", "tortoise", "piccolo")}
        assert kept["peewee"] is str and kept["tortoise"] is str, kept  # both bind a Decimal as its text
        assert kept["piccolo"].__module__ == "piccolo.engine.sqlite", kept  # convert_numeric_in: a float
        assert key not in sqlite3.adapters and key not in __import__("_sqlite3").adapters
        print("ok")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stdout + proc.stderr
