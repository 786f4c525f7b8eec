"""Benchmark operations through Piccolo (``piccolo+<dbapi>``), over the bench schema (``bench/schema.py``) declared
again as Piccolo tables on the session's engine.

Defaults are what Piccolo's docs write for model objects (``objects()``, ``save()``, ``insert(*objects)``); tuned
variants use its query API returning plain dicts (``select(columns)``, no ``Table`` instances) and
``save([columns])``. Piccolo inserts only ``Table`` instances, so ``insert_batch`` has a default only. Write
workloads run in ``engine.transaction()`` with ``lock_rows()`` on PostgreSQL; on SQLite (no ``lock_rows``) with
``transaction_type=IMMEDIATE``, Piccolo's own knob. The JSON filter is ``doc.arrow('tag') == '"t1"'``: ``->`` yields
JSON, so the value is compared as JSON text (on PostgreSQL the bench column is jsonb).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from typing import Any

from ..bench.op import DEFAULT, SELECTS, TUNED, Op
from ..bench.schema import EVENTS, USERS
from ..bench.workloads import call_params, insert_batches
from ..drivers.base import DriverAdapter, Session
from .piccolo_layer import PICCOLO_ADAPTERS

_KNOBS: dict[str, tuple[dict[str, str], dict[str, str] | None]] = {
    "pk_select": ({"query": "User.objects().get(User.id == id) (a Table instance)"},
                  {"query": "User.select(User.id, User.name, User.email).where(User.id == id).first() (a dict)"}),
    "range_select": ({"query": "User.objects().where(User.id >= lo, User.id <= hi) (Table instances)"},
                     {"query": "User.select(id, name, email, score).where(...) (dicts)"}),
    "json_select": ({"query": "User.objects().where(..., User.doc.arrow('tag') == '\"t1\"') (Table instances)"},
                    {"query": "User.select(User.doc).where(...) (dicts)"}),
    "update_txn": ({"read": "User.objects().where(User.id == id).lock_rows().first() (SQLite: no lock_rows)",
                    "write": "user.save(), Event(...).save()",
                    "transaction": "engine.transaction() (SQLite: transaction_type=IMMEDIATE)"},
                   {"read": "User.objects().where(User.id == id).lock_rows().first() (SQLite: no lock_rows)",
                    "write": "user.save([User.score]), Event.insert(Event(...))",
                    "transaction": "engine.transaction() (SQLite: transaction_type=IMMEDIATE)"}),
    "insert_batch": ({"method": "Event.insert(*objects) (one multi-row INSERT)"}, None),
}


def variants(adapter: DriverAdapter, workload: str) -> dict[str, dict[str, str]]:
    default, tuned = _KNOBS[workload]
    return {DEFAULT: dict(default), **({TUNED: dict(tuned)} if tuned is not None else {})}


def _tables(db: Any, postgres: bool) -> tuple[Any, Any]:
    from piccolo.columns import JSON, JSONB, BigSerial, Integer, Varchar
    from piccolo.table import Table

    class User(Table, tablename=USERS, db=db):
        id = Integer(primary_key=True)
        name = Varchar(length=64)
        email = Varchar(length=128)
        score = Integer()
        doc = JSONB() if postgres else JSON()

    class Event(Table, tablename=EVENTS, db=db):
        id = BigSerial(primary_key=True)
        user_id = Integer()
        payload = Varchar(length=200)

    return User, Event


def build_op(session: Session, workload: str, variant: str, rows: int, seed: int) -> Op:
    engine, sqlite = session.orm, session.info.kind == "sqlite"  # type: ignore[attr-defined]
    User, Event = _tables(engine, not sqlite)
    tuned = variant == TUNED
    params = call_params(workload, rows, seed) if workload != "insert_batch" else None
    nxt = itertools.cycle(params or insert_batches(rows, seed)).__next__
    if workload in SELECTS:
        body = _select(workload, tuned, User, nxt)
    elif workload == "update_txn":
        body = _update(tuned, User, Event, engine, sqlite, nxt)
    elif workload == "insert_batch":
        body = _insert(Event, nxt)
    else:
        raise KeyError(workload)
    # on SQLite, Piccolo's sqlite3 adapters bind this call's values only (as Peewee's per statement)
    return Op(PICCOLO_ADAPTERS.held_async(body) if sqlite else body, True)


def _select(workload: str, tuned: bool, User: Any, nxt: Callable[[], dict[str, Any]]) -> Callable[[], Any]:
    def where(p: dict[str, Any]) -> list[Any]:
        if workload == "pk_select":
            return [User.id == p["id"]]
        clauses = [User.id >= p["lo"], User.id <= p["hi"]]
        return clauses + [User.doc.arrow("tag") == json.dumps(p["tag"])] if workload == "json_select" else clauses

    if not tuned:
        if workload == "pk_select":
            return lambda: User.objects().get(User.id == nxt()["id"])
        return lambda: User.objects().where(*where(nxt()))
    if workload == "pk_select":
        return lambda: User.select(User.id, User.name, User.email).where(*where(nxt())).first()
    columns = (User.doc,) if workload == "json_select" else (User.id, User.name, User.email, User.score)
    return lambda: User.select(*columns).where(*where(nxt()))


def _update(tuned: bool, User: Any, Event: Any, engine: Any, sqlite: bool,
            nxt: Callable[[], dict[str, Any]]) -> Callable[[], Any]:
    if sqlite:
        from piccolo.engine.sqlite import TransactionType

        def transaction() -> Any:
            return engine.transaction(transaction_type=TransactionType.immediate)
    else:
        transaction = engine.transaction

    async def body() -> None:
        p = nxt()
        async with transaction():
            query = User.objects().where(User.id == p["id"])
            user = await (query if sqlite else query.lock_rows()).first()
            user.score += 1
            if tuned:
                await user.save([User.score])
                await Event.insert(Event(user_id=p["id"], payload=p["payload"]))
            else:
                await user.save()
                await Event(user_id=p["id"], payload=p["payload"]).save()

    return body


def _insert(Event: Any, nxt: Callable[[], list[dict[str, Any]]]) -> Callable[[], Any]:
    return lambda: Event.insert(*[Event(**r) for r in nxt()])
