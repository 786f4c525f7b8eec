"""The pypika layer (``pypika+<dbapi>``): which drivers it sits on, that its session runs pypika's SQL through the
DBAPI adapter underneath with that adapter's errors, and that its bench statements return the hand-written rows.

The session contract and listen/stream suites run over its ids as over every registered id (tests/test_sessions.py,
tests/test_adapters_listen_stream.py); builder.* (cases/test_builder.py) judges what it can express.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from live import installed_adapter, live_info
from sqlalchemy.pool import NullPool

from dbmatrix.bench.op import DEFAULT, SELECTS, TUNED
from dbmatrix.bench.schema import Base, user_row
from dbmatrix.bench.workloads import call_params, select_sql
from dbmatrix.drivers import get_adapter, layer_pairs
from dbmatrix.errors import DriverError, UsageError
from dbmatrix.layers.pypika_layer import _select_builder, build_op, query_class

PYPIKA_IDS = ["pypika+psycopg", "pypika+pymysql", "pypika+sqlite3"]


def test_sits_on_one_blocking_dbapi_driver_per_dialect() -> None:
    assert layer_pairs()["pypika"] == ["psycopg", "pymysql", "sqlite3"]
    for impossible in ("pypika+asyncpg", "pypika+sa-core", "pypika+aiosqlite"):
        with pytest.raises(UsageError):
            get_adapter(impossible)
    adapter = get_adapter("pypika+pymysql")
    # the DBAPI's module first: MySQL sessions import their cursor classes from modules[0]
    assert adapter.modules == ("pymysql", "pypika") and adapter.distributions[0] == "pypika"
    assert adapter.paramstyle == get_adapter("pymysql").paramstyle and adapter.layer == "pypika"
    # judged by builder.* only: any other case's SQL reaches pymysql unchanged (pymysql's own column)
    assert adapter.runs_case("builder.upsert") and not adapter.runs_case("types.json_roundtrip")
    assert get_adapter("pymysql").runs_case("types.json_roundtrip")


@pytest.mark.parametrize("driver_id", PYPIKA_IDS)
def test_session_runs_pypika_queries_with_the_dbapi_errors(driver_id: str, tmp_path: Path) -> None:
    from pypika import Order, Table

    layer = installed_adapter(driver_id)
    info = live_info(driver_id, str(tmp_path / "pypika.db"))
    kind = info.kind
    s = layer.connect(info)
    dbapi = layer.under.connect(info)
    t = Table(f"pypika_layer_{tmp_path.name[-12:].replace('-', '_')}")
    try:
        s.execute(f"CREATE TABLE {t.get_table_name()} (id INTEGER PRIMARY KEY, name VARCHAR(10))")
        q = query_class(kind)
        s.execute(q.into(t).columns("id", "name").insert((1, "a"), (2, "b")))  # a query object, rendered by the layer
        rows = s.execute(q.from_(t).select(t.id, t.name).orderby(t.id, order=Order.desc)).rows
        assert rows == [(2, "b"), (1, "a")] and all(type(r[0]) is int and type(r[1]) is str for r in rows)
        broken = f"SELEC id FROM {t.get_table_name()}"
        with pytest.raises(DriverError) as by_layer:
            s.execute(broken)
        with pytest.raises(DriverError) as by_dbapi:
            dbapi.execute(broken)
        assert by_layer.value.code == by_dbapi.value.code and by_layer.value.code  # the DBAPI's own mapping
    finally:
        s.execute(f"DROP TABLE IF EXISTS {t.get_table_name()}")
        s.close()
        dbapi.close()


def test_bench_selects_return_the_hand_written_rows(tmp_path: Path) -> None:
    """Each SELECT workload as pypika builds it returns exactly the rows of the workload's own SQL (SQLite)."""
    from pypika import Table, functions

    path = tmp_path / "bench.db"
    engine = sa.create_engine(f"sqlite:///{path}", poolclass=NullPool)
    with engine.begin() as conn:
        Base.metadata.create_all(conn)
        conn.execute(sa.insert(Base.metadata.tables["bench_users"]), [user_row(i) for i in range(1, 301)])
    engine.dispose()
    s = installed_adapter("pypika+sqlite3").connect(live_info("pypika+sqlite3", str(path)))
    try:
        for workload in SELECTS:
            build = _select_builder(workload, "sqlite", query_class("sqlite"), Table("bench_users"), functions)
            for p in call_params(workload, 300, seed=7)[:5]:
                built = s.execute(str(build(p))).rows
                assert built and built == s.execute(select_sql(workload, "sqlite"), p).rows, (workload, p)
            # the tuned op (rendered once with Parameter placeholders, bound per call) reads what the default reads
            ops = {v: build_op(s, workload, v, 300, seed=7) for v in (DEFAULT, TUNED)}
            for _ in range(5):
                default, tuned = (s._do(ops[v].call) for v in (DEFAULT, TUNED))
                assert default and [tuple(r) for r in tuned] == [tuple(r) for r in default], workload
    finally:
        s.close()


# --- builder.* can fail: mutate the family and its cells must turn into deviations -----------------------------
def _mutant(old: str, new: str, cases: str, what: str) -> Any:
    from test_mutations import Mutant

    return Mutant("builder", "test_builder.py", old, new, cases, what)


BUILDER_ROUNDS = {
    "reference": [
        ('{"*": STD_LOCK + " SKIP LOCKED"}', '{"*": STD_LOCK + " SKIP LOCKEDX"}', "builder.skip_locked",
         "the reference's SKIP LOCKED misspelt: the builder's SQL runs, the reference's does not"),
        ("ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS s", "ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS s",
         "builder.window_frame", "the reference's frame widened: other sums"),
    ],
    "builder": [
        ("(lambda q, t: pk_lock(q, t, skip_locked=True)", "(lambda q, t: pk_lock(q, t)", "builder.skip_locked",
         "pypika's SKIP LOCKED silently dropped: its FOR UPDATE waits on the held row"),
        ('{"*": "SELECT id, name FROM {t} ORDER BY id LIMIT 2 OFFSET 1"}',
         '{"*": "SELECT id, CAST(id AS CHAR(3)) FROM {t} ORDER BY id LIMIT 2 OFFSET 1"}', "builder.limit_offset",
         "the reference's second column the same rows' ids as text: other values and types"),
    ],
}


@pytest.mark.parametrize("round_name", list(BUILDER_ROUNDS))
def test_builder_mutants_are_killed(round_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import test_mutations

    monkeypatch.setattr(test_mutations, "DRIVERS", "pypika+psycopg,pypika+sqlite3,sa-core+psycopg")
    mutants = [_mutant(*m) for m in BUILDER_ROUNDS[round_name]]
    results = test_mutations._run(tmp_path, mutants, sorted({m.cases for m in mutants}))
    survivors = [f"{m.cases}: {m.what}" for m in mutants if not test_mutations._killed(results, m.cases)]
    assert not survivors, "mutants survived (the case could not fail): " + "; ".join(survivors)
