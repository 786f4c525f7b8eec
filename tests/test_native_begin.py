"""Session.begin_native: each raw driver opens the transaction through its own isolation API (not our SQL), and
the session is left exactly as found afterwards — after a rollback, a commit, and a commit the server refuses.

Live servers: PostgreSQL (5432), MariaDB (3306) and a SQLite file, as tests/test_sessions.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from live import installed_adapter, mariadb_info, postgres_info, sqlite_info

from dbmatrix.drivers.base import ConnectInfo, Session
from dbmatrix.engines import engine_for
from dbmatrix.engines.sqlite import write_lock_held
from dbmatrix.errors import DriverError

PG = ["asyncpg", "psycopg", "psycopg-async", "psycopg2"]
MYSQL = ["pymysql", "mysqlclient", "asyncmy"]
SQLITE = ["sqlite3", "aiosqlite"]
# a level other than each server's default, so a level left on the session shows
LEVEL = {"postgresql": "repeatable read", "mysql": "read committed", "sqlite": "immediate"}


def info_for(driver_id: str, tmp_path: Path) -> ConnectInfo:
    if driver_id in PG:
        return postgres_info()
    if driver_id in MYSQL:
        return mariadb_info()
    return sqlite_info(str(tmp_path / "native.db"))


def session_state(s: Session) -> dict[str, Any]:
    """What a pooled connection would carry over: the server's session settings, whether a transaction is open,
    whether statements autocommit, and the driver's own transaction settings."""
    raw, kind = s.driver_connection(), s.info.kind
    state: dict[str, Any] = {"in_transaction": s.in_transaction}
    if kind == "postgresql":
        state["default_level"] = s.execute("SHOW default_transaction_isolation").scalar()
        # autocommit: two statements run in two transactions, so they get two transaction ids
        state["autocommit"] = s.execute("SELECT txid_current()").scalar() != s.execute("SELECT txid_current()").scalar()
    elif kind == "mysql":
        row = s.execute("SELECT @@SESSION.tx_isolation, @@autocommit, @@in_transaction").rows[0]
        state.update(session_level=row[0], autocommit=row[1], server_in_transaction=row[2])
    else:
        state.update(read_uncommitted=s.execute("PRAGMA read_uncommitted").scalar(),
                     sqlite_in_transaction=s.raw_sqlite3().in_transaction, isolation_level=raw.isolation_level)
    for attr in ("autocommit", "isolation_level"):  # psycopg, psycopg2: the driver's own transaction settings
        if kind == "postgresql" and hasattr(raw, attr):
            state[f"driver_{attr}"] = getattr(raw, attr)
    if s.adapter.id == "asyncpg":
        state["asyncpg_transaction"] = raw._top_xact  # asyncpg's record of a transaction() it started
    return state


def native_in_effect(s: Session, isolation: str) -> None:
    """Inside the transaction, the driver's own state shows that its API (not SQL of ours) opened it."""
    raw, driver = s.driver_connection(), s.adapter.id
    if driver == "asyncpg":
        assert raw._top_xact is not None and raw.is_in_transaction()
    elif driver in ("psycopg", "psycopg-async"):
        assert raw.autocommit is False and raw.isolation_level.name == isolation.upper().replace(" ", "_")
    elif driver == "psycopg2":
        import psycopg2.extensions as ext

        assert raw.autocommit is False and raw.isolation_level == ext.ISOLATION_LEVEL_REPEATABLE_READ
    elif driver in MYSQL:  # no isolation API: the session's level is set, then the driver's begin()
        row = s.execute("SELECT @@SESSION.tx_isolation, @@in_transaction").rows[0]
        assert row == ("READ-COMMITTED", 1)
    else:  # legacy transaction control: the mode is set and nothing is begun until a write
        assert raw.isolation_level == "IMMEDIATE" and not s.raw_sqlite3().in_transaction
        s.execute("INSERT INTO native_t VALUES (1)")
        assert s.raw_sqlite3().in_transaction and write_lock_held(str(s.info.url.database))


def prepare(s: Session) -> None:
    """A table for the writes (SQLite's implicit BEGIN needs one); temporary where the server is shared."""
    if s.info.kind == "sqlite":
        s.execute("CREATE TABLE IF NOT EXISTS native_t (k int)")


@pytest.mark.parametrize("end", ["rollback", "commit"])
@pytest.mark.parametrize("driver_id", PG + MYSQL + SQLITE)
def test_native_begin_uses_the_driver_api_and_restores_the_session(driver_id: str, end: str, tmp_path: Path) -> None:
    info = info_for(driver_id, tmp_path)
    isolation = LEVEL[info.kind]
    with installed_adapter(driver_id).connect(info) as s:
        prepare(s)
        before = session_state(s)
        api = s.begin_native(isolation)
        assert "no isolation API in its adapter" not in api, api  # not the fallback to our SQL
        native_in_effect(s, isolation)
        reported = engine_for(info.kind, info.engine).transaction_isolation(s)
        assert reported == isolation, f"{api}: the server reports {reported!r}"
        getattr(s, end)()
        assert session_state(s) == before


def failing_commit(s: Session) -> Callable[[], None]:
    """Set up a write that the server refuses only at COMMIT (a deferred constraint); returns the write."""
    if s.info.kind == "postgresql":
        s.execute("CREATE TEMP TABLE native_u (k int UNIQUE DEFERRABLE INITIALLY DEFERRED)")
        return lambda: s.execute("INSERT INTO native_u VALUES (1), (1)")
    s.execute("PRAGMA foreign_keys = ON")
    s.execute("CREATE TABLE IF NOT EXISTS native_p (k int PRIMARY KEY)")
    s.execute("CREATE TABLE IF NOT EXISTS native_c (k int REFERENCES native_p DEFERRABLE INITIALLY DEFERRED)")
    return lambda: s.execute("INSERT INTO native_c VALUES (7)")


@pytest.mark.parametrize("driver_id", PG + SQLITE)
def test_a_refused_commit_still_restores_the_session(driver_id: str, tmp_path: Path) -> None:
    """The COMMIT fails (SQLite even keeps its transaction open then): the error is raised and the session is
    as found all the same — autocommit back, the driver's level reset, no transaction left open."""
    info = info_for(driver_id, tmp_path)
    with installed_adapter(driver_id).connect(info) as s:
        write = failing_commit(s)
        before = session_state(s)
        s.begin_native(LEVEL[info.kind])
        write()
        with pytest.raises(DriverError) as err:
            s.commit()
        assert err.value.code in ("23505", "SQLITE_CONSTRAINT_FOREIGNKEY")
        assert session_state(s) == before
        assert s.execute("SELECT 1").scalar() == 1


@pytest.mark.parametrize("driver_id", ["asyncpg", "psycopg", "sqlite3"])
def test_a_failed_statement_inside_then_rollback_restores_the_session(driver_id: str, tmp_path: Path) -> None:
    info = info_for(driver_id, tmp_path)
    with installed_adapter(driver_id).connect(info) as s:
        prepare(s)
        before = session_state(s)
        s.begin_native(LEVEL[info.kind])
        with pytest.raises(DriverError):
            s.execute("SELECT * FROM no_such_table_native")
        s.rollback()
        assert session_state(s) == before
        # and a second native transaction opens again (asyncpg: its Transaction record was cleared)
        s.begin_native(LEVEL[info.kind])
        s.rollback()
        assert session_state(s) == before


def test_the_fallback_says_it_used_our_sql(tmp_path: Path) -> None:
    """An adapter with no native way (the base Session) opens the transaction with begin() and says so."""
    info = info_for("psycopg", tmp_path)
    with installed_adapter("psycopg").connect(info) as s:
        api = Session.begin_native(s, "serializable")
        assert api.startswith("psycopg: no isolation API in its adapter") and "SERIALIZABLE" in api
        assert engine_for(info.kind, info.engine).transaction_isolation(s) == "serializable"
        s.rollback()
