"""builder.*: can a query builder say it in this engine's dialect, and does what it says run?

The builders are pypika (``pypika+<dbapi>``) and SQLAlchemy Core (``sa-core+<dbapi>``). Per feature the case
builds the statement with the builder's own API for the cell's dialect (pypika's query class for the kind,
SQLAlchemy compiled against the session's live dialect), runs the SQL text through the cell's session and runs a
hand-written reference statement for the engine on the same rows. Both builders' SQL is rendered with literal
values (pypika always does; SQLAlchemy with ``literal_binds``), so the cell shows exactly the text that ran.

* the builder refuses (raises, or has no API for it): ``unsupported`` with its own words (mechanism
  ``error:<exception class>``, ``error:NoAPI`` for a missing method);
* its SQL returns the reference's rows (values with types): ``supported``;
* its SQL is rejected, returns other rows, or drops a clause the engine itself refuses: ``differs``, both texts;
* both are rejected with one code (the engine lacks the feature): ``unsupported`` with that code.

Locking features hold row 1 in a second session first; SKIP LOCKED must return the other rows, NOWAIT must fail
at once (well inside the short lock wait) with the reference's code. Default drivers: one DBAPI per engine.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from rowcheck import insert_rows, row_difference

from dbmatrix.casekit import axes
from dbmatrix.cell import Cell, show
from dbmatrix.drivers.base import Session
from dbmatrix.errors import DriverError

DEFAULT_DRIVERS = ("pypika+psycopg", "pypika+pymysql", "pypika+sqlite3", "sa-core+psycopg", "sa-core+pymysql",
                   "sa-core+sqlite3")
ROWS = [  # id, g, v, name, doc, parent
    (1, 1, 10, "a", '{"tag": "x", "a": {"b": "one"}}', None),
    (2, 1, 20, "b", '{"tag": "y", "a": {"b": "two"}}', 1),
    (3, 2, 30, "c", '{"tag": "x", "a": {"b": "three"}}', 2),
    (4, 2, 40, "d", '{"tag": "x"}', 1),
    (5, 1, 50, "e", '{"tag": "y"}', 3),  # a third row in group 1: a frame of 1 PRECEDING differs from the default
]
JSON_DDL = {"postgresql": "JSONB", "cockroachdb": "JSONB", "mysql": "JSON", "sqlite": "TEXT"}
LOCKING = ("skip_locked", "nowait")
LOCK_WAIT_S = 2  # the waiting session's bound: a dropped SKIP LOCKED / NOWAIT waits this long, then fails
LOCK_WAIT = {"postgresql": f"SET LOCAL lock_timeout = '{LOCK_WAIT_S}s'",
             "mysql": f"SET SESSION innodb_lock_wait_timeout = {LOCK_WAIT_S}"}


class Refused(Exception):
    """The builder cannot say it: ``cls`` is its exception class (``NoAPI`` when it has no method for it)."""

    def __init__(self, cls: str, text: str):
        super().__init__(text)
        self.cls = cls


def need(obj: Any, method: str) -> Callable[..., Any]:
    """``obj.method``, or Refused when the builder's class has no such method (pypika answers any unknown
    attribute with a column, so ``hasattr`` cannot tell)."""
    if getattr(type(obj), method, None) is None:
        raise Refused("NoAPI", f"{type(obj).__module__}.{type(obj).__qualname__} has no {method}()")
    return getattr(obj, method)


# --- the statements, per builder -------------------------------------------------------------------------------
def _pk(cell: Cell, t: str) -> dict[str, Any]:
    from pypika import Table

    return {"q": cell.driver.query_class(cell.kind), "t": Table(t)}


def pk_returning(q: Any, t: Any) -> Any:
    return need(q.into(t).columns("id", "g", "v", "name").insert(10, 3, 50, "e"), "returning")(t.id, t.name)


def pk_upsert(q: Any, t: Any) -> Any:
    ins = q.into(t).columns("id", "g", "v", "name").insert(1, 1, 99, "a")
    if hasattr(type(ins), "on_duplicate_key_update"):
        from pypika.terms import Values

        return ins.on_duplicate_key_update(t.v, Values(t.v))
    return need(need(ins, "on_conflict")(t.id), "do_update")(t.v)


def pk_lock(q: Any, t: Any, **how: bool) -> Any:
    sel = q.from_(t).select(t.id).where(t.g.isin([1, 2])).orderby(t.id)
    try:
        return sel.for_update(**how)
    except TypeError as exc:  # the base dialect's for_update() takes no options
        raise Refused("TypeError", str(exc)) from None


def pk_window(q: Any, t: Any) -> Any:
    from pypika import analytics as an

    run = an.Sum(t.v).over(t.g).orderby(t.id).rows(an.Preceding(1), an.CURRENT_ROW)
    return q.from_(t).select(t.id, run.as_("s")).orderby(t.id)


def pk_recursive(q: Any, t: Any) -> Any:
    from pypika import AliasedQuery

    # pypika's with_() has no RECURSIVE flag: the self-referencing CTE as its users compose it
    r = AliasedQuery("r")
    base = q.from_(t).select(t.id, t.parent).where(t.parent.isnull())
    step = q.from_(t).join(r).on(t.parent == r.id).select(t.id, t.parent)
    return q.with_(base.union_all(step), "r").from_(r).select(r.id).orderby(r.id)


def pk_json(q: Any, t: Any) -> Any:
    return (q.from_(t).select(t.id, t.doc.get_path_text_value("{a,b}"))
            .where(t.doc.get_text_value("tag") == "x").orderby(t.id))


def pk_limit(q: Any, t: Any) -> Any:
    return q.from_(t).select(t.id, t.name).orderby(t.id).limit(2).offset(1)


def pk_values(q: Any, t: Any) -> Any:
    return q.into(t).columns("id", "g", "v", "name").insert((20, 5, 1, "p"), (21, 5, 2, "q"))


def pk_distinct_on(q: Any, t: Any) -> Any:
    from pypika import Order

    sel = q.from_(t)
    return need(sel, "distinct_on")(t.g).select(t.g, t.id).orderby(t.g).orderby(t.id, order=Order.desc)


def _sa(cell: Cell, t: str) -> dict[str, Any]:
    from sqlalchemy import JSON, Column, Integer, MetaData, String, Table

    table = Table(t, MetaData(), Column("id", Integer, primary_key=True), Column("g", Integer),
                  Column("v", Integer), Column("name", String(20)), Column("doc", JSON), Column("parent", Integer))
    return {"t": table}


def sa_returning(t: Any) -> Any:
    from sqlalchemy import insert

    return insert(t).values(id=10, g=3, v=50, name="e").returning(t.c.id, t.c.name)


def sa_upsert(t: Any, dialect: str) -> Any:
    import importlib

    # the dialect's own insert() construct; CockroachDB's dialect builds on PostgreSQL's
    module = {"cockroachdb": "postgresql"}.get(dialect, dialect)
    ins = importlib.import_module(f"sqlalchemy.dialects.{module}").insert(t).values(id=1, g=1, v=99, name="a")
    if hasattr(ins, "on_duplicate_key_update"):
        return ins.on_duplicate_key_update(v=ins.inserted.v)
    return ins.on_conflict_do_update(index_elements=[t.c.id], set_={"v": ins.excluded.v})


def sa_lock(t: Any, **how: bool) -> Any:
    from sqlalchemy import select

    return select(t.c.id).where(t.c.g.in_([1, 2])).order_by(t.c.id).with_for_update(**how)


def sa_window(t: Any) -> Any:
    from sqlalchemy import func, select

    run = func.sum(t.c.v).over(partition_by=t.c.g, order_by=t.c.id, rows=(-1, 0))
    return select(t.c.id, run.label("s")).order_by(t.c.id)


def sa_recursive(t: Any) -> Any:
    from sqlalchemy import select

    r = select(t.c.id, t.c.parent).where(t.c.parent.is_(None)).cte("r", recursive=True)
    r = r.union_all(select(t.c.id, t.c.parent).join(r, t.c.parent == r.c.id))
    return select(r.c.id).order_by(r.c.id)


def sa_json(t: Any) -> Any:
    from sqlalchemy import select

    return (select(t.c.id, t.c.doc[("a", "b")].as_string()).where(t.c.doc["tag"].as_string() == "x")
            .order_by(t.c.id))


def sa_limit(t: Any) -> Any:
    from sqlalchemy import select

    return select(t.c.id, t.c.name).order_by(t.c.id).limit(2).offset(1)


def sa_values(t: Any) -> Any:
    from sqlalchemy import insert

    return insert(t).values([{"id": 20, "g": 5, "v": 1, "name": "p"}, {"id": 21, "g": 5, "v": 2, "name": "q"}])


def sa_distinct_on(t: Any) -> Any:
    from sqlalchemy import select
    from sqlalchemy.dialects.postgresql import distinct_on  # SQLAlchemy's DISTINCT ON construct

    return select(t.c.g, t.c.id).ext(distinct_on(t.c.g)).order_by(t.c.g, t.c.id.desc())


# feature -> (pypika builder, SQLAlchemy builder, {engine or kind or "*": reference SQL with {t}}, writes)
STD_LOCK = "SELECT id FROM {t} WHERE g IN (1, 2) ORDER BY id FOR UPDATE"
INSERT_1 = "INSERT INTO {t} (id, g, v, name) VALUES (1, 1, 99, 'a')"
JSON_REF = {
    "*": "SELECT id, doc->'a'->>'b' FROM {t} WHERE doc->>'tag' = 'x' ORDER BY id",
    "mysql": "SELECT id, JSON_UNQUOTE(JSON_EXTRACT(doc, '$.a.b')) FROM {t} "
             "WHERE JSON_UNQUOTE(JSON_EXTRACT(doc, '$.tag')) = 'x' ORDER BY id",
    "sqlite": "SELECT id, json_extract(doc, '$.a.b') FROM {t} WHERE json_extract(doc, '$.tag') = 'x' ORDER BY id",
}
# an engine without DISTINCT ON: the first row per group by ROW_NUMBER(), what its users write instead
DISTINCT_ON_REF = {"postgresql": "SELECT DISTINCT ON (g) g, id FROM {t} ORDER BY g, id DESC",
                   "*": "SELECT g, id FROM (SELECT g, id, ROW_NUMBER() OVER (PARTITION BY g ORDER BY id DESC) AS n "
                        "FROM {t}) x WHERE n = 1 ORDER BY g"}
RECURSIVE_REF = ("WITH RECURSIVE r (id, parent) AS (SELECT id, parent FROM {t} WHERE parent IS NULL UNION ALL "
                 "SELECT c.id, c.parent FROM {t} c JOIN r ON c.parent = r.id) SELECT id FROM r ORDER BY id")
WINDOW_REF = ("SELECT id, SUM(v) OVER (PARTITION BY g ORDER BY id ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS s "
              "FROM {t} ORDER BY id")
FEATURES: dict[str, tuple[Callable[..., Any], Callable[..., Any], dict[str, str], bool]] = {
    "returning": (pk_returning, sa_returning,
                  {"*": "INSERT INTO {t} (id, g, v, name) VALUES (10, 3, 50, 'e') RETURNING id, name"}, True),
    "upsert": (pk_upsert, sa_upsert, {"*": INSERT_1 + " ON CONFLICT (id) DO UPDATE SET v = excluded.v",
                                      "mysql": INSERT_1 + " ON DUPLICATE KEY UPDATE v = VALUES(v)"}, True),
    "skip_locked": (lambda q, t: pk_lock(q, t, skip_locked=True), lambda t: sa_lock(t, skip_locked=True),
                    {"*": STD_LOCK + " SKIP LOCKED"}, False),
    "nowait": (lambda q, t: pk_lock(q, t, nowait=True), lambda t: sa_lock(t, nowait=True),
               {"*": STD_LOCK + " NOWAIT"}, False),
    "window_frame": (pk_window, sa_window, {"*": WINDOW_REF}, False),
    "recursive_cte": (pk_recursive, sa_recursive, {"*": RECURSIVE_REF}, False),
    "json_path": (pk_json, sa_json, JSON_REF, False),
    "limit_offset": (pk_limit, sa_limit, {"*": "SELECT id, name FROM {t} ORDER BY id LIMIT 2 OFFSET 1"}, False),
    "multirow_values": (pk_values, sa_values,
                        {"*": "INSERT INTO {t} (id, g, v, name) VALUES (20, 5, 1, 'p'), (21, 5, 2, 'q')"}, True),
    "distinct_on": (pk_distinct_on, sa_distinct_on, DISTINCT_ON_REF, False),
}


def build(cell: Cell, s: Session, feature: str, t: str) -> str:
    """The builder's SQL text for ``feature`` in the cell's dialect; Refused when it cannot say it."""
    pk, sa, _, _ = FEATURES[feature]
    if cell.driver.layer == "pypika":
        from pypika.utils import QueryException

        try:
            return str(pk(**_pk(cell, t)))
        except QueryException as exc:
            raise Refused(type(exc).__name__, str(exc)) from None
    from sqlalchemy.exc import CompileError

    dialect = s.engine.dialect  # type: ignore[attr-defined]  # the live one: server version, MariaDB or MySQL
    stmt = sa(**_sa(cell, t), **({"dialect": dialect.name} if sa is sa_upsert else {}))
    try:
        return str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    except CompileError as exc:  # UnsupportedCompilationError is one
        text = str(exc).split(" (Background on this error")[0]
        raise Refused(type(exc).__name__, re.sub(r" object at 0x[0-9a-f]+", "", text)) from None


def reference(cell: Cell, feature: str, t: str) -> str:
    by = FEATURES[feature][2]
    return (by.get(cell.engine) or by.get(cell.kind) or by["*"]).format(t=t)


def run(cell: Cell, s: Session, sql: str, writes: bool, t: str, locking: bool) -> tuple[list[Any], float]:
    """The statement's rows (and the table after it, for a write: rolled back after), and its seconds."""
    if writes:
        s.begin()
    elif locking and cell.has("for_update"):  # a locking read: in a transaction, with a short lock wait
        s.begin()
        s.execute(LOCK_WAIT.get(cell.kind, "SELECT 1"))
    started = time.perf_counter()
    try:
        rows = s.execute(sql).rows
        if writes:
            rows = [*rows, *s.execute(f"SELECT id, g, v, name FROM {t} ORDER BY id").rows]
        return rows, time.perf_counter() - started
    finally:
        if s.in_transaction:
            s.rollback()


def outcome_of(cell: Cell, s: Session, feature: str, t: str) -> None:
    try:
        sql = build(cell, s, feature, t)
    except Refused as exc:
        ref = reference(cell, feature, t)
        cell.unsupported(f"{cell.driver.layer} cannot say {feature} here: {exc.cls}: {exc}; builder SQL: none; "
                         f"reference SQL: {ref!r}", mechanism=f"error:{exc.cls}",
                         findings=[{"builder_sql": None, "refusal": str(exc), "reference_sql": ref}])
        return
    ref = reference(cell, feature, t)
    writes = FEATURES[feature][3]
    results: list[tuple[list[Any] | None, DriverError | None, float]] = []
    for text in (sql, ref):
        started = time.perf_counter()
        try:
            rows, took = run(cell, s, text, writes, t, feature in LOCKING)
            results.append((rows, None, took))
        except DriverError as exc:
            results.append((None, exc, time.perf_counter() - started))
    (got, got_err, got_s), (want, want_err, _) = results
    findings = [{"builder_sql": sql, "reference_sql": ref}]
    shown = f"builder SQL: {sql!r}; reference SQL: {ref!r}"
    if writes:
        shown += " (rows: those the statement returned, then the table after it)"
    if got_err is None and want_err is None:
        diff = row_difference(got, want)  # type: ignore[arg-type]
        if diff is None:
            cell.supported(f"{shown}; both return {len(want)} rows: {show(want)}", findings=findings)  # type: ignore[arg-type]
        else:
            cell.differs(f"{shown}; rows differ: {diff}", findings=findings)
    elif got_err is not None and want_err is not None:
        if got_err.code == want_err.code and (feature != "nowait" or got_s < LOCK_WAIT_S / 2):
            if feature == "nowait":
                cell.supported(f"{shown}; both fail at once on the locked row with {want_err.code} "
                               f"(builder's in {got_s:.2f} s)", findings=findings)
            else:
                cell.unsupported(want_err, findings=findings)
        else:
            cell.differs(f"{shown}; builder's SQL failed after {got_s:.2f} s: {got_err.code} {got_err.message}; "
                         f"reference: {want_err.code} {want_err.message}", findings=findings,
                         mechanism=f"error:{got_err.code or got_err.cls}")
    elif got_err is not None:
        cell.differs(f"{shown}; the engine rejects the builder's SQL: {got_err.code} {got_err.message}; "
                     f"the reference returns {show(want)}", findings=findings,
                     mechanism=f"error:{got_err.code or got_err.cls}")
    else:
        cell.differs(f"{shown}; the builder's SQL runs (returns {show(got)}) but the engine refuses the feature "
                     f"itself: {want_err.code} {want_err.message}: the builder dropped or rewrote it",  # type: ignore[union-attr]
                     findings=findings)


def judge(cell: Cell, feature: str) -> None:
    """The builder's statement for ``feature`` against the engine's reference, on the family's rows."""
    if cell.driver.layer not in ("pypika", "sa-core"):
        cell.unsupported(f"{cell.driver_id} is not a query builder (builder.* runs over pypika and sa-core)",
                         mechanism="error:NotABuilder")
        return
    s = cell.connect()
    t = cell.table("bld")
    s.execute(f"CREATE TABLE {t} (id INTEGER PRIMARY KEY, g INTEGER, v INTEGER, name VARCHAR(20), "
              f"doc {JSON_DDL[cell.kind]}, parent INTEGER)")
    insert_rows(s, t, ("id", "g", "v", "name", "doc", "parent"), ROWS)
    if feature in LOCKING and cell.has("for_update"):
        holder = cell.connect()  # holds row 1 while the builder's and the reference's statements run
        holder.begin()
        holder.execute(f"SELECT id FROM {t} WHERE id = 1 FOR UPDATE")
        try:
            outcome_of(cell, s, feature, t)
        finally:
            holder.rollback()
        return
    outcome_of(cell, s, feature, t)


builder_case = axes("target", "driver", drivers=DEFAULT_DRIVERS)


@builder_case
def test_returning(cell: Cell) -> None:
    """INSERT ... RETURNING id, name."""
    judge(cell, "returning")


@builder_case
def test_upsert(cell: Cell) -> None:
    """Insert-or-update of a conflicting key: ON CONFLICT (id) DO UPDATE / ON DUPLICATE KEY UPDATE."""
    judge(cell, "upsert")


@builder_case
def test_skip_locked(cell: Cell) -> None:
    """SELECT ... FOR UPDATE SKIP LOCKED while another session holds row 1."""
    judge(cell, "skip_locked")


@builder_case
def test_nowait(cell: Cell) -> None:
    """SELECT ... FOR UPDATE NOWAIT while another session holds row 1: fails at once."""
    judge(cell, "nowait")


@builder_case
def test_window_frame(cell: Cell) -> None:
    """SUM(v) OVER (PARTITION BY g ORDER BY id ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)."""
    judge(cell, "window_frame")


@builder_case
def test_recursive_cte(cell: Cell) -> None:
    """WITH RECURSIVE over the parent column."""
    judge(cell, "recursive_cte")


@builder_case
def test_json_path(cell: Cell) -> None:
    """A nested JSON path extracted as text, filtered on another key."""
    judge(cell, "json_path")


@builder_case
def test_limit_offset(cell: Cell) -> None:
    """LIMIT 2 OFFSET 1."""
    judge(cell, "limit_offset")


@builder_case
def test_multirow_values(cell: Cell) -> None:
    """One INSERT with two rows of VALUES."""
    judge(cell, "multirow_values")


@builder_case
def test_distinct_on(cell: Cell) -> None:
    """The first row per group: DISTINCT ON (g), or ROW_NUMBER() where the engine has no DISTINCT ON."""
    judge(cell, "distinct_on")
