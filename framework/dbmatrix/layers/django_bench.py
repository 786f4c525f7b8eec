"""Benchmark operations through the Django ORM (``django+<dbapi>``), over the bench schema (``bench/schema.py``)
declared again as unmanaged Django models.

Defaults are what Django's tutorial writes (model instances from ``objects.get``/``filter``, ``save()``,
``objects.create``, ``bulk_create`` for a batch); tuned variants use the ways out its "Database access optimization"
page documents: ``values_list()`` (tuples, no model instances), ``only()`` plus ``save(update_fields=...)``. Django
builds and compiles the SQL of a queryset on every call in both variants (it has no statement cache). Write workloads
run in ``transaction.atomic()``; on SQLite with ``OPTIONS['transaction_mode'] = 'IMMEDIATE'`` (Django 5.1+), since a
deferred read-then-write transaction fails with SQLITE_BUSY under concurrency and Django ignores
``select_for_update()`` there.

The bench calls an operation on its own thread, not the session's owner: the session's wrapper is bound as that
thread's ``connections['default']`` too (it allows thread sharing; the worker uses it from one thread at a time).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from ..bench.op import DEFAULT, SELECTS, TUNED, Op
from ..bench.schema import EVENTS, USERS
from ..bench.workloads import call_params, insert_batches
from ..drivers.base import DriverAdapter, Session
from .sqlite_adapters import SQLITE_ADAPTERS

_KNOBS: dict[str, tuple[dict[str, str], dict[str, str] | None]] = {
    "pk_select": ({"query": "User.objects.get(pk=id) (a model instance)"},
                  {"query": "User.objects.values_list('id', 'name', 'email').get(pk=id)"}),
    "range_select": ({"query": "User.objects.filter(id__range=(lo, hi)) (model instances)"},
                     {"query": "User.objects.filter(id__range=(lo, hi)).values_list('id', 'name', 'email', "
                               "'score')"}),
    "json_select": ({"query": "User.objects.filter(id__range=(lo, hi), doc__tag=tag) (model instances)"},
                    {"query": "User.objects.filter(...).values_list('doc', flat=True)"}),
    "update_txn": ({"read": "User.objects.select_for_update().get(pk=id)", "write": "user.save(), "
                    "Event.objects.create(...)", "transaction": "transaction.atomic() (SQLite: transaction_mode "
                    "IMMEDIATE; select_for_update is ignored there)"},
                   {"read": "User.objects.select_for_update().only('id', 'score').get(pk=id)",
                    "write": "user.save(update_fields=['score']), Event.objects.create(...)",
                    "transaction": "transaction.atomic() (SQLite: transaction_mode IMMEDIATE)"}),
    # Django has no insert without model instances: bulk_create is both the default and the way out
    "insert_batch": ({"method": "Event.objects.bulk_create(objects) in transaction.atomic()"}, None),
}


def variants(adapter: DriverAdapter, workload: str) -> dict[str, dict[str, str]]:
    default, tuned = _KNOBS[workload]
    return {DEFAULT: dict(default), **({TUNED: dict(tuned)} if tuned is not None else {})}


def _models() -> tuple[Any, Any]:
    from django.apps.registry import Apps
    from django.db import models

    registry = Apps(installed_apps=())

    def meta(table: str) -> type:
        return type("Meta", (), {"apps": registry, "app_label": "dbmatrix_bench", "db_table": table,
                                 "managed": False})

    User = type("User", (models.Model,), {
        "__module__": __name__, "Meta": meta(USERS), "id": models.IntegerField(primary_key=True),
        "name": models.CharField(max_length=64), "email": models.CharField(max_length=128),
        "score": models.IntegerField(), "doc": models.JSONField()})
    Event = type("Event", (models.Model,), {
        "__module__": __name__, "Meta": meta(EVENTS), "id": models.BigAutoField(primary_key=True),
        "user_id": models.IntegerField(), "payload": models.CharField(max_length=200)})
    return User, Event


def build_op(session: Session, workload: str, variant: str, rows: int, seed: int) -> Op:
    from django.db import transaction

    wrapper = session.django  # type: ignore[attr-defined]
    wrapper.bind()  # this (the bench's) thread's connections['default']
    sqlite = session.info.kind == "sqlite"
    if sqlite:
        _hold_while_open(session)
        if workload in ("update_txn", "insert_batch"):
            wrapper.reconnect(OPTIONS={"transaction_mode": "IMMEDIATE"})
    User, Event = _models()
    tuned = variant == TUNED
    params = call_params(workload, rows, seed) if workload != "insert_batch" else None
    nxt = itertools.cycle(params or insert_batches(rows, seed)).__next__
    if workload in SELECTS:
        body = _select(workload, tuned, User, nxt)
    elif workload == "update_txn":
        body = _update(tuned, User, Event, transaction.atomic, nxt)
    elif workload == "insert_batch":
        body = _insert(Event, transaction.atomic, nxt)
    else:
        raise KeyError(workload)
    return Op(body, False)


def _hold_while_open(session: Session) -> None:
    """Django's sqlite3 adapters and converters in effect until the session closes: a bench worker serves this one
    session, as a Django process has them, so its cursors' own holds only count (no registry update per call)."""
    SQLITE_ADAPTERS.hold()
    close = session.close
    released: list[bool] = []

    def close_and_release() -> None:
        try:
            close()
        finally:
            if not released:
                released.append(True)
                SQLITE_ADAPTERS.release()

    session.close = close_and_release  # type: ignore[method-assign]


def _select(workload: str, tuned: bool, User: Any, nxt: Callable[[], dict[str, Any]]) -> Callable[[], Any]:
    objects = User.objects
    if workload == "pk_select":
        if tuned:
            return lambda: objects.values_list("id", "name", "email").get(pk=nxt()["id"])
        return lambda: objects.get(pk=nxt()["id"])

    def rows() -> Any:
        p = nxt()
        if workload == "json_select":
            return objects.filter(id__range=(p["lo"], p["hi"]), doc__tag=p["tag"])
        return objects.filter(id__range=(p["lo"], p["hi"]))

    if not tuned:
        return lambda: list(rows())
    if workload == "json_select":
        return lambda: list(rows().values_list("doc", flat=True))
    return lambda: list(rows().values_list("id", "name", "email", "score"))


def _update(tuned: bool, User: Any, Event: Any, atomic: Callable[[], Any], nxt: Callable[[], dict[str, Any]]
            ) -> Callable[[], Any]:
    def body() -> None:
        p = nxt()
        with atomic():
            query = User.objects.select_for_update()
            user = (query.only("id", "score") if tuned else query).get(pk=p["id"])
            user.score += 1
            user.save(update_fields=["score"]) if tuned else user.save()
            Event.objects.create(user_id=p["id"], payload=p["payload"])

    return body


def _insert(Event: Any, atomic: Callable[[], Any], nxt: Callable[[], list[dict[str, Any]]]) -> Callable[[], Any]:
    def body() -> None:
        rows = nxt()
        with atomic():
            Event.objects.bulk_create([Event(**r) for r in rows])

    return body
