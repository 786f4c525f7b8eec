"""Benchmark operations through Peewee (``peewee+<dbapi>``), over the bench schema (``bench/schema.py``) declared
again as Peewee models.

Defaults are what Peewee's quickstart writes (model objects, ``get_by_id``, ``save()``, ``bulk_create``); tuned
variants use its documented ways out: ``.tuples()`` (rows without model objects), ``insert_many`` (one INSERT, no
objects), ``save(only=...)``. Peewee has no statement cache: every query is built per call in both variants.
Write workloads run in ``db.atomic()`` (SQLite: ``atomic(lock_type='IMMEDIATE')``, Peewee's own knob, since a
deferred read-then-write transaction fails with SQLITE_BUSY under concurrency).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from ..bench.op import DEFAULT, SELECTS, TUNED, Op
from ..bench.schema import EVENTS, USERS
from ..bench.workloads import call_params, insert_batches
from ..drivers.base import DriverAdapter, Session

_KNOBS: dict[str, tuple[dict[str, str], dict[str, str]]] = {
    "pk_select": ({"query": "User.get_by_id(id) (a model object)"},
                  {"query": "User.select(id, name, email).where(id == id).tuples()"}),
    "range_select": ({"query": "User.select().where(id.between(lo, hi)) (model objects)"},
                     {"query": "User.select(id, name, email, score).where(...).tuples()"}),
    "json_select": ({"query": "User.select().where(id.between(...), User.doc['tag'] == tag) (model objects)"},
                    {"query": "User.select(User.doc).where(...).tuples()"}),
    "update_txn": ({"read": "select().for_update().get() (SQLite: get_by_id)", "write": "user.save(), "
                    "Event.create(...)", "transaction": "db.atomic()"},
                   {"read": "select().for_update().get() (SQLite: get_by_id)", "write": "user.save(only=[score]), "
                    "Event.insert(...).execute()", "transaction": "db.atomic()"}),
    "insert_batch": ({"method": "Event.bulk_create(objects) in db.atomic()"},
                     {"method": "Event.insert_many(rows).execute() in db.atomic() (no objects)"}),
}


# On MariaDB Peewee must be told (its server detection does not set it): else a JSONField value is written as
# CAST(? AS JSON), which MariaDB refuses (error 1064: JSON is no cast type there), and save() of a row fails
_MARIADB_KNOB = {"database": "MySQLDatabase(mariadb=True) on MariaDB (else save() writes JSON with CAST(? AS JSON): "
                             "error 1064)"}


def variants(adapter: DriverAdapter, workload: str) -> dict[str, dict[str, str]]:
    default, tuned = _KNOBS[workload]
    extra = _MARIADB_KNOB if "mysql" in adapter.kinds and workload == "update_txn" else {}
    return {DEFAULT: {**default, **extra}, TUNED: {**tuned, **extra}}


def _models(db: Any) -> tuple[Any, Any]:
    import peewee as pw

    class User(pw.Model):
        id = pw.IntegerField(primary_key=True)
        name = pw.CharField(max_length=64)
        email = pw.CharField(max_length=128)
        score = pw.IntegerField()
        doc = pw.JSONField()

        class Meta:
            database = db
            table_name = USERS

    class Event(pw.Model):
        user_id = pw.IntegerField()
        payload = pw.CharField(max_length=200)

        class Meta:
            database = db
            table_name = EVENTS

    return User, Event


def build_op(session: Session, workload: str, variant: str, rows: int, seed: int) -> Op:
    db = session.peewee  # type: ignore[attr-defined]
    if session.info.engine == "mariadb":
        db.mariadb = True  # (_MARIADB_KNOB) read when a JSON value is written, so setting it here is enough
    User, Event = _models(db)
    tuned = variant == TUNED
    params = call_params(workload, rows, seed) if workload != "insert_batch" else None
    nxt = itertools.cycle(params or insert_batches(rows, seed)).__next__
    atomic = (lambda: db.atomic(lock_type="IMMEDIATE")) if session.info.kind == "sqlite" else db.atomic
    if workload in SELECTS:
        body = _select(workload, tuned, User, nxt)
    elif workload == "update_txn":
        body = _update(tuned, User, Event, atomic, session.info.kind != "sqlite", nxt)
    elif workload == "insert_batch":
        body = _insert(tuned, Event, atomic, nxt)
    else:
        raise KeyError(workload)
    return Op(body, False)


def _select(workload: str, tuned: bool, User: Any, nxt: Callable[[], dict[str, Any]]) -> Callable[[], Any]:
    def where(p: dict[str, Any]) -> list[Any]:
        if workload == "pk_select":
            return [User.id == p["id"]]
        clauses = [User.id.between(p["lo"], p["hi"])]
        return clauses + [User.doc["tag"] == p["tag"]] if workload == "json_select" else clauses

    if not tuned:
        if workload == "pk_select":
            return lambda: User.get_by_id(nxt()["id"])
        return lambda: list(User.select().where(*where(nxt())))
    columns = {"pk_select": (User.id, User.name, User.email),
               "range_select": (User.id, User.name, User.email, User.score), "json_select": (User.doc,)}[workload]
    return lambda: list(User.select(*columns).where(*where(nxt())).tuples())


def _update(tuned: bool, User: Any, Event: Any, atomic: Callable[[], Any], for_update: bool,
            nxt: Callable[[], dict[str, Any]]) -> Callable[[], Any]:
    def body() -> None:
        p = nxt()
        with atomic():
            user = (User.select().where(User.id == p["id"]).for_update().get() if for_update
                    else User.get_by_id(p["id"]))  # Peewee refuses FOR UPDATE on SQLite; IMMEDIATE locks instead
            user.score += 1
            if tuned:
                user.save(only=[User.score])
                Event.insert(user_id=p["id"], payload=p["payload"]).execute()
            else:
                user.save()
                Event.create(user_id=p["id"], payload=p["payload"])

    return body


def _insert(tuned: bool, Event: Any, atomic: Callable[[], Any], nxt: Callable[[], list[dict[str, Any]]]
            ) -> Callable[[], Any]:
    def body() -> None:
        rows = nxt()
        with atomic():
            if tuned:
                Event.insert_many(rows).execute()
            else:
                Event.bulk_create([Event(**r) for r in rows])

    return body
