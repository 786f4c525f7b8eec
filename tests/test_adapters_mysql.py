"""The MySQL adapters (pymysql, mysqlclient, asyncmy, aiomysql, mysql-connector[-pure], mariadb-connector) against
the live MariaDB on 127.0.0.1:3306.

Every test runs on each adapter with the same assertions. Objects a second session must see are real
tables with a unique name, dropped in a ``finally``; everything else is a TEMPORARY table.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from live import installed_adapter, mariadb_info
from sqlalchemy.engine import make_url

from dbmatrix import redaction
from dbmatrix.drivers.base import ConnectInfo, DriverAdapter, Session
from dbmatrix.errors import DriverError

DRIVERS = ["pymysql", "mysqlclient", "asyncmy", "aiomysql", "mysql-connector", "mysql-connector-pure",
           "mariadb-connector"]


@pytest.fixture(params=DRIVERS)
def adapter(request: pytest.FixtureRequest) -> DriverAdapter:
    return installed_adapter(request.param)


@pytest.fixture
def session(adapter: DriverAdapter) -> Iterator[Session]:
    with adapter.connect(mariadb_info()) as s:
        yield s


@pytest.fixture
def other(adapter: DriverAdapter) -> Iterator[Session]:
    """A second session, to look at what the first one committed, or to hold a lock."""
    with adapter.connect(mariadb_info()) as s:
        yield s


@pytest.fixture
def shared_table(other: Session) -> Iterator[str]:
    """A real table (visible to every session) holding (1, 10) and (2, 20); dropped afterwards."""
    name = f"dbm_test_{uuid.uuid4().hex[:12]}"
    other.execute(f"CREATE TABLE {name} (k INT PRIMARY KEY, v INT) ENGINE=InnoDB")
    try:
        other.execute(f"INSERT INTO {name} VALUES (1, 10), (2, 20)")
        yield name
    finally:
        other.execute(f"DROP TABLE IF EXISTS {name}")


def test_connect_is_autocommit_and_bounded(adapter: DriverAdapter, session: Session) -> None:
    """A session knows its connection id, runs in autocommit, speaks utf8mb4 and has a lock-wait bound."""
    assert isinstance(session.server_id, int) and session.server_id > 0
    row = session.execute("SELECT @@autocommit, @@character_set_client, @@innodb_lock_wait_timeout").rows[0]
    assert row == (1, "utf8mb4", 20)


def test_parameters_bind_int_str_none_bytes(session: Session) -> None:
    """``:name`` parameters bind each type; a '%' in the SQL text stays a literal '%'."""
    session.execute("CREATE TEMPORARY TABLE p (k INT PRIMARY KEY, s VARCHAR(20), n INT, b BLOB)")
    blob: bytes | None = b"\x00\xff'%s\\"
    if session.adapter.id == "aiomysql":  # its escape of bytes calls what PyMySQL >= 1.1.1 made a string
        with pytest.raises(DriverError) as refused:
            session.execute("SELECT :b", {"b": blob})
        assert refused.value.cls == "TypeError" and "not callable" in refused.value.message
        blob = None
    res = session.execute("INSERT INTO p VALUES (:k, :s, :n, :b)", {"k": 7, "s": "é😀 50%", "n": None, "b": blob})
    assert res.rowcount == 1 and res.columns == [] and res.rows == []
    res = session.execute(
        "SELECT k, s, n, b, CONCAT(:x, '%') AS pct FROM p WHERE k = :k AND s LIKE '%50\\%'", {"k": 7, "x": "100"}
    )
    assert res.columns == ["k", "s", "n", "b", "pct"]
    assert res.rows == [(7, "é😀 50%", None, blob, "100%")]
    # Without parameters the driver must not interpolate at all, so a lone '%' goes through unchanged.
    assert session.execute("SELECT '100%'").scalar() == "100%"


def test_update_rowcount_counts_changed_rows(session: Session) -> None:
    """rowcount is MySQL's 'affected rows' (no CLIENT_FOUND_ROWS by default): a no-op UPDATE reports 0."""
    session.execute("CREATE TEMPORARY TABLE r (k INT PRIMARY KEY, v INT)")
    session.execute("INSERT INTO r VALUES (1, 1), (2, 2), (3, 3)")
    assert session.execute("UPDATE r SET v = v + 10 WHERE k <= :k", {"k": 2}).rowcount == 2
    assert session.execute("UPDATE r SET v = 3 WHERE k = 3").rowcount == 0  # matched 1, changed 0
    assert session.execute("SELECT * FROM r").rowcount == 3


def test_commit_persists(session: Session, other: Session, shared_table: str) -> None:
    session.begin()
    session.execute(f"UPDATE {shared_table} SET v = 11 WHERE k = 1")
    assert other.execute(f"SELECT v FROM {shared_table} WHERE k = 1").scalar() == 10  # not visible before commit
    session.commit()
    assert other.execute(f"SELECT v FROM {shared_table} WHERE k = 1").scalar() == 11


def test_rollback_discards(session: Session, other: Session, shared_table: str) -> None:
    session.begin()
    session.execute(f"UPDATE {shared_table} SET v = 11 WHERE k = 1")
    session.rollback()
    assert other.execute(f"SELECT v FROM {shared_table} WHERE k = 1").scalar() == 10
    assert session.execute(f"SELECT v FROM {shared_table} WHERE k = 1").scalar() == 10


@pytest.mark.parametrize(
    ("isolation", "sees_concurrent_commit"), [("read committed", True), ("repeatable read", False)]
)
def test_begin_isolation_applies(
    session: Session, other: Session, shared_table: str, isolation: str, sees_concurrent_commit: bool
) -> None:
    """The level given to begin() governs the transaction: a re-read sees another commit only under READ COMMITTED.

    begin() sets the *session* level (as SQLAlchemy does), so it can be read back; begin() without a level
    returns the session to the server's default.
    """
    session.begin(isolation)
    assert session.execute(f"SELECT v FROM {shared_table} WHERE k = 1").scalar() == 10
    other.execute(f"UPDATE {shared_table} SET v = 99 WHERE k = 1")
    reread = session.execute(f"SELECT v FROM {shared_table} WHERE k = 1").scalar()
    session.commit()
    assert reread == (99 if sees_concurrent_commit else 10)
    assert session.isolation_in_effect() == isolation
    session.begin()
    assert session.isolation_in_effect() == "repeatable read"  # the server's default again
    session.rollback()


def test_begin_serializable_locks_what_it_reads(session: Session, other: Session, shared_table: str) -> None:
    """Under SERIALIZABLE InnoDB turns plain reads into shared locks, so a writer times out (1205)."""
    session.begin("serializable")
    session.execute(f"SELECT v FROM {shared_table} WHERE k = 1")
    other.execute("SET SESSION innodb_lock_wait_timeout = 1")
    with pytest.raises(DriverError) as err:
        other.execute(f"UPDATE {shared_table} SET v = 0 WHERE k = 1")
    session.rollback()
    assert err.value.code == "1205"


def test_errors_carry_the_errno(session: Session) -> None:
    session.execute("CREATE TEMPORARY TABLE e (k INT PRIMARY KEY)")
    session.execute("INSERT INTO e VALUES (1)")
    with pytest.raises(DriverError) as dup:
        session.execute("INSERT INTO e VALUES (:k)", {"k": 1})
    assert (dup.value.code, dup.value.cls) == ("1062", "IntegrityError")
    assert "Duplicate entry" in dup.value.message
    with pytest.raises(DriverError) as syntax:
        session.execute("SELEC 1")
    assert (syntax.value.code, syntax.value.cls) == ("1064", "ProgrammingError")
    assert session.execute("SELECT 1").scalar() == 1  # the session survives both


def test_submit_waits_on_a_row_lock(session: Session, other: Session, shared_table: str) -> None:
    """A statement blocked by another session's row lock keeps its future pending until the holder commits."""
    other.begin()
    other.execute(f"UPDATE {shared_table} SET v = 11 WHERE k = 1")
    future = session.submit(f"UPDATE {shared_table} SET v = v + 100 WHERE k = :k", {"k": 1})
    try:
        time.sleep(0.3)
        assert not future.done()
    finally:
        other.commit()
    assert future.result(timeout=10).rowcount == 1
    assert session.execute(f"SELECT v FROM {shared_table} WHERE k = 1").scalar() == 111


def test_hot_path_runs_the_driver_call(session: Session) -> None:
    session.execute("CREATE TEMPORARY TABLE h (k INT PRIMARY KEY, v VARCHAR(5))")
    session.execute("INSERT INTO h VALUES (1, 'a'), (2, 'b%')")
    run = session.hot_path("SELECT v FROM h WHERE k = :k OR v LIKE 'b%'", {"k": 1})
    assert [tuple(r) for r in run()] == [("a",), ("b%",)]
    assert [tuple(r) for r in run()] == [("a",), ("b%",)]  # repeatable: the benchmark loop calls it many times


def test_connect_failure_is_a_scrubbed_driver_error(adapter: DriverAdapter) -> None:
    secret = "Sup3rS3cretPW"
    redaction.register_secret(secret)  # as the framework does for every URL it is given
    info = ConnectInfo(kind="mysql", url=make_url(f"mysql://root:{secret}@127.0.0.1:1/test"), engine="mariadb")
    with pytest.raises(DriverError) as err:
        adapter.connect(info)
    assert err.value.code in {"2002", "2003"}  # libmariadb says 2002 for a refused TCP port, PyMySQL 2003
    assert secret not in str(err.value) and secret not in err.value.message


def test_wrong_password_is_1045_and_scrubbed(adapter: DriverAdapter) -> None:
    secret = "Sup3rS3cretPW"
    redaction.register_secret(secret)
    info = ConnectInfo(kind="mysql", url=make_url(f"mysql://root:{secret}@127.0.0.1:3306/test"), engine="mariadb")
    with pytest.raises(DriverError) as err:
        adapter.connect(info)
    assert err.value.code == "1045"
    assert secret not in str(err.value)


def test_one_transaction_level_is_read_from_innodb() -> None:
    """mysql-connector's start_transaction(isolation_level=) sets the next transaction's level only: MariaDB's
    @@tx_isolation keeps the session's, and the engine reads the transaction's own level from InnoDB."""
    from dbmatrix.engines import engine_for

    with installed_adapter("mysql-connector").connect(mariadb_info()) as s:
        api = s.begin_native("serializable")
        try:
            assert "start_transaction" in api
            assert s.execute("SELECT @@tx_isolation").scalar() == "REPEATABLE-READ"
            assert engine_for("mysql", "mariadb").transaction_isolation(s) == "serializable"
        finally:
            s.rollback()


@pytest.mark.parametrize("driver_id", ["mysql-connector", "mysql-connector-pure"])
def test_mysql_connector_sends_other_percent_signs_as_they_are(driver_id: str) -> None:
    """Unlike PyMySQL, mysql-connector does not turn '%%' into '%': the adapter must not double a literal '%'."""
    with installed_adapter(driver_id).connect(mariadb_info()) as s:
        assert s.execute("SELECT CONCAT(:x, '%')", {"x": "5"}).scalar() == "5%"
        raw = s.driver_connection().cursor()
        raw.execute("SELECT CONCAT(%(x)s, '%%')", {"x": "5"})
        assert raw.fetchall() == [("5%%",)]
        raw.close()
