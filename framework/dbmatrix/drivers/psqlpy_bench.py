"""psqlpy's bench operations, on its own connection API (``execute(sql, args, prepared=...)``, ``result()``, a
``Transaction`` as an async context manager): the adapter's ``bench_module``."""

from __future__ import annotations

from typing import Any

from ..bench import ops_dbapi
from ..bench.op import DEFAULT, SELECTS, TUNED, Op
from ..bench.ops_dbapi import binder, cycle
from ..bench.schema import EVENTS
from ..bench.workloads import (
    COPY_COLUMNS,
    INSERT_SQL,
    UPDATE_SQL,
    call_params,
    insert_batches,
    lock_select_sql,
    select_sql,
)
from ..drivers.base import DriverAdapter, Session

_DEFAULT = {"prepared": "True (psqlpy default: every statement named and kept per connection)"}
_UNPREPARED = {"prepared": "False (the pooler-safe setting: an unnamed statement per call)"}
_TUNED = {**{w: _UNPREPARED for w in SELECTS}, "update_txn": _UNPREPARED,
          "insert_batch": {"method": "copy_records_to_table (binary COPY)"}}


def variants(adapter: DriverAdapter, workload: str) -> dict[str, dict[str, str]]:
    """``default``: psqlpy's own (every statement prepared); ``tuned``: unprepared statements, COPY for the batch."""
    shared = ops_dbapi.variants(adapter, workload)[DEFAULT]  # what every DBAPI driver's default row says
    return {DEFAULT: {**_DEFAULT, **shared}, TUNED: dict(_TUNED[workload])}


def build_op(session: Session, workload: str, variant: str, rows: int, seed: int) -> Op:
    return session.run(_psqlpy_op(session, workload, variant, rows, seed))  # type: ignore[attr-defined]


async def _psqlpy_op(session: Session, workload: str, variant: str, rows: int, seed: int) -> Op:
    """psqlpy's connection API: ``execute(sql, args, prepared=...)`` and ``result()`` (its default: dicts), a
    ``Transaction`` as an async context manager; tuned: ``prepared=False``, binary COPY for the batch."""
    kind = session.info.kind
    conn = session.conn  # type: ignore[attr-defined]
    prepared = variant != TUNED
    if workload in SELECTS:
        query, bind = binder(session, select_sql(workload, kind))
        nxt = cycle([bind(p) for p in call_params(workload, rows, seed)])
        execute = conn.execute

        async def call() -> Any:
            return (await execute(query, nxt(), prepared=prepared)).result()

        return Op(call, True)
    if workload == "update_txn":
        (sel_q, _), (upd_q, upd_b), (ins_q, ins_b) = (
            binder(session, s) for s in (lock_select_sql(kind), UPDATE_SQL, INSERT_SQL))
        nxt = cycle(call_params(workload, rows, seed))

        async def call() -> Any:
            p = nxt()
            async with conn.transaction() as tx:
                score = await tx.fetch_val(sel_q, [p["id"]], prepared=prepared)
                await tx.execute(upd_q, upd_b({"id": p["id"], "score": score + 1}), prepared=prepared)
                await tx.execute(ins_q, ins_b(p), prepared=prepared)

        return Op(call, True)
    if workload == "insert_batch":
        ins_q, ins_b = binder(session, INSERT_SQL)
        batches = insert_batches(rows, seed)
        if variant == TUNED:
            records = cycle([[tuple(r[c] for c in COPY_COLUMNS) for r in b] for b in batches])
            return Op(lambda: conn.copy_records_to_table(EVENTS, records=records(), columns=COPY_COLUMNS), True)
        nxt = cycle([[ins_b(r) for r in b] for b in batches])

        async def call() -> Any:
            async with conn.transaction() as tx:
                await tx.execute_many(ins_q, nxt())

        return Op(call, True)
    raise KeyError(workload)
