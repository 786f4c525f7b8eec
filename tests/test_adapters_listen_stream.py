"""``Session.listen`` / ``notifications`` / ``stream`` on every adapter, DBAPI and SQLAlchemy layers, against the
live servers (PostgreSQL on 5432, PgBouncer on 6432, MariaDB on 3306) and a SQLite file.

Every test runs for each driver that can talk to the kind it needs, with the same assertions, so a driver whose
API behaves differently shows up as a failing parameter rather than a special case.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from live import POSTGRES_URL, installed_adapter, mariadb_info, postgres_info, reachable, sqlite_info
from sqlalchemy.engine import make_url

from dbmatrix.drivers import all_driver_ids, get_adapter
from dbmatrix.drivers.base import ConnectInfo, DriverAdapter, Session
from dbmatrix.errors import DriverError

KINDS = ("postgresql", "mysql", "sqlite")
PORTS = {"postgresql": 5432, "mysql": 3306}


def _kind_of(driver_id: str) -> str:
    return next(k for k in KINDS if get_adapter(driver_id).supports(k))


DRIVERS = all_driver_ids()
STREAM_DRIVERS = [d for d in DRIVERS if get_adapter(d).server_cursor]
PG_DRIVERS = [d for d in DRIVERS if _kind_of(d) == "postgresql"]
PG_STREAM_DRIVERS = [d for d in PG_DRIVERS if d in STREAM_DRIVERS]
OTHER_DRIVERS = [d for d in DRIVERS if _kind_of(d) != "postgresql"]
# PostgreSQL drivers with a notification API on their connection (psqlpy's LISTEN needs a pool's listener)
PG_NOTIFY_DRIVERS = [d for d in PG_DRIVERS if get_adapter(d).notifier() is not None]
NO_NOTIFY_DRIVERS = OTHER_DRIVERS + [d for d in PG_DRIVERS if d not in PG_NOTIFY_DRIVERS]


def _ascii_notifications(driver_id: str) -> bool:
    """The DBAPI driver declares it cannot decode a non-ASCII notification (pg8000 decodes them as ASCII)."""
    return any(cls == "UnicodeDecodeError" for cls, _ in get_adapter(driver_id).under.refusals)

N = 2500
SERIES = {  # 1..:n in order, generated on the server
    "postgresql": "SELECT g AS id FROM generate_series(1, :n) AS g",
    "mysql": "SELECT seq AS id FROM seq_1_to_5000 WHERE seq <= :n",
    "sqlite": "WITH RECURSIVE s(id) AS (SELECT 1 UNION ALL SELECT id + 1 FROM s WHERE id < :n) SELECT id FROM s",
}
TEMP_TABLE = {
    "postgresql": "CREATE TEMP TABLE {t} (k INTEGER)",
    "mysql": "CREATE TEMPORARY TABLE {t} (k INTEGER)",
    "sqlite": "CREATE TEMP TABLE {t} (k INTEGER)",
}
MISSING_TABLE = {"postgresql": "42P01", "mysql": "1146", "sqlite": "SQLITE_ERROR"}


def _adapter(driver_id: str) -> DriverAdapter:
    return installed_adapter(driver_id)


def _info(kind: str, tmp_path: Path) -> ConnectInfo:
    if kind in PORTS and not reachable(PORTS[kind]):
        pytest.fail(f"no {kind} server on 127.0.0.1:{PORTS[kind]} (run ci/provision)")
    if kind == "postgresql":
        return postgres_info()
    if kind == "mysql":
        return mariadb_info()
    return sqlite_info(str(tmp_path / "listen_stream.db"))


@pytest.fixture
def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Session, Session, str]]:
    """Two sessions of the driver under test on its kind's server, and that kind."""
    driver_id = request.node.callspec.params["driver_id"]
    adapter, kind = _adapter(driver_id), _kind_of(driver_id)
    info = _info(kind, tmp_path)
    with adapter.connect(info) as a, adapter.connect(info) as b:
        yield a, b, kind


def _channel() -> str:
    return f"dbm_test_{uuid.uuid4().hex[:12]}"


def _collect(s: Session, want: int, timeout: float) -> list[tuple[str, str]]:
    """Notifications until ``want`` have arrived or ``timeout`` has passed."""
    deadline = time.monotonic() + timeout
    got: list[tuple[str, str]] = []
    while len(got) < want and (remaining := deadline - time.monotonic()) > 0:
        got += s.notifications(remaining)
    return got


# --- stream ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("driver_id", STREAM_DRIVERS)
def test_stream_gives_every_row_in_batches(driver_id: str, sessions: tuple[Session, Session, str]) -> None:
    """Rows come as plain tuples, exactly, with parameters bound; the session is as it was afterwards."""
    s, _, kind = sessions
    rows = list(s.stream(SERIES[kind], {"n": N}, batch=1000))
    assert rows == [(i,) for i in range(1, N + 1)]
    assert all(type(r) is tuple for r in rows)
    assert not s.in_transaction
    assert s.execute("SELECT 1 AS x").rows == [(1,)]


@pytest.mark.parametrize("driver_id", STREAM_DRIVERS)
def test_stream_stopped_early_ends_its_cursor_and_transaction(
    driver_id: str, sessions: tuple[Session, Session, str]
) -> None:
    """Closing the iterator after one row closes the cursor (and the transaction the stream opened)."""
    s, other, kind = sessions
    it = s.stream(SERIES[kind], {"n": N}, batch=100)
    assert next(it) == (1,)
    it.close()
    assert not s.in_transaction
    if kind == "postgresql":
        # no cursor survives (a WITH HOLD cursor left open would outlive the transaction); the unnamed portal is
        # the extended-protocol query asking
        assert s.execute("SELECT count(*) FROM pg_cursors WHERE name <> ''").scalar() == 0
        state = other.execute("SELECT state FROM pg_stat_activity WHERE pid = :pid", {"pid": s.server_id}).scalar()
        assert state == "idle"  # not "idle in transaction"
    assert s.execute("SELECT 2 AS x").rows == [(2,)]


@pytest.mark.parametrize("driver_id", STREAM_DRIVERS)
def test_stream_inside_open_transaction_keeps_it(driver_id: str, sessions: tuple[Session, Session, str]) -> None:
    """Within the session's own transaction the stream sees its uncommitted rows and leaves the transaction open."""
    s, _, kind = sessions
    table = f"t_{uuid.uuid4().hex[:8]}"
    s.execute(TEMP_TABLE[kind].format(t=table))
    s.begin()
    s.execute(f"INSERT INTO {table} (k) VALUES (7), (8)")
    assert sorted(s.stream(f"SELECT k FROM {table}", batch=1)) == [(7,), (8,)]
    assert s.in_transaction
    s.rollback()
    assert s.execute(f"SELECT count(*) FROM {table}").scalar() == 0


@pytest.mark.parametrize("driver_id", STREAM_DRIVERS)
def test_stream_error_is_a_driver_error(driver_id: str, sessions: tuple[Session, Session, str]) -> None:
    """A failing query raises DriverError with the engine's code, and the session is usable afterwards."""
    s, _, kind = sessions
    with pytest.raises(DriverError) as err:
        list(s.stream("SELECT k FROM dbm_no_such_table_here"))
    if s.adapter.under.error_codes:
        assert err.value.code == MISSING_TABLE[kind], err.value
    else:  # a driver that declares its errors carry no code (psqlpy): the engine's words, no made-up code
        assert err.value.code is None and "does not exist" in err.value.message, err.value
    assert not s.in_transaction
    assert s.execute("SELECT 3 AS x").rows == [(3,)]


# --- listen / notifications -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("driver_id", PG_NOTIFY_DRIVERS)
def test_notifications_arrive_in_order_with_payload(driver_id: str, sessions: tuple[Session, Session, str]) -> None:
    """Two notifications from another session arrive once each, in order, payloads intact; then nothing."""
    a, b, _ = sessions
    channel = _channel()
    a.listen(channel)
    b.execute("SELECT pg_notify(:c, :p)", {"c": channel, "p": "one ü ✓"})
    b.execute(f"NOTIFY {channel}, 'two'")
    if _ascii_notifications(driver_id):  # the driver's own failure, a DriverError: never a bug of ours
        with pytest.raises(DriverError) as err:
            _collect(a, 2, 5.0)
        assert err.value.cls == "UnicodeDecodeError"
        return
    assert _collect(a, 2, 5.0) == [(channel, "one ü ✓"), (channel, "two")]
    assert a.notifications(0.2) == []


@pytest.mark.parametrize("driver_id", PG_NOTIFY_DRIVERS)
def test_notification_received_during_a_statement_is_kept(
    driver_id: str, sessions: tuple[Session, Session, str]
) -> None:
    """A notification the driver reads while running another statement is still returned by notifications()."""
    a, b, _ = sessions
    channel = _channel()
    a.listen(channel)
    b.execute("SELECT pg_notify(:c, 'during')", {"c": channel})
    time.sleep(0.2)  # it is on a's socket now; a's next statement reads it
    assert a.execute("SELECT 4 AS x").rows == [(4,)]
    assert a.notifications(2.0) == [(channel, "during")]


@pytest.mark.parametrize("driver_id", PG_NOTIFY_DRIVERS)
def test_notifications_wait_for_the_timeout(driver_id: str, sessions: tuple[Session, Session, str]) -> None:
    """With nothing sent, notifications() waits about ``timeout`` and returns []; other channels are not heard."""
    a, b, _ = sessions
    channel = _channel()
    a.listen(channel)
    b.execute("SELECT pg_notify(:c, 'elsewhere')", {"c": channel + "_other"})
    start = time.monotonic()
    assert a.notifications(0.3) == []
    assert 0.25 <= time.monotonic() - start < 3.0


@pytest.mark.parametrize("driver_id", [d for d in DRIVERS if d not in STREAM_DRIVERS])
def test_no_server_cursor_api_is_unsupported(driver_id: str, sessions: tuple[Session, Session, str]) -> None:
    """A driver without a server-side cursor API says so when asked to stream (DriverError "Unsupported")."""
    with pytest.raises(DriverError) as err:
        sessions[0].stream("SELECT 1")
    assert err.value.cls == "Unsupported" and driver_id in err.value.message


@pytest.mark.parametrize("driver_id", NO_NOTIFY_DRIVERS)
def test_no_notification_api_is_unsupported(driver_id: str, sessions: tuple[Session, Session, str]) -> None:
    """Drivers of engines without LISTEN, or without a notification API of their own (psqlpy), say so with
    DriverError 'Unsupported', not AttributeError."""
    s, _, _ = sessions
    for call in (lambda: s.listen("x"), lambda: s.notifications(0.1)):
        with pytest.raises(DriverError) as err:
            call()
        assert err.value.cls == "Unsupported" and err.value.code is None
        assert driver_id in err.value.message


def test_session_default_has_no_stream_or_notifications() -> None:
    """The protocol's defaults raise DriverError 'Unsupported' when called (not lazily at iteration)."""
    from dbmatrix.drivers.base import Session as BaseSession

    class Bare(BaseSession):
        def _close(self) -> None:
            pass

    adapter = get_adapter("sqlite3")
    s = Bare(adapter, sqlite_info(":memory:"))
    for call in (lambda: s.stream("SELECT 1"), lambda: s.listen("c"), lambda: s.notifications(0)):
        with pytest.raises(DriverError, match="Unsupported"):
            call()


# --- behind PgBouncer (transaction pooling) -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def bouncer_db() -> Iterator[ConnectInfo]:
    """A database of its own, so its PgBouncer pool holds only this module's server connections."""
    if not (reachable(5432) and reachable(6432)):
        pytest.fail("PostgreSQL on 5432 and PgBouncer on 6432 are needed (run ci/provision)")
    name = f"dbm_ls_{uuid.uuid4().hex[:12]}"
    admin = get_adapter("psycopg2").connect(postgres_info())
    admin.execute(f"CREATE DATABASE {name}")
    try:
        url = make_url(POSTGRES_URL).set(port=6432, database=name)
        yield ConnectInfo(kind="postgresql", url=url, engine="postgresql")
    finally:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # FORCE: PgBouncer keeps server connections
        admin.close()


@pytest.mark.parametrize("driver_id", PG_STREAM_DRIVERS)
def test_stream_works_behind_pgbouncer(driver_id: str, bouncer_db: ConnectInfo) -> None:
    """The stream's transaction keeps one server connection for the cursor's whole life: it works in pooling."""
    with _adapter(driver_id).connect(bouncer_db) as s:
        assert list(s.stream(SERIES["postgresql"], {"n": N}, batch=500)) == [(i,) for i in range(1, N + 1)]
        assert not s.in_transaction


@pytest.mark.parametrize("driver_id", PG_NOTIFY_DRIVERS)
def test_listen_behind_pgbouncer_stays_with_the_server_connection(driver_id: str, bouncer_db: ConnectInfo) -> None:
    """In transaction pooling the LISTEN belongs to the server connection that ran it: the listener hears nothing,
    and the next client handed that server connection (here the notifier itself) is the one listening."""
    adapter = _adapter(driver_id)
    with adapter.connect(bouncer_db) as a, adapter.connect(bouncer_db) as b:
        channel = _channel()
        a.listen(channel)
        b.execute("SELECT pg_notify(:c, 'lost')", {"c": channel})
        assert a.notifications(1.0) == []
        listening = b.execute("SELECT count(*) FROM pg_listening_channels() AS c WHERE c = :c", {"c": channel})
        assert listening.scalar() == 1
