"""pooling.*: what a connection pooler or SQLAlchemy's own pool does to a driver's sessions.

Behind a transaction pooler (PgBouncer ``pool_mode = transaction``, Neon's pooled endpoint) a client holds a
server connection only for the length of a transaction: whatever a client leaves on "its" connection between
transactions (named prepared statements, ``SET``, temp tables) is on a server connection another client gets
next. Each case runs on every PostgreSQL target; the direct ones are the control group.

To make a client's next transaction land on another server connection, as it does in an application with
many clients, a second session (the *holder*) keeps a transaction open on the server connection the first one
just released.
"""

from __future__ import annotations

import concurrent.futures
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import QueuePool

from dbmatrix.casekit import axes
from dbmatrix.cell import Cell, describe_error
from dbmatrix.drivers.base import Session
from dbmatrix.errors import DriverError

CLIENTS = 8
ROUNDS = 10  # executions of the one statement per client: more than psycopg's prepare_threshold (5)
PG = ("postgresql",)


@axes("target", "driver", kinds=PG)
@pytest.mark.parametrize("variant", ["default", "fixed"])
def test_prepared_statements(cell: Cell, variant: str) -> None:
    """CLIENTS concurrent clients, each running its own parameterised SELECT ROUNDS times, each execution in a
    transaction of its own (as SQLAlchemy and most applications run them). With its defaults a driver that
    prepares named server-side statements (asyncpg's statement cache, psycopg from the 6th execution) breaks
    behind a transaction pooler: the next transaction runs on another server connection, where the statement is
    missing (26000), another client's statement has the same name (42P05), or, worst, that other statement runs
    (wrong rows). ``fixed`` connects with the options that turn named statements off (recorded in ``params``)."""
    options: dict[str, Any] | None = None
    if variant == "fixed":
        options = cell.driver.pooler_fix()  # the adapter's own: e.g. asyncpg statement_cache_size=0
        if options is None:
            pytest.skip(f"{cell.driver_id} never prepares statements on the server: there is nothing to switch off")
    clients = [cell.connect(options=options) for _ in range(CLIENTS)]

    def client(i: int) -> tuple[int, list[DriverError], list[str]]:
        # each client's own statement text, as different parts of an application have different queries
        sql = f"SELECT CAST(:a AS INTEGER) * 2 AS doubled, {i} AS client"
        s, ok, errors, wrong = clients[i], 0, [], []
        for r in range(ROUNDS):
            try:
                s.begin()
                # the driver's own call (asyncpg's statement cache, psycopg's prepare_threshold), not our adapter's
                rows = [tuple(row) for row in s.hot_path(sql, {"a": r})()]
                s.commit()
            except Exception as exc:  # noqa: BLE001 - the driver's own errors are findings, anything else is ours
                err = exc if isinstance(exc, DriverError) else cell.driver.normalise_error(exc)
                if err is None:
                    raise
                errors.append(err)
                if s.in_transaction:
                    s.rollback()
                continue
            ok += 1
            if rows != [(2 * r, i)]:
                wrong.append(f"client {i} round {r} got {rows!r}")
        return ok, errors, wrong

    with concurrent.futures.ThreadPoolExecutor(CLIENTS, thread_name_prefix="dbm-client") as pool:
        outcomes = list(pool.map(client, range(CLIENTS), timeout=120))
    done = sum(o[0] for o in outcomes)
    failures = [e for o in outcomes for e in o[1]]
    wrong = [w for o in outcomes for w in o[2]]
    errors = Counter(e.code or e.cls for e in failures)
    first = {e.code or e.cls: e for e in reversed(failures)}
    metrics = {"executions": CLIENTS * ROUNDS, "ok": done, "errors": dict(errors), "wrong_rows": len(wrong)}
    if wrong or errors:
        # either failure can come first (it depends on which server connection each transaction gets): both are
        # the one finding, the mechanism names the commonest (``wrong-rows``: another client's statement ran)
        problems = [f"{len(wrong)}x another client's statement ran and returned its rows ({'; '.join(wrong[:2])})"
                    ] if wrong else []
        problems += [f"{n}x {describe_error(first[k])}" for k, n in errors.most_common()]
        counts = Counter({**errors, "wrong-rows": len(wrong)})
        cell.unsupported(f"{len(wrong) + sum(errors.values())} of {CLIENTS * ROUNDS} executions failed: "
                         + "; ".join(problems), mechanism=f"error:{counts.most_common(1)[0][0]}", metrics=metrics)
    else:
        cell.supported(f"{CLIENTS} concurrent clients x {ROUNDS} transactions, all rows right", metrics=metrics)


def _pin(holder: Session) -> None:
    """The holder takes the server connection the client just released and keeps it (transaction open)."""
    holder.begin()
    holder.execute("SELECT 1")


def _release(holder: Session) -> None:
    if holder.in_transaction:
        holder.rollback()


@axes("target", "driver", kinds=PG)
@pytest.mark.parametrize("state", ["set", "set_local", "temp_table", "startup_parameter"])
def test_session_state(cell: Cell, state: str) -> None:
    """Session state across transactions: ``SET`` (kept by the session, so lost or leaked behind a transaction
    pooler), ``SET LOCAL`` (lives in one transaction: safe everywhere), a temp table (belongs to the server
    connection) and a startup parameter given at connect (a pooler must drop or refuse it)."""
    if state == "startup_parameter":
        options = cell.driver.startup_options({"work_mem": "7MB"})  # as the driver passes a startup parameter
        try:
            s = cell.connect(options=options)
        except DriverError as err:
            cell.unsupported(f"connecting with work_mem=7MB as a startup parameter failed: {describe_error(err)}",
                             mechanism=f"error:{err.code or err.cls}")
            return
        got = s.execute("SHOW work_mem").scalar()
        if got == "7MB":
            cell.supported("the startup parameter work_mem=7MB is in effect")
        else:
            cell.differs(f"the startup parameter work_mem=7MB was dropped silently: SHOW work_mem = {got!r}")
        return
    # without the driver's named prepared statements, which would fail here first (pooling.prepared_statements)
    options = cell.driver.pooler_fix()
    client, holder = cell.connect(options=options), cell.connect(options=options)
    t = cell.table("tmp")
    try:
        if state == "set_local":
            client.begin()
            client.execute("SET LOCAL dbm.flag = 'on'")
            got = client.execute("SELECT current_setting('dbm.flag', true)").scalar()
            client.commit()
            _pin(holder)
            after = client.execute("SELECT current_setting('dbm.flag', true)").scalar()
            if got == "on" and after in (None, ""):
                cell.supported("SET LOCAL held inside its transaction and was gone after it")
            else:
                cell.differs(f"SET LOCAL: inside the transaction {got!r}, after it {after!r}")
            return
        if state == "set":
            client.execute("SET dbm.flag = 'on'")
            _pin(holder)
            got = client.execute("SELECT current_setting('dbm.flag', true)").scalar()
            if got == "on":
                cell.supported("a SET in one transaction is in effect in the client's next one")
            else:
                cell.differs(f"a SET in one transaction is gone in the client's next one (current_setting = {got!r}): "
                             "the next transaction ran on another server connection; the SET stays on the pooled "
                             "one for whichever client gets it; use SET LOCAL inside the transaction")
            return
        client.execute(f"CREATE TEMPORARY TABLE {t} (x INTEGER)")
        _pin(holder)
        try:
            client.execute(f"INSERT INTO {t} VALUES (1)")
        except DriverError as err:
            cell.unsupported(f"the temp table made in the client's last transaction is not there: "
                             f"{describe_error(err)}", mechanism=f"error:{err.code or err.cls}")
            return
        cell.supported("a temp table made in one transaction is usable in the client's next one")
    finally:
        _release(holder)
        try:
            client.execute(f"DROP TABLE IF EXISTS {t}")
        except DriverError:
            pass  # the table lives on a pooled server connection we no longer reach; DISCARD ALL drops it


@axes("target", tool="sqlalchemy-pool")
@pytest.mark.parametrize("pool", ["default", "reset_none", "pre_ping"])
@pytest.mark.parametrize("state", ["setting", "open_transaction"])
def test_pool_reset(cell: Cell, pool: str, state: str) -> None:
    """What a connection returned to SQLAlchemy's pool still carries at the next checkout. The pool's reset on
    return is a ROLLBACK (``reset_on_return="rollback"``), not a session reset: a session setting (PostgreSQL
    search_path, MySQL sql_mode, SQLite a pragma) made through a ``Connection`` leaks to the next checkout; a
    transaction left open on a raw DBAPI connection (``engine.raw_connection()``) is rolled back by the pool
    unless ``reset_on_return=None``. ``pre_ping`` only checks that the connection is alive."""
    kw: dict[str, Any] = {"pool_size": 1, "max_overflow": 0}
    if pool == "reset_none":
        kw["pool_reset_on_return"] = None
    if pool == "pre_ping":
        kw["pool_pre_ping"] = True
    setting = {
        "postgresql": ("SET search_path = dbm_leak, public", "SHOW search_path", "dbm_leak, public"),
        "mysql": ("SET SESSION sql_mode = 'ANSI_QUOTES'", "SELECT @@SESSION.sql_mode", "ANSI_QUOTES"),
        "sqlite": ("PRAGMA case_sensitive_like = 1", "SELECT 'a' LIKE 'A'", 0),
        "cockroachdb": ("SET search_path = dbm_leak, public", "SHOW search_path", "dbm_leak, public"),
    }[cell.kind]
    engine = create_engine(cell.url(), poolclass=QueuePool, **kw)
    t = cell.table("pooled")
    try:
        with engine.begin() as conn:
            conn.execute(text(f"CREATE TABLE {t} (x INTEGER)"))
        if state == "setting":
            conn = engine.connect()
            first = conn.connection.dbapi_connection
            conn.execute(text(setting[0]))
            conn.commit()
            conn.close()  # back to the pool
        else:
            raw = engine.raw_connection()
            first = raw.dbapi_connection
            cursor = raw.cursor()
            cursor.execute(f"INSERT INTO {t} VALUES (1)")  # the DBAPI opened a transaction; never committed
            cursor.close()
            raw.close()  # back to the pool, through its reset on return
        with engine.connect() as again:
            same = again.connection.dbapi_connection is first
            if state == "setting":
                got = again.execute(text(setting[1])).scalar()
                leaked = got == setting[2]
                what = f"the setting ({setting[0]!r}) is still in effect: {got!r}" if leaked else \
                    f"the setting was reset ({got!r})"
            else:
                rows = again.execute(text(f"SELECT count(*) FROM {t}")).scalar()
                again.rollback()
                leaked = rows == 1
                what = "the uncommitted INSERT of the last checkout is visible (its transaction is still open)" \
                    if leaked else "the last checkout's open transaction was rolled back"
    finally:
        with engine.begin() as conn:
            conn.execute(text(f"DROP TABLE IF EXISTS {t}"))
        engine.dispose()
    detail = f"next checkout ({'same' if same else 'another'} DBAPI connection): {what}"
    if leaked:
        cell.differs(detail)
    else:
        cell.supported(detail)

