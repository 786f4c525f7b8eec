"""Benchmark operations through SQLAlchemy Core (``sa-core+X``) and the ORM (``sa-orm+X``).

Each operation is one plain synchronous body over a ``Connection`` (Core) or ORM ``Session``. Async engines run
the same body with ``run_sync``: SQLAlchemy's asyncio layer is itself its sync code driven in a greenlet (each
``await session.execute`` is one ``greenlet_spawn`` of the sync call), so a single-statement body costs what the
``await`` form costs; a multi-statement transaction body saves the few extra greenlet switches of awaiting each
statement (noted in the report's knobs).

Defaults are what the tutorials write (statements built per call, ORM entities, autoflush on); tuned variants use
the documented ways out (statements built once with ``bindparam``, ``Session.get``, column loads, bulk INSERT).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from sqlalchemy import bindparam, insert, select, update

from ..drivers.base import DriverAdapter, Session
from .op import DEFAULT, SELECTS, TUNED, Op
from .schema import Event, User, events, users
from .workloads import call_params, insert_batches

Body = Callable[[Any], Any]


_CORE_BUILT_ONCE = {"statement": "built once with bindparam (compiled cache hit, no construction per call)"}
_SA_KNOBS: dict[str, dict[str, tuple[dict[str, str], dict[str, str] | None]]] = {
    "sa-core": {
        **{w: ({"statement": "built per call"}, _CORE_BUILT_ONCE) for w in SELECTS},
        "update_txn": ({"statement": "built per call, conn.begin()"}, _CORE_BUILT_ONCE),
        "insert_batch": ({"method": "conn.execute(insert(table), rows): SQLAlchemy's executemany"}, None),
    },
    "sa-orm": {
        "pk_select": ({"query": "select(User).where(User.id == id) per call", "autoflush": "True"},
                      {"query": "Session.get(User, id)", "autoflush": "False"}),
        "range_select": ({"query": "select(User) entities per call", "autoflush": "True"},
                         {"query": "select(User.id, User.name, User.email, User.score) built once (rows, no entities)",
                          "autoflush": "False"}),
        "json_select": ({"query": "select(User) entities per call", "autoflush": "True"},
                        {"query": "select(User.doc) built once (no entities)", "autoflush": "False"}),
        "update_txn": ({"read": "Session.get(with_for_update=True)", "write": "attribute + Session.add(Event), flush at"
                        " commit", "autoflush": "True", "expire_on_commit": "True"},
                       {"read": "Session.get(with_for_update=True)", "write": "attribute + ORM bulk insert(Event)",
                        "autoflush": "False", "expire_on_commit": "False"}),
        "insert_batch": ({"method": "Session.add_all(objects), commit (unit of work)"},
                         {"method": "Session.execute(insert(Event), rows) (ORM bulk INSERT, no objects)"}),
    },
}




def variants(adapter: DriverAdapter, workload: str) -> dict[str, dict[str, str]]:
    """``{variant: knobs}`` of the layer on ``workload``: ``default``, and ``tuned`` where a knob exists."""
    # a layer on SQLAlchemy's ORM (SQLModel) runs the ORM's operations through its own session class
    default, tuned = _SA_KNOBS["sa-orm" if adapter.uses_orm else "sa-core"][workload]  # type: ignore[attr-defined]
    out = {DEFAULT: dict(default)}
    if tuned is not None:
        out[TUNED] = dict(tuned)
    return out


def build_op(session: Session, workload: str, variant: str, rows: int, seed: int) -> Op:
    orm = session.adapter.uses_orm  # type: ignore[attr-defined]
    tuned = variant == TUNED
    params = call_params(workload, rows, seed) if workload != "insert_batch" else None
    nxt = itertools.cycle(params or insert_batches(rows, seed)).__next__
    if workload in SELECTS:
        body = (_orm_select if orm else _core_select)(workload, tuned, nxt)
    elif workload == "update_txn":
        body = (_orm_update if orm else _core_update)(tuned, nxt)
    elif workload == "insert_batch":
        body = (_orm_insert if orm else _core_insert)(tuned, nxt)
    else:
        raise KeyError(workload)
    writes = workload in ("update_txn", "insert_batch")
    if session.adapter.is_async:
        # the asyncio objects (``aconn``/``aorm``); ``conn``/``executor`` are their sync twins the greenlet drives
        if writes:
            session.run(session.aconn.run_sync(_transactional, session, tuned))  # type: ignore[attr-defined]
        run_sync = (session.aorm or session.aconn).run_sync  # type: ignore[attr-defined]
        return Op(lambda: run_sync(body), True)
    if writes:
        _transactional(session.conn, session, tuned)  # type: ignore[attr-defined]
    executor = session.executor  # type: ignore[attr-defined]
    return Op(lambda: body(executor), False)


def _transactional(conn: Any, session: Session, tuned: bool) -> None:
    """Leave AUTOCOMMIT for real transactions (SQLite: ``BEGIN IMMEDIATE``); tune the ORM session's flags."""
    adapter, kind = session.adapter, session.info.kind
    orm = getattr(session.orm, "sync_session", session.orm)  # type: ignore[attr-defined]
    if orm is not None and orm.in_transaction():
        orm.commit()  # the no-op transaction autobegun in AUTOCOMMIT mode
    if conn.in_transaction():
        conn.commit()
    conn.execution_options(**adapter.transaction_options(  # type: ignore[attr-defined]
        kind, "immediate" if kind == "sqlite" else None, conn.dialect))
    if orm is not None and tuned:
        orm.autoflush = False
        orm.expire_on_commit = False


# --- reads ---------------------------------------------------------------------------------------------------
def _where(workload: str, entity: Any, p: dict[str, Any] | None) -> list[Any]:
    """The WHERE clause of ``workload``: literal values from ``p`` (built per call) or bindparams (``p`` None)."""
    def v(name: str) -> Any:
        return bindparam(name) if p is None else p[name]

    if workload == "pk_select":
        return [entity.id == v("id")]
    clauses = [entity.id.between(v("lo"), v("hi"))]
    if workload == "json_select":
        clauses.append(entity.doc["tag"].as_string() == v("tag"))
    return clauses


def _columns(workload: str, entity: Any) -> list[Any]:
    return {"pk_select": [entity.id, entity.name, entity.email],
            "range_select": [entity.id, entity.name, entity.email, entity.score],
            "json_select": [entity.doc]}[workload]


def _core_select(workload: str, tuned: bool, nxt: Callable[[], dict[str, Any]]) -> Body:
    cols = _columns(workload, users.c)
    if tuned:
        stmt = select(*cols).where(*_where(workload, users.c, None))
        return lambda conn: conn.execute(stmt, nxt()).all()
    return lambda conn: conn.execute(select(*cols).where(*_where(workload, users.c, nxt()))).all()


def _orm_select(workload: str, tuned: bool, nxt: Callable[[], dict[str, Any]]) -> Body:
    if not tuned:
        return lambda s: s.execute(select(User).where(*_where(workload, User, nxt()))).scalars().all()
    if workload == "pk_select":
        return lambda s: s.get(User, nxt()["id"])
    stmt = select(*_columns(workload, User)).where(*_where(workload, User, None))
    return lambda s: s.execute(stmt, nxt()).all()


# --- writes --------------------------------------------------------------------------------------------------
def _core_update(tuned: bool, nxt: Callable[[], dict[str, Any]]) -> Body:
    sel = select(users.c.score).where(users.c.id == bindparam("id")).with_for_update()
    upd = update(users).where(users.c.id == bindparam("uid")).values(score=bindparam("new_score"))
    ins = insert(events)

    def built_once(conn: Any) -> None:
        p = nxt()
        with conn.begin():
            score = conn.execute(sel, {"id": p["id"]}).scalar_one()
            conn.execute(upd, {"uid": p["id"], "new_score": score + 1})
            conn.execute(ins, {"user_id": p["id"], "payload": p["payload"]})

    def per_call(conn: Any) -> None:
        p = nxt()
        with conn.begin():
            score = conn.execute(select(users.c.score).where(users.c.id == p["id"]).with_for_update()).scalar_one()
            conn.execute(update(users).where(users.c.id == p["id"]).values(score=score + 1))
            conn.execute(insert(events).values(user_id=p["id"], payload=p["payload"]))

    return built_once if tuned else per_call


def _orm_update(tuned: bool, nxt: Callable[[], dict[str, Any]]) -> Body:
    ins = insert(Event)

    def body(s: Any) -> None:
        p = nxt()
        with s.begin():
            user = s.get(User, p["id"], with_for_update=True)
            user.score = user.score + 1
            if tuned:
                s.execute(ins, [{"user_id": p["id"], "payload": p["payload"]}])
            else:
                s.add(Event(user_id=p["id"], payload=p["payload"]))

    return body


def _core_insert(tuned: bool, nxt: Callable[[], list[dict[str, Any]]]) -> Body:
    ins = insert(events)

    def body(conn: Any) -> None:
        with conn.begin():
            conn.execute(ins, nxt())

    return body


def _orm_insert(tuned: bool, nxt: Callable[[], list[dict[str, Any]]]) -> Body:
    ins = insert(Event)

    def body(s: Any) -> None:
        with s.begin():
            if tuned:
                s.execute(ins, nxt())
            else:
                s.add_all([Event(**r) for r in nxt()])

    return body
