"""Benchmark operations through Tortoise ORM (``tortoise+<dbapi>``), over the bench schema (``bench/schema.py``)
declared again as Tortoise models in a ``TortoiseContext`` of the session's own.

Defaults are what Tortoise's tutorial writes (model objects: ``Model.get``, ``filter``, ``save()``,
``bulk_create``); tuned variants use its documented ways out of model objects: ``.values_list()`` / ``.values()``
(tuples / dicts, no model instances) and ``save(update_fields=...)``. Tortoise has no bulk insert without model
objects, so ``insert_batch`` has a default only. Write workloads run in ``in_transaction(<connection>)``; on
SQLite Tortoise drops ``select_for_update()`` and has no way to ask for an IMMEDIATE transaction, so a deferred
read-then-write can fail with SQLITE_BUSY under concurrency (counted as errors, as an application would see them).
Tortoise has no JSON key lookup on SQLite: no ``json_select`` there.
"""

from __future__ import annotations

import itertools
import sys
import types
import uuid
from collections.abc import Callable
from typing import Any

from ..bench.op import DEFAULT, SELECTS, TUNED, Op
from ..bench.schema import EVENTS, USERS
from ..bench.workloads import call_params, insert_batches
from ..drivers.base import DriverAdapter, Session
from .tortoise_layer import TORTOISE_ADAPTERS

_KNOBS: dict[str, tuple[dict[str, str], dict[str, str] | None]] = {
    "pk_select": ({"query": "User.get(id=id) (a model object)"},
                  {"query": "User.filter(id=id).values_list('id', 'name', 'email')"}),
    "range_select": ({"query": "User.filter(id__gte=lo, id__lte=hi) (model objects)"},
                     {"query": "User.filter(...).values_list('id', 'name', 'email', 'score')"}),
    "json_select": ({"query": "User.filter(id__gte=lo, id__lte=hi, doc__filter={'tag': tag}) (model objects)"},
                    {"query": "User.filter(...).values('doc') (dicts)"}),
    "update_txn": ({"read": "User.filter(id=id).select_for_update().get() (dropped on SQLite)",
                    "write": "user.save(), Event.create(...)", "transaction": "in_transaction()"},
                   {"read": "User.filter(id=id).select_for_update().get() (dropped on SQLite)",
                    "write": "user.save(update_fields=['score']), Event.create(...)",
                    "transaction": "in_transaction()"}),
    "insert_batch": ({"method": "Event.bulk_create(objects) (one INSERT through the driver's executemany)"}, None),
}


def variants(adapter: DriverAdapter, workload: str) -> dict[str, dict[str, str]]:
    if workload == "json_select" and adapter.dbapi == "aiosqlite":
        return {}  # Tortoise's SQLite executor has no JSON __filter
    default, tuned = _KNOBS[workload]
    return {DEFAULT: dict(default), **({TUNED: dict(tuned)} if tuned is not None else {})}


def _models() -> types.ModuleType:
    from tortoise import fields, models

    class User(models.Model):
        id = fields.IntField(primary_key=True, generated=False)
        name = fields.CharField(max_length=64)
        email = fields.CharField(max_length=128)
        score = fields.IntField()
        doc = fields.JSONField()

        class Meta:
            table = USERS

    class Event(models.Model):
        id = fields.BigIntField(primary_key=True)
        user_id = fields.IntField()
        payload = fields.CharField(max_length=200)

        class Meta:
            table = EVENTS

    module = types.ModuleType(f"dbm_tortoise_bench_{uuid.uuid4().hex[:8]}")
    for model in (User, Event):
        model.__module__ = module.__name__
        setattr(module, model.__name__, model)
    sys.modules[module.__name__] = module  # Tortoise's app config names model modules
    return module


def build_op(session: Session, workload: str, variant: str, rows: int, seed: int) -> Op:
    from tortoise.context import TortoiseContext, _current_context
    from tortoise.transactions import in_transaction

    module, ctx = _models(), TortoiseContext()
    alias = session.adapter.tortoise_alias(session)  # type: ignore[attr-defined]
    config = session.adapter.tortoise_config(session, module.__name__)  # type: ignore[attr-defined]

    async def init() -> None:
        with ctx:  # Tortoise resolves connections through the active context, also while it initialises
            await ctx.init(config=config)

    session._do(init)
    User, Event = module.User, module.Event
    tuned = variant == TUNED
    params = call_params(workload, rows, seed) if workload != "insert_batch" else None
    nxt = itertools.cycle(params or insert_batches(rows, seed)).__next__
    if workload in SELECTS:
        body = _select(workload, tuned, User, nxt)
    elif workload == "update_txn":
        body = _update(tuned, User, Event, lambda: in_transaction(alias), nxt)
    elif workload == "insert_batch":
        body = _insert(Event, nxt)
    else:
        raise KeyError(workload)

    async def call() -> Any:
        token = _current_context.set(ctx)  # as a request handler runs inside the application's context
        try:
            return await body()
        finally:
            _current_context.reset(token)

    # on SQLite, Tortoise's sqlite3 adapters bind this call's values only (as Peewee's per statement)
    return Op(TORTOISE_ADAPTERS.held_async(call) if session.info.kind == "sqlite" else call, True)


def _select(workload: str, tuned: bool, User: Any, nxt: Callable[[], dict[str, Any]]) -> Callable[[], Any]:
    def query(p: dict[str, Any]) -> Any:
        if workload == "pk_select":
            return User.filter(id=p["id"])
        extra = {"doc__filter": {"tag": p["tag"]}} if workload == "json_select" else {}
        return User.filter(id__gte=p["lo"], id__lte=p["hi"], **extra)

    if not tuned:
        if workload == "pk_select":
            return lambda: User.get(id=nxt()["id"])
        return lambda: query(nxt())
    if workload == "json_select":
        return lambda: query(nxt()).values("doc")
    columns = ("id", "name", "email") if workload == "pk_select" else ("id", "name", "email", "score")
    return lambda: query(nxt()).values_list(*columns)


def _update(tuned: bool, User: Any, Event: Any, transaction: Callable[[], Any],
            nxt: Callable[[], dict[str, Any]]) -> Callable[[], Any]:
    async def body() -> None:
        p = nxt()
        async with transaction():
            user = await User.filter(id=p["id"]).select_for_update().get()
            user.score += 1
            await (user.save(update_fields=["score"]) if tuned else user.save())
            await Event.create(user_id=p["id"], payload=p["payload"])

    return body


def _insert(Event: Any, nxt: Callable[[], list[dict[str, Any]]]) -> Callable[[], Any]:
    return lambda: Event.bulk_create([Event(**r) for r in nxt()])
