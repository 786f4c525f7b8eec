"""One benchmark operation per (driver, workload, variant): the driver's own calls, ready to loop.

An ``Op`` is built once per connection, outside the timed window, from an open adapter ``Session``: statements are
translated, parameters prepared and cycled, so a call does nothing but the driver's (or layer's) work. For async
drivers ``call()`` returns an awaitable, and the whole timed loop runs as one coroutine on the session's own event
loop (one hop per repeat, not per call).

Each variant names its knobs; ``variants(driver_id, workload)`` lists them without connecting, so the runner
knows the cells up front. ``default`` is what a user gets without tuning; ``tuned`` exists only where the layer
has a knob that matters for that workload (the "how to avoid the trap" column).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..drivers.base import Session

DEFAULT, TUNED = "default", "tuned"
SELECTS = ("pk_select", "range_select", "json_select")


@dataclass
class Op:
    call: Callable[[], Any]  # one operation; for async drivers it returns an awaitable
    is_async: bool
    recover: Callable[[], Any] | None = None  # after a failed call (e.g. ROLLBACK); awaitable for async drivers
    extra: dict[str, Any] = field(default_factory=dict)


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


def layer_of(driver_id: str) -> str:
    return driver_id.partition("+")[0] if "+" in driver_id else "dbapi"


def variants(driver_id: str, workload: str) -> dict[str, dict[str, str]]:
    """``{variant: knobs}`` for ``driver_id`` on ``workload``: always ``default``, ``tuned`` where a knob exists."""
    layer = layer_of(driver_id)
    if layer in _SA_KNOBS:
        default, tuned = _SA_KNOBS[layer][workload]
        out = {DEFAULT: dict(default)}
        if tuned is not None:
            out[TUNED] = dict(tuned)
        return out
    out = {DEFAULT: {**_DRIVER_DEFAULT.get(driver_id, {}), **_DBAPI_DEFAULT.get(workload, {})}}
    tuned_knobs = _DBAPI_TUNED.get(driver_id, {}).get(workload)
    if tuned_knobs is not None:
        out[TUNED] = dict(tuned_knobs)
    return out


def build_op(session: Session, driver_id: str, workload: str, variant: str, rows: int, seed: int) -> Op:
    """The operation for one connection; ``seed`` differs per worker so workers touch different rows."""
    layer = layer_of(driver_id)
    if layer != "dbapi":
        from .ops_sqlalchemy import build_sqlalchemy_op

        return build_sqlalchemy_op(session, workload, variant, rows, seed)
    from .ops_dbapi import build_dbapi_op

    return build_dbapi_op(session, driver_id, workload, variant, rows, seed)
