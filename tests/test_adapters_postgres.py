"""The PostgreSQL adapters (asyncpg, psycopg, psycopg-async, psycopg2) against the live server on 5432, and what
each of them really does behind PgBouncer in transaction pooling on 6432.

Everything a test creates has a unique name and is dropped in a ``finally``; TEMP tables where one session is enough.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from live import POSTGRES_URL, installed_adapter, postgres_info
from sqlalchemy.engine import make_url

from dbmatrix.drivers import get_adapter
from dbmatrix.drivers.asyncpg_driver import rowcount_from_status
from dbmatrix.drivers.base import ConnectInfo, DriverAdapter, Session
from dbmatrix.errors import DriverError
from dbmatrix.redaction import register_secret

ADAPTERS = ["asyncpg", "psycopg", "psycopg-async", "psycopg2"]
FRAMEWORK = Path(__file__).resolve().parents[1] / "framework"


def _port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.fixture
def postgres_running() -> None:
    """A test of this module without the live server fails (it is never skipped)."""
    if not _port_open(5432):
        pytest.fail("no PostgreSQL on 127.0.0.1:5432 (run ci/provision)")


@pytest.fixture
def pgbouncer_running() -> None:
    if not _port_open(6432):
        pytest.fail("no PgBouncer on 127.0.0.1:6432 (run ci/provision)")


needs_postgres = pytest.mark.usefixtures("postgres_running")
needs_pgbouncer = pytest.mark.usefixtures("pgbouncer_running")
pytestmark = needs_postgres


@pytest.fixture(params=ADAPTERS)
def adapter(request: pytest.FixtureRequest) -> DriverAdapter:
    return installed_adapter(request.param)


def _info(url: str) -> ConnectInfo:
    return ConnectInfo(kind="postgresql", url=make_url(url), engine="postgresql")


def _name(prefix: str = "dbm_t") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def table(adapter: DriverAdapter) -> Iterator[str]:
    """A regular table (visible to other sessions) holding k=1..3, v=10*k; dropped afterwards."""
    name = _name()
    with adapter.connect(postgres_info()) as s:
        s.execute(f"CREATE TABLE {name} (k int PRIMARY KEY, v int NOT NULL)")
        try:
            s.execute(f"INSERT INTO {name} VALUES (1, 10), (2, 20), (3, 30)")
            yield name
        finally:
            s.execute(f"DROP TABLE IF EXISTS {name}")


def _count(session: Session, table: str) -> int:
    return session.execute(f"SELECT count(*) FROM {table}").scalar()


# --- the adapter surface -------------------------------------------------------------------------------------


def test_adapter_declares_postgresql_and_cockroachdb(adapter: DriverAdapter) -> None:
    assert {"postgresql", "cockroachdb"} <= adapter.kinds
    assert adapter.is_async == (adapter.id in ("asyncpg", "psycopg-async"))
    assert adapter.paramstyle == ("numeric_dollar" if adapter.id == "asyncpg" else "pyformat")


def test_connect_gives_backend_pid_as_server_id(adapter: DriverAdapter) -> None:
    with adapter.connect(postgres_info()) as s:
        assert isinstance(s.server_id, int) and s.server_id > 0
        assert s.execute("SELECT pg_backend_pid()").scalar() == s.server_id
        # the session bounds from session_setup_statements are in force
        assert s.execute("SHOW lock_timeout").scalar() == "20s"


def test_parameters_bind_int_str_none_bytes(adapter: DriverAdapter) -> None:
    payload = b"\x00\x01\xffbin"
    with adapter.connect(postgres_info()) as s:
        t = _name("dbm_tmp")
        s.execute(f"CREATE TEMP TABLE {t} (i int, s text, n text, b bytea)")
        ins = s.execute(
            f"INSERT INTO {t} VALUES (:i, :s, :n, :b)", {"i": 7, "s": "it's ünïcode", "n": None, "b": payload}
        )
        assert ins.rowcount == 1 and ins.columns == [] and ins.rows == []
        res = s.execute(
            f"SELECT i, s, n, b, '100%' AS pct, ':notaparam' AS lit, :i::int + 1 AS nxt FROM {t} WHERE s = :s",
            {"i": 7, "s": "it's ünïcode"},
        )
        assert res.columns == ["i", "s", "n", "b", "pct", "lit", "nxt"]
        [(i, text, none, blob, pct, lit, nxt)] = res.rows
        assert (i, text, none, pct, lit, nxt) == (7, "it's ünïcode", None, "100%", ":notaparam", 8)
        # bytea comes back as bytes, except from psycopg2, which gives a memoryview (kept as the driver returns it)
        assert type(blob) is (memoryview if adapter.id == "psycopg2" else bytes)
        assert bytes(blob) == payload
        # without parameters '%' is not interpolated by anybody
        assert s.execute("SELECT '100%' AS pct").rows == [("100%",)]


def test_untyped_bytes_parameter(adapter: DriverAdapter) -> None:
    """A bare ``:b`` (no cast, no column to infer from): psycopg/psycopg2 send bytea, asyncpg lets the server infer
    text and refuses bytes client-side — with SQLSTATE 22000 although the server never saw the statement run."""
    with adapter.connect(postgres_info()) as s:
        if adapter.id == "asyncpg":
            with pytest.raises(DriverError) as info:
                s.execute("SELECT :b AS b", {"b": b"\x01"})
            assert (info.value.cls, info.value.code) == ("DataError", "22000")
        else:
            assert bytes(s.execute("SELECT :b AS b", {"b": b"\x01"}).scalar()) == b"\x01"


def test_rowcount_of_update_insert_delete(adapter: DriverAdapter) -> None:
    with adapter.connect(postgres_info()) as s:
        t = _name("dbm_tmp")
        s.execute(f"CREATE TEMP TABLE {t} (k int PRIMARY KEY, v int)")
        assert s.execute(f"INSERT INTO {t} SELECT g, g FROM generate_series(1, 5) g").rowcount == 5
        assert s.execute(f"UPDATE {t} SET v = v + 1 WHERE k <= :k", {"k": 3}).rowcount == 3
        assert s.execute(f"UPDATE {t} SET v = 0 WHERE k > 3").rowcount == 2  # unparameterised path
        assert s.execute(f"UPDATE {t} SET v = 0 WHERE k > :k", {"k": 99}).rowcount == 0
        returning = s.execute(f"DELETE FROM {t} WHERE k = 1 RETURNING k, v")
        assert (returning.columns, returning.rows, returning.rowcount) == (["k", "v"], [(1, 2)], 1)
        empty = s.execute(f"SELECT k FROM {t} WHERE false")
        assert (empty.columns, empty.rows, empty.rowcount) == (["k"], [], 0)


def test_unparameterised_multi_statement_command(adapter: DriverAdapter) -> None:
    """Without parameters all three send the simple query protocol, so several commands in one string run."""
    with adapter.connect(postgres_info()) as s:
        t = _name("dbm_tmp")
        s.execute(f"CREATE TEMP TABLE {t} (k int); INSERT INTO {t} VALUES (1), (2)")
        assert _count(s, t) == 2


def test_commit_persists_for_another_session(adapter: DriverAdapter, table: str) -> None:
    with adapter.connect(postgres_info()) as s1, adapter.connect(postgres_info()) as s2:
        s1.begin()
        assert s1.in_transaction
        s1.execute(f"INSERT INTO {table} VALUES (:k, :v)", {"k": 4, "v": 40})
        assert _count(s2, table) == 3  # not visible before commit
        s1.commit()
        assert not s1.in_transaction
        assert _count(s2, table) == 4


def test_rollback_discards(adapter: DriverAdapter, table: str) -> None:
    with adapter.connect(postgres_info()) as s1, adapter.connect(postgres_info()) as s2:
        s1.begin()
        s1.execute(f"DELETE FROM {table}")
        assert _count(s1, table) == 0
        s1.rollback()
        assert _count(s1, table) == 3 and _count(s2, table) == 3


@pytest.mark.parametrize("level", ["read committed", "repeatable read", "serializable"])
def test_begin_applies_isolation_level(adapter: DriverAdapter, level: str) -> None:
    with adapter.connect(postgres_info()) as s:
        s.begin(level)
        assert s.execute("SHOW transaction_isolation").scalar() == level
        s.rollback()
        assert s.execute("SHOW transaction_isolation").scalar() == "read committed"  # back to the default


def test_errors_normalise_to_sqlstate(adapter: DriverAdapter) -> None:
    with adapter.connect(postgres_info()) as s:
        t = _name("dbm_tmp")
        s.execute(f"CREATE TEMP TABLE {t} (k int PRIMARY KEY)")
        s.execute(f"INSERT INTO {t} VALUES (:k)", {"k": 1})
        with pytest.raises(DriverError) as dup:
            s.execute(f"INSERT INTO {t} VALUES (:k)", {"k": 1})
        assert dup.value.code == "23505"
        assert "duplicate key" in dup.value.message and "\n" not in dup.value.message
        with pytest.raises(DriverError) as syntax:
            s.execute("SELEC 1")
        assert syntax.value.code == "42601"
        assert s.execute("SELECT 1").scalar() == 1  # autocommit: the session is still usable


def test_submit_blocks_on_row_lock_until_holder_commits(adapter: DriverAdapter, table: str) -> None:
    with adapter.connect(postgres_info()) as holder, adapter.connect(postgres_info()) as waiter:
        holder.begin()
        holder.execute(f"UPDATE {table} SET v = v + 1 WHERE k = :k", {"k": 1})
        future = waiter.submit(f"UPDATE {table} SET v = v + 100 WHERE k = :k", {"k": 1})
        try:
            time.sleep(0.3)
            assert not future.done()
            wait = holder.execute(
                "SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid", {"pid": waiter.server_id}
            )
            assert wait.scalar() == "Lock"  # the server sees the waiter blocked on our lock
        finally:
            holder.commit()
        assert future.result(timeout=10).rowcount == 1
        assert holder.execute(f"SELECT v FROM {table} WHERE k = 1").scalar() == 111


def test_hot_path_runs_the_driver_call(adapter: DriverAdapter) -> None:
    with adapter.connect(postgres_info()) as s:
        call = s.hot_path("SELECT :x::int AS x, '5%' AS pct", {"x": 42})
        for _ in range(3):
            rows = call()
            assert len(rows) == 1 and rows[0][0] == 42 and rows[0][1] == "5%"


def test_connect_failure_is_driver_error_without_password(adapter: DriverAdapter) -> None:
    register_secret("Sup3rS3cretPW")
    with pytest.raises(DriverError) as info:
        adapter.connect(_info("postgresql://postgres:Sup3rS3cretPW@127.0.0.1:1/postgres"))
    assert "Sup3rS3cretPW" not in str(info.value) and "Sup3rS3cretPW" not in info.value.message


def test_url_query_host_is_a_unix_socket_dir(adapter: DriverAdapter) -> None:
    if not os.path.isdir("/var/run/postgresql"):
        pytest.fail(
            "no unix socket dir /var/run/postgresql: the local PostgreSQL cluster is not set up (run ci/provision)"
        )
    with adapter.connect(_info("postgresql://postgres@/postgres?host=/var/run/postgresql")) as s:
        assert s.execute("SELECT inet_client_addr()").scalar() is None  # NULL over a unix socket


def test_url_query_sslmode_reaches_the_driver(adapter: DriverAdapter) -> None:
    with adapter.connect(_info(POSTGRES_URL + "?sslmode=disable")) as s:
        assert s.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").scalar() is False
        server_ssl = s.execute("SHOW ssl").scalar() == "on"
    if server_ssl:
        with adapter.connect(_info(POSTGRES_URL + "?sslmode=require")) as s:
            assert s.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").scalar() is True
    else:
        with pytest.raises(DriverError):  # require against a server without TLS must refuse, not fall back
            adapter.connect(_info(POSTGRES_URL + "?sslmode=require"))


def test_asyncpg_refuses_url_options_it_would_ignore() -> None:
    with pytest.raises(DriverError, match="application_name"):
        get_adapter("asyncpg").connect(_info(POSTGRES_URL + "?application_name=x"))


@pytest.mark.parametrize(
    "status, count",
    [
        ("UPDATE 3", 3),
        ("INSERT 0 1", 1),
        ("DELETE 0", 0),
        ("SELECT 12", 12),
        ("SET", -1),
        ("CREATE TABLE", -1),
        ("", -1),
    ],
)
def test_rowcount_from_status(status: str, count: int) -> None:
    assert rowcount_from_status(status) == count


# --- behind PgBouncer (transaction pooling) ----------------------------------------------------------------------
# Each test gets its own database, hence its own PgBouncer pool with fresh server connections: prepared statements
# left on shared server connections by earlier runs would otherwise make the outcome depend on history. PgBouncer
# hands out idle server connections last-in first-out, which makes the scenarios below deterministic.


@pytest.fixture
def bouncer_db() -> Iterator[ConnectInfo]:
    name = _name("dbm_bouncer")
    admin = get_adapter("psycopg2").connect(postgres_info())
    admin.execute(f"CREATE DATABASE {name}")
    try:
        yield _info(f"postgresql://postgres@127.0.0.1:6432/{name}")
    finally:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # FORCE: PgBouncer keeps server connections
        admin.close()


# what happens to a statement the driver prepared earlier when its next run lands on another server connection
LOST_STATEMENT = {"asyncpg": "26000", "psycopg": "26000", "psycopg-async": "26000", "psycopg2": None}
# what happens when a second connection in the same process reaches the server connection the first one used
SAME_NAME_NEXT_CONNECTION = {"asyncpg": None, "psycopg": "42P05", "psycopg-async": "42P05", "psycopg2": None}
PSYCOPG_PREPARE_THRESHOLD = 5  # psycopg's default: the 6th execution of a query prepares it


def _outcome(adapter: DriverAdapter, call) -> str | None:
    """None if ``call`` works, else the SQLSTATE it fails with (hot paths raise the driver's own exceptions)."""
    try:
        call()
    except Exception as exc:  # noqa: BLE001 - normalised just below
        err = adapter.normalise_error(exc)
        assert err is not None, f"not a database error: {exc!r}"
        return err.code
    return None


@needs_pgbouncer
def test_pgbouncer_parameterised_select_single_client(adapter: DriverAdapter, bouncer_db: ConnectInfo) -> None:
    """One client alone on a pool: session setup (simple protocol) and a parameterised SELECT work for every driver."""
    with adapter.connect(bouncer_db) as s:
        assert isinstance(s.server_id, int)
        assert s.execute("SELECT :x::int + 1 AS y", {"x": 41}).rows == [(42,)]
        call = s.hot_path("SELECT :x::int AS x", {"x": 1})
        for _ in range(PSYCOPG_PREPARE_THRESHOLD + 2):  # past psycopg's switch to a named prepared statement
            assert call()[0][0] == 1


@needs_pgbouncer
def test_pgbouncer_prepared_statement_lost_on_other_server_connection(
    adapter: DriverAdapter, bouncer_db: ConnectInfo
) -> None:
    """asyncpg (statement cache) and psycopg (after 5 runs) bind a named statement that lives on one server
    connection; when another client holds that connection in a transaction, PgBouncer sends the Bind to a new one:
    26000 "prepared statement ... does not exist". psycopg2 never prepares server-side and keeps working."""
    with adapter.connect(bouncer_db) as a:
        call = a.hot_path("SELECT :x::int AS x", {"x": 7})
        for _ in range(PSYCOPG_PREPARE_THRESHOLD + 1):
            call()
        a_backend = a.execute("SELECT pg_backend_pid()").scalar()
        with get_adapter("psycopg2").connect(bouncer_db) as pin:
            pin.begin()  # the transaction pins the server connection `a` just released
            assert pin.execute("SELECT pg_backend_pid()").scalar() == a_backend, "PgBouncer did not reuse LIFO"
            try:
                assert _outcome(a.adapter, call) == LOST_STATEMENT[adapter.id]
            finally:
                pin.rollback()


@needs_pgbouncer
def test_pgbouncer_next_connection_reuses_statement_name(adapter: DriverAdapter, bouncer_db: ConnectInfo) -> None:
    """psycopg names prepared statements _pg3_<n> per connection, so the next connection to land on the same server
    connection tries to create _pg3_0 again: 42P05 "already exists". asyncpg's names count per process (see the
    subprocess test), psycopg2 has none."""
    sql, params = "SELECT :x::int AS x", {"x": 3}
    with adapter.connect(bouncer_db) as first:
        call = first.hot_path(sql, params)
        for _ in range(PSYCOPG_PREPARE_THRESHOLD + 1):
            call()
    with adapter.connect(bouncer_db) as second:
        call = second.hot_path(sql, params)
        outcomes = [_outcome(adapter, call) for _ in range(PSYCOPG_PREPARE_THRESHOLD + 1)]
        assert outcomes[-1] == SAME_NAME_NEXT_CONNECTION[adapter.id]
        assert set(outcomes[:-1]) == {None}  # it breaks exactly when psycopg switches to preparing


_CONNECT_AND_SELECT = """
import sys
from sqlalchemy.engine import make_url
from dbmatrix.drivers import get_adapter
from dbmatrix.drivers.base import ConnectInfo
from dbmatrix.errors import DriverError
info = ConnectInfo(kind="postgresql", url=make_url(sys.argv[1]), engine="postgresql")
stage = "connect"
try:
    with get_adapter("asyncpg").connect(info) as s:
        stage = "select"
        print("ok", s.execute("SELECT :x::int AS x", {"x": 1}).scalar())
except DriverError as e:
    print("error", stage, e.code)
"""


@needs_pgbouncer
def test_pgbouncer_asyncpg_second_process_collides(bouncer_db: ConnectInfo) -> None:
    """asyncpg names its statements __asyncpg_stmt_<n>__ with n counting from 1 in every process and never
    deallocates them at close; the same program run again on the same PgBouncer pool meets its own leftovers: 42P05."""
    if get_adapter("asyncpg").unavailable_reason():
        pytest.fail("asyncpg is not installed (pip install -e '.[postgres]')")
    env = {**os.environ, "PYTHONPATH": str(FRAMEWORK)}
    url = bouncer_db.url.render_as_string(hide_password=False)
    runs = [
        subprocess.run(
            [sys.executable, "-c", _CONNECT_AND_SELECT, url], env=env, capture_output=True, text=True, timeout=60
        )
        for _ in range(2)
    ]
    outputs = [r.stdout.strip() or r.stderr.strip().splitlines()[-1] for r in runs]
    assert outputs[0] == "ok 1"
    assert outputs[1].startswith("error") and outputs[1].endswith("42P05"), outputs[1]
