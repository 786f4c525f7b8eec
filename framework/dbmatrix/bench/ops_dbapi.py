"""Benchmark operations written against each DBAPI/asyncio driver's own API (the adapter's raw connection).

Three shapes cover most drivers: blocking DBAPI cursors (psycopg, psycopg2, pymysql, mysqlclient, sqlite3), asyncio
cursors (psycopg-async, asyncmy, aiosqlite) and asyncpg's connection API; a driver with an API of its own builds its
operations in its own module (``bench_module``: psqlpy's). Transactions are opened with SQL
on the adapter's autocommit connection (``begin_statements``; asyncpg with its own transaction API),
SQLite's as ``BEGIN IMMEDIATE`` so that concurrent writers queue on the busy timeout instead of failing to upgrade a
read lock.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Callable, Mapping
from typing import Any

from ..drivers.base import DriverAdapter, Session, begin_statements, translate
from ..drivers.params import parameter_names
from .op import DEFAULT, SELECTS, TUNED, Op
from .schema import EVENTS
from .workloads import COPY_COLUMNS, INSERT_SQL, UPDATE_SQL, call_params, insert_batches, lock_select_sql, select_sql

Binder = Callable[[Mapping[str, Any]], Any]
COPY_SQL = f"COPY {EVENTS} ({', '.join(COPY_COLUMNS)}) FROM STDIN"
VALUES_SQL = f"INSERT INTO {EVENTS} ({', '.join(COPY_COLUMNS)}) VALUES %s"
# (driver id or "sa-core"/"sa-orm", workload) -> knobs of the tuned variant; default knobs below.
_DBAPI_TUNED: dict[str, dict[str, dict[str, str]]] = {
    "psycopg": {
        **{w: {"prepare": "True (server-side prepared from the first call)", "binary": "True"} for w in SELECTS},
        "update_txn": {"prepare": "True (server-side prepared from the first call)"},
        "insert_batch": {"method": "COPY FROM STDIN (cursor.copy, write_row)"},
    },
    "psycopg2": {"insert_batch": {"method": "psycopg2.extras.execute_values(page_size=1000)"}},
    "asyncpg": {
        **{w: {"statement": "conn.prepare() once, PreparedStatement.fetch"} for w in SELECTS},
        "update_txn": {"statement": "conn.prepare() once per statement"},
        "insert_batch": {"method": "copy_records_to_table (binary COPY)"},
    },
    "aiosqlite": {w: {"call": "execute_fetchall (one hop to aiosqlite's thread per query)"} for w in SELECTS},
}
_DBAPI_TUNED["psycopg-async"] = _DBAPI_TUNED["psycopg"]

_DBAPI_DEFAULT: dict[str, dict[str, str]] = {
    "insert_batch": {"method": "executemany in one transaction"},
    "update_txn": {"statements": "SELECT ... FOR UPDATE, UPDATE, INSERT in one transaction"},
}
_DRIVER_DEFAULT: dict[str, dict[str, str]] = {
    "psycopg": {"prepare_threshold": "5 (psycopg default)"},
    "psycopg-async": {"prepare_threshold": "5 (psycopg default)"},
    "asyncpg": {"statement_cache_size": "100 (asyncpg default)"},
}



def variants(adapter: DriverAdapter, workload: str) -> dict[str, dict[str, str]]:
    """``{variant: knobs}`` of a DBAPI driver on ``workload``: ``default``, and ``tuned`` where a knob exists."""
    out = {DEFAULT: {**_DRIVER_DEFAULT.get(adapter.id, {}), **_DBAPI_DEFAULT.get(workload, {})}}
    tuned_knobs = _DBAPI_TUNED.get(adapter.id, {}).get(workload)
    if tuned_knobs is not None:
        out[TUNED] = dict(tuned_knobs)
    return out


def binder(session: Session, sql: str) -> tuple[str, Binder]:
    """``sql`` in the driver's paramstyle, and a function from ``{name: value}`` to the driver's arguments."""
    names = parameter_names(sql)
    query, sample = translate(session.adapter, sql, {n: n for n in names})
    if isinstance(sample, dict):
        return query, dict
    return query, lambda values: [values[n] for n in sample]  # positional: ``sample`` is the names in order


def cycle(items: list[Any]) -> Callable[[], Any]:
    return itertools.cycle(items).__next__


def begin_sql(session: Session) -> list[str]:
    """The statement that opens a transaction, for the session's engine (MariaDB and MySQL differ). Only the last
    of ``begin_statements``: a bench worker never changes its isolation level, so MySQL's ``SET SESSION`` of the
    level would be one more round trip per operation than the ceiling's ``START TRANSACTION``."""
    kind = session.info.kind
    return begin_statements(kind, "immediate" if kind == "sqlite" else None, session.info.engine)[-1:]


def build_op(session: Session, workload: str, variant: str, rows: int, seed: int) -> Op:
    """The operation in the shape the adapter declares (``bench_shape``): blocking cursor, asyncio cursor, asyncpg."""
    shape, driver_id = session.adapter.bench_shape, session.adapter.id
    if shape == "asyncpg":
        return session.run(_asyncpg_op(session, workload, variant, rows, seed))  # type: ignore[attr-defined]
    if shape == "async-cursor":
        return session.run(_async_cursor_op(session, driver_id, workload, variant, rows, seed))  # type: ignore[attr-defined]
    if shape == "cursor":
        return _sync_cursor_op(session, driver_id, workload, variant, rows, seed)
    raise ValueError(f"{driver_id}: unknown bench shape {shape!r}")


def _psycopg_kwargs(driver_id: str, workload: str, variant: str) -> dict[str, Any]:
    if variant != TUNED or not driver_id.startswith("psycopg") or driver_id == "psycopg2":
        return {}
    return {"prepare": True, "binary": True} if workload in SELECTS else {"prepare": True}


# --- blocking DBAPI cursors -----------------------------------------------------------------------------------
def _sync_cursor_op(session: Session, driver_id: str, workload: str, variant: str, rows: int, seed: int) -> Op:
    kind = session.info.kind
    cur = session.conn.cursor()  # type: ignore[attr-defined]
    execute = cur.execute
    kw = _psycopg_kwargs(driver_id, workload, variant)
    rollback = _swallow(lambda: execute("ROLLBACK"))
    if workload in SELECTS:
        query, bind = binder(session, select_sql(workload, kind))
        nxt = cycle([bind(p) for p in call_params(workload, rows, seed)])
        fetchall = cur.fetchall
        if kw:
            def call() -> Any:
                execute(query, nxt(), **kw)
                return fetchall()
        else:
            def call() -> Any:
                execute(query, nxt())
                return fetchall()
        return Op(call, False)
    begin = begin_sql(session)
    if workload == "update_txn":
        (sel_q, sel_b), (upd_q, upd_b), (ins_q, ins_b) = (
            binder(session, s) for s in (lock_select_sql(kind), UPDATE_SQL, INSERT_SQL))
        nxt = cycle(call_params(workload, rows, seed))
        fetchone = cur.fetchone

        def call() -> Any:
            p = nxt()
            for stmt in begin:
                execute(stmt)
            execute(sel_q, sel_b(p), **kw)
            score = fetchone()[0]
            execute(upd_q, upd_b({"id": p["id"], "score": score + 1}), **kw)
            execute(ins_q, ins_b(p), **kw)
            execute("COMMIT")

        return Op(call, False, recover=rollback)
    if workload == "insert_batch":
        ins_q, ins_b = binder(session, INSERT_SQL)
        batches = insert_batches(rows, seed)
        if variant == DEFAULT:
            nxt = cycle([[ins_b(r) for r in b] for b in batches])
            executemany = cur.executemany

            def write() -> None:
                executemany(ins_q, nxt())
        elif driver_id == "psycopg":
            nxt = cycle([[tuple(r[c] for c in COPY_COLUMNS) for r in b] for b in batches])

            def write() -> None:
                with cur.copy(COPY_SQL) as copy:
                    for row in nxt():
                        copy.write_row(row)
        else:  # psycopg2
            from psycopg2.extras import execute_values  # optional driver, imported when used

            nxt = cycle([[tuple(r[c] for c in COPY_COLUMNS) for r in b] for b in batches])

            def write() -> None:
                execute_values(cur, VALUES_SQL, nxt(), page_size=len(batches[0]))

        def call() -> Any:
            for stmt in begin:
                execute(stmt)
            write()
            execute("COMMIT")

        return Op(call, False, recover=rollback)
    raise KeyError(workload)


def _swallow(fn: Callable[[], Any]) -> Callable[[], Any]:
    def run() -> Any:
        try:
            return fn()
        except Exception:  # noqa: BLE001 - a failed ROLLBACK after a failed call changes nothing we report
            return None

    return run


# --- asyncio cursors (the blocking shape above with ``await``: a shared body would add a call to every sync op) --
async def _async_cursor_op(session: Session, driver_id: str, workload: str, variant: str, rows: int, seed: int
                           ) -> Op:
    kind = session.info.kind
    conn = session.conn  # type: ignore[attr-defined]
    cur = conn.cursor()
    if inspect.isawaitable(cur):  # aiosqlite's cursor() is a coroutine
        cur = await cur
    execute = cur.execute
    kw = _psycopg_kwargs(driver_id, workload, variant)

    async def rollback() -> None:
        try:
            await execute("ROLLBACK")
        except Exception:  # noqa: BLE001 - see _swallow
            pass

    if workload in SELECTS:
        query, bind = binder(session, select_sql(workload, kind))
        nxt = cycle([bind(p) for p in call_params(workload, rows, seed)])
        fetchall = cur.fetchall
        if driver_id == "aiosqlite" and variant == TUNED:
            fetch_once = conn.execute_fetchall
            return Op(lambda: fetch_once(query, nxt()), True)

        async def call() -> Any:
            await execute(query, nxt(), **kw)
            return await fetchall()

        return Op(call, True)
    begin = begin_sql(session)
    if workload == "update_txn":
        (sel_q, sel_b), (upd_q, upd_b), (ins_q, ins_b) = (
            binder(session, s) for s in (lock_select_sql(kind), UPDATE_SQL, INSERT_SQL))
        nxt = cycle(call_params(workload, rows, seed))
        fetchone = cur.fetchone

        async def call() -> Any:
            p = nxt()
            for stmt in begin:
                await execute(stmt)
            await execute(sel_q, sel_b(p), **kw)
            score = (await fetchone())[0]
            await execute(upd_q, upd_b({"id": p["id"], "score": score + 1}), **kw)
            await execute(ins_q, ins_b(p), **kw)
            await execute("COMMIT")

        return Op(call, True, recover=rollback)
    if workload == "insert_batch":
        ins_q, ins_b = binder(session, INSERT_SQL)
        batches = insert_batches(rows, seed)
        if variant == DEFAULT:
            nxt = cycle([[ins_b(r) for r in b] for b in batches])
            executemany = cur.executemany

            async def write() -> None:
                await executemany(ins_q, nxt())
        else:  # psycopg-async: COPY
            nxt = cycle([[tuple(r[c] for c in COPY_COLUMNS) for r in b] for b in batches])

            async def write() -> None:
                async with cur.copy(COPY_SQL) as copy:
                    for row in nxt():
                        await copy.write_row(row)

        async def call() -> Any:
            for stmt in begin:
                await execute(stmt)
            await write()
            await execute("COMMIT")

        return Op(call, True, recover=rollback)
    raise KeyError(workload)


# --- asyncpg -----------------------------------------------------------------------------------------------------
async def _asyncpg_op(session: Session, workload: str, variant: str, rows: int, seed: int) -> Op:
    kind = session.info.kind
    conn = session.conn  # type: ignore[attr-defined]
    tuned = variant == TUNED
    if workload in SELECTS:
        query, bind = binder(session, select_sql(workload, kind))
        nxt = cycle([bind(p) for p in call_params(workload, rows, seed)])
        if tuned:
            fetch = (await conn.prepare(query)).fetch
            return Op(lambda: fetch(*nxt()), True)
        conn_fetch = conn.fetch
        return Op(lambda: conn_fetch(query, *nxt()), True)
    if workload == "update_txn":
        (sel_q, _), (upd_q, upd_b), (ins_q, ins_b) = (
            binder(session, s) for s in (lock_select_sql(kind), UPDATE_SQL, INSERT_SQL))
        nxt = cycle(call_params(workload, rows, seed))
        if tuned:
            sel, upd, ins = [await conn.prepare(q) for q in (sel_q, upd_q, ins_q)]
            fetchval, update, insert = sel.fetchval, upd.fetch, ins.fetch
        else:
            def fetchval(*args: Any) -> Any:
                return conn.fetchval(sel_q, *args)

            def update(*args: Any) -> Any:
                return conn.execute(upd_q, *args)

            def insert(*args: Any) -> Any:
                return conn.execute(ins_q, *args)

        async def call() -> Any:
            p = nxt()
            async with conn.transaction():
                score = await fetchval(p["id"])
                await update(*upd_b({"id": p["id"], "score": score + 1}))
                await insert(*ins_b(p))

        return Op(call, True)
    if workload == "insert_batch":
        ins_q, _ = binder(session, INSERT_SQL)
        nxt = cycle([[tuple(r[c] for c in COPY_COLUMNS) for r in b] for b in insert_batches(rows, seed)])
        if tuned:
            return Op(lambda: conn.copy_records_to_table(EVENTS, records=nxt(), columns=COPY_COLUMNS), True)

        async def call() -> Any:
            async with conn.transaction():
                await conn.executemany(ins_q, nxt())

        return Op(call, True)
    raise KeyError(workload)

