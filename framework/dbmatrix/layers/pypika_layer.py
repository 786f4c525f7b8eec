"""pypika as a layer over a blocking DBAPI driver: ``pypika+<dbapi>``.

pypika builds SQL text and nothing else: values are rendered into the text as literals, and the user hands the
string to a DBAPI cursor. So the layer's session is the DBAPI adapter's own session (errors, cancel, notifications
are the adapter's), which also runs a pypika query object given instead of SQL text (rendered with ``get_sql()``).
Text a case writes runs unchanged, exactly as on the DBAPI driver alone, so the layer is judged by the builder
family only (``cases``); every other case's cell would copy that driver's column.

pypika has a dialect for each kind dbmatrix talks to (``query_class``). It renders values into the SQL itself, so
every DBAPI driver of a kind receives the same text from it: what differs between them is the DBAPI's own behaviour,
which that driver's own column already shows. So the layer sits on one blocking DBAPI driver per dialect
(``SITS_ON``), which keeps the bench and the session suites from running the same pypika text once per driver; a
subclass (or a plugin layer) can widen it. The bench builds every workload's statements with pypika per call, as
its users write them, and runs them on the DBAPI cursor (``variants``/``build_op``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from ..drivers.protocol import ConnectInfo, DriverAdapter, Layer
from ..drivers.session import Session

# target kind -> pypika's query class for that dialect (CockroachDB speaks PostgreSQL's)
_QUERY_CLASSES = {"postgresql": "PostgreSQLQuery", "cockroachdb": "PostgreSQLQuery", "mysql": "MySQLQuery",
                  "sqlite": "SQLLiteQuery"}


def query_class(kind: str) -> Any:
    """pypika's query class for ``kind`` (``pypika.PostgreSQLQuery``, ``MySQLQuery``, ``SQLLiteQuery``)."""
    import pypika  # the layer's module is imported for --help; pypika only when a query is built

    return getattr(pypika, _QUERY_CLASSES[kind])


class PypikaLayer(Layer):
    name = "pypika"
    cases: ClassVar[tuple[str, ...]] = ("builder.*",)  # other SQL goes to the DBAPI as written: its own column
    SITS_ON: ClassVar[frozenset[str]] = frozenset({"psycopg", "pymysql", "sqlite3"})  # one per pypika dialect
    bench_module: ClassVar[str] = "dbmatrix.layers.pypika_layer"
    profile_parts: ClassVar[tuple[tuple[str, str], ...]] = (("pypika", "pypika"),)
    rung: ClassVar[str] = "builder"
    profile_stages: ClassVar[dict[str, str]] = {"pypika": "sql"}

    def __init__(self, under: DriverAdapter):
        super().__init__(under)
        self.modules = (*under.modules, "pypika")  # type: ignore[misc]  # the driver first: sessions import modules[0]
        # the session is the DBAPI's own: so are its server-side cursor and its pooler-safe connect options
        self.server_cursor = under.server_cursor  # type: ignore[misc]
        self.pooler_safe_options = under.pooler_safe_options  # type: ignore[misc]
        self.bench_shape = under.bench_shape  # type: ignore[misc]

    @classmethod
    def can_sit_on(cls, dbapi: DriverAdapter) -> bool:
        return (dbapi.id in cls.SITS_ON and dbapi.layer == "dbapi" and not dbapi.is_async
                and bool(dbapi.kinds & _QUERY_CLASSES.keys()))

    @property
    def distributions(self) -> tuple[str, ...]:  # type: ignore[override]
        return ("pypika", *self.under.distributions)

    def query_class(self, kind: str) -> Any:
        return query_class(kind)

    def open(self, info: ConnectInfo) -> Session:
        session = self.under.open(info)
        session.adapter = self  # errors, cancels and notifications go through the layer, which asks the DBAPI's
        submit = session.submit  # what execute() runs through: a query object becomes its SQL text first

        def rendered(sql: Any, params: Mapping[str, Any] | None = None, *, types: Any = None) -> Any:
            return submit(sql if isinstance(sql, str) else sql.get_sql(), params, types=types)

        session.submit = rendered  # type: ignore[method-assign]
        return session


# --- bench: every statement built with pypika per call, run on the DBAPI cursor --------------------------------
# (the bench package imports its ORM schema: imported by a bench run, not by every command that reads the registry)
_KNOBS = {"update_txn": {"statements": "SELECT ... FOR UPDATE, UPDATE, INSERT built with pypika per call"},
          "insert_batch": {"method": "one multi-row INSERT built with pypika per batch"}}
_SELECT_KNOBS = {"statement": "built with pypika per call (values inlined), cursor.execute(str(query))"}
# tuned: what pypika's docs offer for reuse, Parameter placeholders; the query is built and rendered once, and each
# call only binds its values (the DBAPI's paramstyle, as the raw driver's own rows bind them)
_TUNED_SELECT_KNOBS = {"statement": "built once with pypika Parameter placeholders, cursor.execute(sql, params)"}


def variants(adapter: DriverAdapter, workload: str) -> dict[str, dict[str, str]]:
    """``{variant: knobs}``: values inlined per call by default (pypika's own examples); on the selects, built once
    with ``Parameter`` placeholders, tuned."""
    from ..bench.op import DEFAULT, SELECTS, TUNED

    if workload in SELECTS:
        return {DEFAULT: dict(_SELECT_KNOBS), TUNED: dict(_TUNED_SELECT_KNOBS)}
    return {DEFAULT: dict(_KNOBS[workload])}


def build_op(session: Session, workload: str, variant: str, rows: int, seed: int) -> Any:
    """The bench operation (``bench.op.Op``) for one connection: statements built with pypika per call."""
    from pypika import Parameter, Table, functions

    from ..bench.op import SELECTS, TUNED, Op
    from ..bench.ops_dbapi import _swallow, begin_sql, binder
    from ..bench.schema import EVENTS, USERS
    from ..bench.workloads import call_params, insert_batches

    kind = session.info.kind
    q, users, events = query_class(kind), Table(USERS), Table(EVENTS)
    cur = session.conn.cursor()  # type: ignore[attr-defined]
    execute = cur.execute
    if workload in SELECTS:
        nxt = itertools.cycle(call_params(workload, rows, seed)).__next__
        build = _select_builder(workload, kind, q, users, functions)
        if variant == TUNED:  # rendered once with :name placeholders, bound per call in the driver's paramstyle
            sql, bind = binder(session, str(build({n: Parameter(f":{n}") for n in ("id", "lo", "hi", "tag")})))

            def prepared() -> Any:
                execute(sql, bind(nxt()))
                return cur.fetchall()

            return Op(prepared, False)

        def select() -> Any:
            execute(str(build(nxt())))
            return cur.fetchall()

        return Op(select, False)
    begin = begin_sql(session)
    if workload == "update_txn":
        nxt = itertools.cycle(call_params(workload, rows, seed)).__next__

        def body() -> None:
            p = nxt()
            read = q.from_(users).select(users.score).where(users.id == p["id"])
            execute(str(read.for_update() if kind != "sqlite" else read))  # SQLite locks the file, not rows
            score = cur.fetchone()[0]
            execute(str(q.update(users).set(users.score, score + 1).where(users.id == p["id"])))
            execute(str(q.into(events).columns("user_id", "payload").insert(p["user_id"], p["payload"])))
    elif workload == "insert_batch":
        nxt = itertools.cycle(insert_batches(rows, seed)).__next__

        def body() -> None:
            rows_ = [(r["user_id"], r["payload"]) for r in nxt()]
            execute(str(q.into(events).columns("user_id", "payload").insert(*rows_)))
    else:
        raise KeyError(workload)

    def txn() -> None:
        for stmt in begin:
            execute(stmt)
        body()
        execute("COMMIT")

    return Op(txn, False, recover=_swallow(lambda: execute("ROLLBACK")))


def _select_builder(workload: str, kind: str, q: Any, users: Any, functions: Any) -> Callable[[dict[str, Any]], Any]:
    if workload == "pk_select":
        return lambda p: q.from_(users).select(users.id, users.name, users.email).where(users.id == p["id"])
    if workload == "range_select":
        return lambda p: (q.from_(users).select(users.id, users.name, users.email, users.score)
                          .where(users.id[p["lo"]:p["hi"]]))
    # pypika's JSON operators are PostgreSQL's; MySQL/MariaDB take a function (its generic Function API)
    tag = (functions.Function("JSON_VALUE", users.doc, "$.tag") if kind == "mysql" else users.doc.get_text_value("tag"))
    return lambda p: (q.from_(users).select(users.doc).where(users.id[p["lo"]:p["hi"]])
                      .where(tag == p["tag"]))

