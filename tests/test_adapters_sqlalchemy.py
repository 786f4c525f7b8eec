"""SQLAlchemy Core and ORM over every DBAPI driver, against the live servers (PostgreSQL, MariaDB) and a SQLite file.

Every test runs for ``sa-core+<dbapi>`` and ``sa-orm+<dbapi>``; the same assertions hold for each combination.
"""

from __future__ import annotations

import decimal
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from live import installed_adapter, live_kind, mariadb_info, postgres_info, reachable, sqlite_info
from sqlalchemy.engine import make_url

from dbmatrix import redaction
from dbmatrix.drivers import BUILTIN_DRIVERS, BUILTIN_LAYERS, get_adapter, layer_pairs, registry
from dbmatrix.drivers.base import ConnectInfo, Session
from dbmatrix.drivers.sqlalchemy_driver import SQLAlchemyAdapter, text_sql
from dbmatrix.engines import IsolationUnsupported
from dbmatrix.errors import DriverError

# every built-in pair of a SQLAlchemy layer and a DBAPI driver it sits on, and the live server kind of each
DRIVER_IDS = [f"{layer}+{dbapi}" for layer, dbapis in layer_pairs().items() if layer in BUILTIN_LAYERS
              and issubclass(registry().layers[layer], SQLAlchemyAdapter)
              for dbapi in dbapis if dbapi in BUILTIN_DRIVERS]
KIND_OF = {i.partition("+")[2]: live_kind(i) for i in DRIVER_IDS}
# per target kind, so that a test that only applies to some kinds is generated for those and no others (no skips)
POSTGRES_IDS = [i for i in DRIVER_IDS if KIND_OF[i.partition("+")[2]] == "postgresql"]
MYSQL_IDS = [i for i in DRIVER_IDS if KIND_OF[i.partition("+")[2]] == "mysql"]
SQLITE_IDS = [i for i in DRIVER_IDS if KIND_OF[i.partition("+")[2]] == "sqlite"]
SECRET = "Sup3rS3cretPW"


@pytest.fixture(params=DRIVER_IDS)
def driver_id(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def adapter(driver_id: str) -> SQLAlchemyAdapter:
    adapter = installed_adapter(driver_id)
    assert isinstance(adapter, SQLAlchemyAdapter)
    return adapter


@pytest.fixture
def kind(adapter: SQLAlchemyAdapter) -> str:
    return KIND_OF[adapter.dbapi]


@pytest.fixture
def info(kind: str, tmp_path: Path) -> ConnectInfo:
    if kind == "postgresql":
        if not reachable(5432):
            pytest.fail("PostgreSQL is not running on 127.0.0.1:5432 (run ci/provision)")
        return postgres_info()
    if kind == "mysql":
        if not reachable(3306):
            pytest.fail("MariaDB is not running on 127.0.0.1:3306 (run ci/provision)")
        return mariadb_info()
    return sqlite_info(str(tmp_path / "sa.db"))


@pytest.fixture
def connect(adapter: SQLAlchemyAdapter, info: ConnectInfo) -> Iterator[Callable[[], Session]]:
    """Opens sessions on the target and closes all of them at the end of the test."""
    sessions: list[Session] = []

    def open_session() -> Session:
        sessions.append(adapter.connect(info))
        return sessions[-1]

    yield open_session
    for session in reversed(sessions):
        session.close()


@pytest.fixture
def table(connect: Callable[[], Session], kind: str) -> Iterator[str]:
    """A real (not temporary) table with a unique name, so that a second session sees it; dropped at the end."""
    name = f"dbm_sa_{uuid.uuid4().hex[:10]}"
    admin = connect()
    engine = " ENGINE=InnoDB" if kind == "mysql" else ""
    admin.execute(f"CREATE TABLE {name} (k INT PRIMARY KEY, v INT){engine}")
    try:
        yield name
    finally:
        admin.execute(f"DROP TABLE IF EXISTS {name}")


def test_registry_builds_instance_attributes(driver_id: str) -> None:
    adapter = get_adapter(driver_id)
    layer, _, dbapi = driver_id.partition("+")
    assert (adapter.id, adapter.layer, adapter.dbapi, adapter.paramstyle) == (driver_id, layer, dbapi, "named")
    assert adapter.is_async == (dbapi in {"asyncpg", "psycopg-async", "asyncmy", "aiosqlite", "aiomysql"})
    assert adapter.supports(KIND_OF[dbapi])
    assert adapter.supports("cockroachdb") == (KIND_OF[dbapi] == "postgresql")
    # the layer sits on exactly the DBAPI drivers that name a SQLAlchemy dialect
    assert set(KIND_OF) == {d for d in BUILTIN_DRIVERS if get_adapter(d).sa_driver is not None}


def test_connect_server_id(connect: Callable[[], Session], kind: str) -> None:
    session = connect()
    if kind == "sqlite":
        assert session.server_id is None
    else:
        assert isinstance(session.server_id, int) and session.server_id > 0
        assert connect().server_id != session.server_id  # one DBAPI connection per session (NullPool)


def test_parameter_binding(connect: Callable[[], Session], kind: str) -> None:
    session = connect()
    blob = {"postgresql": "BYTEA", "mysql": "VARBINARY(16)", "sqlite": "BLOB"}[kind]
    session.execute(f"CREATE TEMPORARY TABLE bind_t (i INT, s VARCHAR(20), n INT, b {blob})")
    raw = b"\x00\xff"
    if session.adapter.dbapi == "aiomysql":  # aiomysql 0.3 cannot escape bytes with PyMySQL >= 1.1.1 (its adapter)
        with pytest.raises(DriverError, match="not callable"):
            session.execute("SELECT :b", {"b": raw})
        session.execute("INSERT INTO bind_t VALUES (:i, :s, :n, UNHEX('00FF'))", {"i": 7, "s": "it's", "n": None})
    else:
        session.execute("INSERT INTO bind_t VALUES (:i, :s, :n, :b)", {"i": 7, "s": "it's", "n": None, "b": raw})
    # '%' in a literal with parameters present; ':word' inside literals is not a parameter (params.py's rule)
    result = session.execute(
        "SELECT i, s, n, b, '100%' AS pct, '{\"a\":true}' AS js FROM bind_t WHERE i = :i AND s LIKE :pat",
        {"i": 7, "pat": "it%"},
    )
    assert result.columns == ["i", "s", "n", "b", "pct", "js"]
    ((i, s, n, b, pct, js),) = result.rows
    assert (i, s, n, bytes(b), pct, js) == (7, "it's", None, b"\x00\xff", "100%", '{"a":true}')
    if kind == "postgresql":
        assert session.execute("SELECT :v::int + 1", {"v": 41}).scalar() == 42
        assert session.execute("SELECT '5%'::text || :x::text", {"x": "!"}).scalar() == "5%!"


def test_update_rowcount(connect: Callable[[], Session]) -> None:
    session = connect()
    session.execute("CREATE TEMPORARY TABLE rc_t (k INT PRIMARY KEY, v INT)")
    for k in (1, 2, 3):
        session.execute("INSERT INTO rc_t VALUES (:k, 0)", {"k": k})
    result = session.execute("UPDATE rc_t SET v = v + 1 WHERE k >= :k", {"k": 2})
    assert (result.rowcount, result.columns, result.rows) == (2, [], [])


def test_commit_persists_and_rollback_discards(connect: Callable[[], Session], table: str) -> None:
    writer, reader = connect(), connect()
    writer.begin()
    writer.execute(f"INSERT INTO {table} VALUES (1, 10)")
    assert writer.in_transaction
    writer.commit()
    assert not writer.in_transaction
    writer.begin()
    writer.execute(f"INSERT INTO {table} VALUES (2, 20)")
    writer.rollback()
    assert reader.execute(f"SELECT k FROM {table} ORDER BY k").rows == [(1,)]
    # back in autocommit: a statement outside begin() is visible to others at once
    writer.execute(f"INSERT INTO {table} VALUES (3, 30)")
    assert reader.execute(f"SELECT count(*) FROM {table}").scalar() == 2


def test_uncommitted_write_is_invisible(connect: Callable[[], Session], table: str, kind: str) -> None:
    writer, reader = connect(), connect()
    writer.begin()
    writer.execute(f"INSERT INTO {table} VALUES (1, 10)")
    if kind == "sqlite":
        # rollback journal: the writer holds RESERVED, readers still read the committed file
        reader.execute("PRAGMA busy_timeout = 100")
    assert reader.execute(f"SELECT count(*) FROM {table}").scalar() == 0
    writer.commit()
    assert reader.execute(f"SELECT count(*) FROM {table}").scalar() == 1


def _isolation(session: Session, kind: str) -> str:
    sql = {"postgresql": "SHOW transaction_isolation", "mysql": "SELECT @@tx_isolation"}[kind]
    return str(session.execute(sql).scalar()).lower().replace("-", " ")


# SQLite levels are lock modes: see test_sqlite_lock_modes
@pytest.mark.parametrize("driver_id", POSTGRES_IDS + MYSQL_IDS, indirect=True)
@pytest.mark.parametrize("level", ["repeatable read", "serializable", "read committed"])
def test_isolation_level_applies(connect: Callable[[], Session], kind: str, level: str) -> None:
    session = connect()
    default = _isolation(session, kind)
    session.begin(level)
    assert _isolation(session, kind) == level
    session.commit()
    session.begin()  # no level: the server default again, not the level of the previous transaction
    assert _isolation(session, kind) == default
    session.rollback()


@pytest.mark.parametrize("driver_id", SQLITE_IDS, indirect=True)
def test_sqlite_lock_modes(connect: Callable[[], Session], kind: str, table: str) -> None:
    """'immediate' really takes the write lock at begin; 'read uncommitted' sets the pragma through SQLAlchemy."""
    assert kind == "sqlite"
    first, second = connect(), connect()
    second.execute("PRAGMA busy_timeout = 100")
    first.begin("immediate")
    with pytest.raises(DriverError) as info:
        second.begin("immediate")
    assert info.value.code == "SQLITE_BUSY"
    assert not second.in_transaction
    first.commit()
    second.execute(f"INSERT INTO {table} VALUES (1, 1)")  # the failed begin left it in autocommit
    assert first.execute(f"SELECT count(*) FROM {table}").scalar() == 1
    second.begin("read uncommitted")
    assert second.execute("PRAGMA read_uncommitted").scalar() == 1
    second.commit()
    second.begin("serializable")
    assert second.execute("PRAGMA read_uncommitted").scalar() == 0
    second.commit()
    with pytest.raises(IsolationUnsupported):
        second.begin("snapshot")


@pytest.mark.parametrize("driver_id", SQLITE_IDS, indirect=True)
def test_sqlite_transactions_are_real(connect: Callable[[], Session], kind: str, table: str) -> None:
    """A SELECT opens the transaction (repeatable reads in WAL) and DDL rolls back: the pysqlite fix is applied."""
    assert kind == "sqlite"
    reader, writer = connect(), connect()
    assert reader.execute("PRAGMA journal_mode = WAL").scalar() == "wal"
    writer.execute(f"INSERT INTO {table} VALUES (1, 10)")
    reader.begin()
    assert reader.execute(f"SELECT v FROM {table}").scalar() == 10
    writer.execute(f"UPDATE {table} SET v = 11")
    assert reader.execute(f"SELECT v FROM {table}").scalar() == 10  # the snapshot of the first read
    reader.commit()
    assert reader.execute(f"SELECT v FROM {table}").scalar() == 11
    reader.begin()
    reader.execute("CREATE TABLE ddl_rolled_back (x INT)")
    reader.rollback()
    assert reader.execute("SELECT count(*) FROM sqlite_master WHERE name = 'ddl_rolled_back'").scalar() == 0


def test_error_normalisation(connect: Callable[[], Session], kind: str) -> None:
    session = connect()
    session.execute("CREATE TEMPORARY TABLE err_t (k INT PRIMARY KEY)")
    session.execute("INSERT INTO err_t VALUES (1)")
    with pytest.raises(DriverError) as dup:
        session.execute("INSERT INTO err_t VALUES (:k)", {"k": 1})
    assert dup.value.code == {"postgresql": "23505", "mysql": "1062", "sqlite": "SQLITE_CONSTRAINT_PRIMARYKEY"}[kind]
    with pytest.raises(DriverError) as syntax:
        session.execute("SELEC 1")
    assert syntax.value.code == {"postgresql": "42601", "mysql": "1064", "sqlite": "SQLITE_ERROR"}[kind]
    assert "\n" not in syntax.value.message
    # an error inside a transaction leaves the session usable after rollback
    session.begin()
    with pytest.raises(DriverError):
        session.execute("INSERT INTO err_t VALUES (1)")
    session.rollback()
    assert session.execute("SELECT count(*) FROM err_t").scalar() == 1


# MySQL checks constraints per statement, so COMMIT does not fail this way there
@pytest.mark.parametrize("driver_id", POSTGRES_IDS + SQLITE_IDS, indirect=True)
def test_failed_commit_leaves_session_usable(connect: Callable[[], Session], kind: str, table: str) -> None:
    """A COMMIT that fails (deferred constraint) is reported, nothing is kept, and the session is in autocommit.

    SQLite keeps its transaction open when COMMIT fails, and SQLAlchemy's rollback() after a failed commit sends
    nothing to the DBAPI; the adapter rolls the DBAPI connection back as the pool's reset-on-return would.
    """
    session, other = connect(), connect()
    if kind == "postgresql":
        session.execute("CREATE TEMPORARY TABLE deferred_t (k INT UNIQUE DEFERRABLE INITIALLY DEFERRED)")
        rows, expected = ["INSERT INTO deferred_t VALUES (1)"] * 2, "23505"
    elif kind == "sqlite":
        session.execute("PRAGMA foreign_keys = ON")
        session.execute("CREATE TEMPORARY TABLE parent_t (k INT PRIMARY KEY)")  # TEMP tables refer to TEMP only
        session.execute(
            "CREATE TEMPORARY TABLE deferred_t (k INT REFERENCES parent_t(k) DEFERRABLE INITIALLY DEFERRED)"
        )
        rows, expected = ["INSERT INTO deferred_t VALUES (1)"], "SQLITE_CONSTRAINT_FOREIGNKEY"
    else:
        pytest.fail(f"no failing-COMMIT scenario for {kind}")
    session.begin()
    for sql in rows:
        session.execute(sql)
    with pytest.raises(DriverError) as failure:
        session.commit()
    assert failure.value.code == expected and not session.in_transaction
    assert session.execute("SELECT count(*) FROM deferred_t").scalar() == 0
    session.execute(f"INSERT INTO {table} VALUES (5, 5)")
    assert other.execute(f"SELECT count(*) FROM {table}").scalar() == 1


def test_submit_blocks_on_row_lock(connect: Callable[[], Session], table: str) -> None:
    holder, waiter = connect(), connect()
    holder.execute(f"INSERT INTO {table} VALUES (1, 0)")
    holder.begin()
    holder.execute(f"UPDATE {table} SET v = 1 WHERE k = 1")
    future = waiter.submit(f"UPDATE {table} SET v = 2 WHERE k = :k", {"k": 1})
    time.sleep(0.3)
    assert not future.done()
    holder.commit()
    assert future.result(timeout=15).rowcount == 1
    assert holder.execute(f"SELECT v FROM {table}").scalar() == 2


def test_connect_failure_hides_password(adapter: SQLAlchemyAdapter, kind: str, tmp_path: Path) -> None:
    redaction.register_secret(SECRET)
    if kind == "sqlite":
        bad = sqlite_info(str(tmp_path / "missing-dir" / "x.db"))
    else:
        scheme = {"postgresql": "postgresql", "mysql": "mysql"}[kind]
        bad = ConnectInfo(kind=kind, url=make_url(f"{scheme}://u:{SECRET}@127.0.0.1:1/db"), engine=kind)
    with pytest.raises(DriverError) as failure:
        adapter.connect(bad)
    assert SECRET not in str(failure.value) and SECRET not in failure.value.message


# CockroachDB speaks the PostgreSQL protocol: only the PostgreSQL DBAPIs offer it
@pytest.mark.parametrize("driver_id", POSTGRES_IDS, indirect=True)
def test_cockroachdb_needs_its_dialect(adapter: SQLAlchemyAdapter, kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert kind == "postgresql"
    # the dialect is absent for this test whether or not sqlalchemy-cockroachdb is installed here
    # (a None entry in sys.modules makes importing it raise ImportError)
    monkeypatch.setitem(sys.modules, "sqlalchemy_cockroachdb", None)
    crdb = ConnectInfo(kind="cockroachdb", url=make_url("cockroachdb://root@127.0.0.1:1/defaultdb"))
    assert "sqlalchemy-cockroachdb" in (adapter.unavailable_reason_for("cockroachdb") or "")
    assert adapter.unavailable_reason_for("postgresql") is None
    with pytest.raises(DriverError, match="sqlalchemy-cockroachdb"):
        adapter.connect(crdb)


def test_types_apply_sqlalchemy_processing(connect: Callable[[], Session], kind: str) -> None:
    """``types`` gives what an SA user with typed columns gets: SQLite NUMERIC comes back as Decimal, not float."""
    from sqlalchemy import DateTime, Numeric

    session = connect()
    session.execute("CREATE TEMPORARY TABLE num_t (x NUMERIC(10,2))")
    session.execute("INSERT INTO num_t VALUES (:x)", {"x": decimal.Decimal("1.50")}, types={"x": Numeric(10, 2)})
    untyped = session.execute("SELECT x FROM num_t").scalar()
    typed = session.execute("SELECT x FROM num_t", types={"x": Numeric(10, 2)}).scalar()
    assert typed == decimal.Decimal("1.50") and isinstance(typed, decimal.Decimal)
    if kind == "sqlite":
        # sqlite3 gives the REAL it stored; SQLAlchemy's Numeric converts (and the untyped bind needed types too)
        assert isinstance(untyped, float) and untyped == 1.5
        assert str(typed) == "1.50"
        # SQLAlchemy's own type processing refusing a value is reported like a driver refusing one
        with pytest.raises(DriverError) as refusal:
            session.execute("SELECT :d", {"d": "2024-01-01"}, types={"d": DateTime()})
        assert refusal.value.cls == "TypeError" and "datetime" in refusal.value.message
    else:
        assert isinstance(untyped, decimal.Decimal)
    # a typed UPDATE keeps its rowcount
    assert session.execute("UPDATE num_t SET x = :x", {"x": 2}, types={"x": Numeric(10, 2)}).rowcount == 1


def test_hot_path(connect: Callable[[], Session]) -> None:
    session = connect()
    run = session.hot_path("SELECT :a AS a", {"a": "x"})
    assert [tuple(row) for row in run()] == [("x",)]
    assert [tuple(row) for row in run()] == [("x",)]


def test_text_sql_keeps_params_py_meaning() -> None:
    assert text_sql("SELECT :a::int, 'x :y', \"c:d\" -- :e") == "SELECT :a ::int, 'x \\:y', \"c:d\" -- \\:e"
    assert text_sql("SELECT a::text, '10:30', :b") == "SELECT a::text, '10:30', :b"


@pytest.mark.parametrize("driver_id", [i for i in DRIVER_IDS if KIND_OF[i.partition("+")[2]] != "mysql"], indirect=True)
def test_returning_dml_rowcount_counts_the_rows(connect: Callable[[], Session], table: str) -> None:
    """UPDATE ... RETURNING reports the rows it changed (sqlite3 only knows the count after the fetch)."""
    s = connect()
    s.execute(f"INSERT INTO {table} (k, v) VALUES (1, 10), (2, 20), (3, 30)")
    result = s.execute(f"UPDATE {table} SET v = v + 1 WHERE k < 3 RETURNING k")
    assert sorted(result.rows) == [(1,), (2,)]
    assert result.rowcount == 2
