"""sql.json_*: querying JSON documents in SQL — extraction, containment, SQL/JSON path, indexes, result types.

The same documents go into a JSON column on every engine (JSONB on PostgreSQL, JSON on MySQL/MariaDB, TEXT
on SQLite); each case asks the same question in each engine's own spelling (a small dict per kind, chosen by
``cell.kind``) and compares the full result set with the expected rows. Where an engine has no such feature
at all the case declares a capability; where the spelling exists but answers differently, the cell says how.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from rowcheck import Side, int_truth, same_value, set_aside, spelling

from dbmatrix.casekit import requires
from dbmatrix.cell import Cell, describe_error, show
from dbmatrix.drivers.base import Session
from dbmatrix.errors import DriverError
from dbmatrix.results import CellResult

DOC_DDL = {"postgresql": "JSONB", "cockroachdb": "JSONB", "mysql": "JSON", "sqlite": "TEXT"}
# How a bound JSON text becomes a document (PostgreSQL does not cast a text parameter to jsonb implicitly).
DOC_PARAM = {"postgresql": "CAST(:doc AS JSONB)", "cockroachdb": "CAST(:doc AS JSONB)"}

DOCS: dict[int, dict[str, Any]] = {
    1: {"a": {"b": "x"}, "arr": [10, 20, 30], "tag": "red"},
    2: {"a": {"b": "y"}, "arr": [20, 40]},
    3: {"a": {"c": 1}, "arr": []},
}


def _docs_table(cell: Cell, s: Session) -> str | CellResult:
    """A table (id, doc) holding DOCS, written as JSON text parameters the way applications write them; the cell's
    ``unsupported`` when the driver refuses JSON text for a JSON parameter (psqlpy wants a dict or list)."""
    table = cell.table("docs")
    s.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, doc {DOC_DDL[cell.kind]} NOT NULL)")
    placeholder = DOC_PARAM.get(cell.kind, ":doc")
    try:
        for i, doc in DOCS.items():
            s.execute(f"INSERT INTO {table} (id, doc) VALUES (:id, {placeholder})", {"id": i, "doc": json.dumps(doc)})
    except DriverError as exc:
        return cell.unsupported(f"writing the documents as JSON text failed: {describe_error(exc)}",
                                mechanism=f"error:{exc.code or exc.cls}")
    return table


def _compare(
    cell: Cell, got: list[tuple[Any, ...]], want: list[tuple[Any, ...]], what: str, note: str | None = None,
    side: list[Side] | None = None,
) -> CellResult:
    """``supported`` when ``got`` is exactly ``want`` (values and types), else ``differs`` naming the rows.
    A ``side`` difference (a type the case is not about) is a finding on the cell, not its outcome."""
    met: dict[tuple[str, str], dict[str, Any]] = {}
    raw, got = got, set_aside(what, got, want, side or [], met)
    findings = list(met.values())
    if len(got) == len(want) and all(same_value(g, w) for g, w in zip(got, want, strict=True)):
        return cell.supported(f"{what}: {raw!r}", findings=findings)
    wrong = [
        f"row {w[0]}: got {', '.join(show(v) for v in g[1:])}"
        for g, w in zip(got, want, strict=False)
        if not same_value(g, w)
    ]
    if len(got) != len(want):
        wrong.append(f"{len(got)} rows, expected {len(want)}")
    return cell.differs(f"{what}: " + "; ".join(wrong) + (f" — {note}" if note else "") + f" (expected {want!r})",
                        findings=findings)


def _rows(s: Session, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in s.execute(sql, params).rows]


# --- extraction --------------------------------------------------------------------------------------------

# (text at $.a.b, text at $.arr[1]) per kind; a missing path must give NULL.
EXTRACT_FUNCTIONS = {
    "postgresql": ("doc #>> '{a,b}'", "doc #>> '{arr,1}'"),
    "cockroachdb": ("doc #>> '{a,b}'", "doc #>> '{arr,1}'"),
    "mysql": ("JSON_UNQUOTE(JSON_EXTRACT(doc, '$.a.b'))", "JSON_UNQUOTE(JSON_EXTRACT(doc, '$.arr[1]'))"),
    "sqlite": ("json_extract(doc, '$.a.b')", "json_extract(doc, '$.arr[1]')"),
}
EXTRACT_ARROWS = {
    "postgresql": ("doc -> 'a' ->> 'b'", "doc -> 'arr' ->> 1"),
    "cockroachdb": ("doc -> 'a' ->> 'b'", "doc -> 'arr' ->> 1"),
    "mysql": ("doc ->> '$.a.b'", "doc ->> '$.arr[1]'"),  # MySQL's -> / ->> take a path and a column on the left
    "sqlite": ("doc -> 'a' ->> 'b'", "doc -> 'arr' ->> 1"),  # SQLite accepts PostgreSQL's label/index form
}
# As text, like PostgreSQL's ->> / #>> and MySQL's JSON_UNQUOTE: '20', not the number 20.
EXTRACTED = [(1, "x", "20"), (2, "y", "40"), (3, None, None)]


def _extract(cell: Cell, spelling: dict[str, tuple[str, str]]) -> CellResult:
    s = cell.connect()
    table = _docs_table(cell, s)
    if isinstance(table, CellResult):
        return table
    text_expr, number_expr = spelling[cell.kind]
    sql = f"SELECT id, {text_expr}, {number_expr} FROM {table} ORDER BY id"
    try:
        got = _rows(s, sql)
    except DriverError as exc:
        return cell.unsupported(exc)
    note = None
    if any(isinstance(r[2], int) for r in got):
        note = "a JSON number is extracted as an SQL number, not as its text"
    return _compare(cell, got, EXTRACTED, f"{text_expr}, {number_expr}", note)


def test_json_path_extraction(cell):
    """The function/path spelling (#>>, JSON_UNQUOTE(JSON_EXTRACT()), json_extract) extracts a nested string
    and an array element as text, and NULL where the path is missing."""
    _extract(cell, EXTRACT_FUNCTIONS)


@requires("json_arrow_operators")
def test_json_arrow_operators(cell):
    """The -> / ->> operators extract a nested string and an array element as text, NULL where missing."""
    _extract(cell, EXTRACT_ARROWS)


# --- containment and SQL/JSON path ---------------------------------------------------------------------------

CONTAINS = {
    "postgresql": "doc @> CAST(:probe AS JSONB)",
    "cockroachdb": "doc @> CAST(:probe AS JSONB)",
    "mysql": "JSON_CONTAINS(doc, :probe)",
}
# probe document -> ids of the documents that contain it (arrays: subset, order and duplicates ignored)
CONTAINED = {
    '{"a": {"b": "x"}}': [1],
    '{"arr": [20]}': [1, 2],
    '{"arr": [30, 10]}': [1],
    '{"a": {}}': [1, 2, 3],
    '{"tag": "blue"}': [],
}


@requires("json_contains")
def test_json_containment(cell):
    """A containment test with a bound JSON probe selects exactly the documents that contain it."""
    s = cell.connect()
    table = _docs_table(cell, s)
    if isinstance(table, CellResult):
        return
    sql = f"SELECT id FROM {table} WHERE {spelling(cell, CONTAINS)} ORDER BY id"
    got: dict[str, list[int]] = {}
    try:
        for probe in CONTAINED:
            got[probe] = [r[0] for r in _rows(s, sql, {"probe": probe})]
    except DriverError as exc:
        cell.unsupported(exc)
        return
    wrong = [
        f"{probe} -> {ids!r}, expected {CONTAINED[probe]!r}"
        for probe, ids in got.items()
        if not same_value(ids, CONTAINED[probe])
    ]
    if wrong:
        cell.differs("; ".join(wrong))
    else:
        cell.supported(f"{spelling(cell, CONTAINS)}: " + "; ".join(f"{p} -> {ids}" for p, ids in got.items()))


PATH_EXISTS = {
    "postgresql": "jsonb_path_exists(doc, '{path}')",
    "cockroachdb": "jsonb_path_exists(doc, '{path}')",
    "mysql": "JSON_EXISTS(doc, '{path}')",
}


def _path_exists(cell: Cell, paths: list[str], want: list[tuple[Any, ...]]) -> CellResult:
    s = cell.connect()
    table = _docs_table(cell, s)
    if isinstance(table, CellResult):
        return table
    exprs = [spelling(cell, PATH_EXISTS).format(path=p) for p in paths]
    try:
        rows = _rows(s, f"SELECT id, {', '.join(exprs)} FROM {table} ORDER BY id")
    except DriverError as exc:
        return cell.unsupported(exc)
    note = None
    if any(v is None for r in rows for v in r[1:]):
        note = "NULL instead of true/false: the path was not understood, yet no error was raised"
    # the case is about which paths exist: MySQL/MariaDB's 1/0 for true/false is a finding, not the outcome
    return _compare(cell, rows, want, ", ".join(exprs), note, side=[int_truth])


@requires("json_path")
def test_json_path_exists(cell):
    """SQL/JSON path existence (jsonb_path_exists / JSON_EXISTS) is true exactly where a member or array
    element exists."""
    _path_exists(
        cell, ["$.a.b", "$.arr[2]", "$.tag"], [(1, True, True, True), (2, True, False, False), (3, False, False, False)]
    )


@requires("json_path")
def test_json_path_filter(cell):
    """A SQL/JSON path filter expression (``$.arr[*] ? (@ > 25)``) selects documents by an element's value."""
    _path_exists(cell, ["$.arr[*] ? (@ > 25)"], [(1, True), (2, True), (3, False)])


# --- indexes on JSON ---------------------------------------------------------------------------------------


@dataclass
class IndexedQuery:
    """A table of N_ROWS documents, an index for a JSON predicate, and the query that should use it."""

    ddl: str
    index: str
    query: str
    explain: str = "EXPLAIN {query}"
    analyze: str = "ANALYZE {table}"
    session: list[str] = field(default_factory=list)  # inside the transaction that runs EXPLAIN
    by_column: str | None = None  # MySQL: the same query naming the generated column instead of the expression


N_ROWS = 2000
PG_PLAN_SESSION = ["SET LOCAL enable_seqscan = off"]  # LOCAL: stays in the transaction, so poolers keep it

EXPRESSION_INDEX = {
    "postgresql": IndexedQuery(
        ddl="CREATE TABLE {table} (id INTEGER PRIMARY KEY, doc JSONB NOT NULL)",
        index="CREATE INDEX {index} ON {table} ((doc ->> 'k'))",
        query="SELECT id FROM {table} WHERE doc ->> 'k' = 'v42'",
        session=PG_PLAN_SESSION,
    ),
    "cockroachdb": IndexedQuery(
        ddl="CREATE TABLE {table} (id INT8 PRIMARY KEY, doc JSONB NOT NULL)",
        index="CREATE INDEX {index} ON {table} ((doc ->> 'k'))",
        query="SELECT id FROM {table} WHERE doc ->> 'k' = 'v42'",
    ),
    # MySQL/MariaDB index a JSON value through a generated column (MySQL 8's functional index is the same
    # thing, hidden); MySQL substitutes a matching expression in WHERE with the column, which is what is asked.
    "mysql": IndexedQuery(
        ddl="CREATE TABLE {table} (id INTEGER PRIMARY KEY, doc JSON NOT NULL, k VARCHAR(32) CHARACTER SET utf8mb4 "
        "COLLATE utf8mb4_bin AS (JSON_UNQUOTE(JSON_EXTRACT(doc, '$.k'))) VIRTUAL)",
        index="CREATE INDEX {index} ON {table} (k)",
        query="SELECT id FROM {table} WHERE JSON_UNQUOTE(JSON_EXTRACT(doc, '$.k')) = 'v42'",
        analyze="ANALYZE TABLE {table}",
        by_column="SELECT id FROM {table} WHERE k = 'v42'",
    ),
    "sqlite": IndexedQuery(
        ddl="CREATE TABLE {table} (id INTEGER PRIMARY KEY, doc TEXT NOT NULL)",
        index="CREATE INDEX {index} ON {table} (json_extract(doc, '$.k'))",
        query="SELECT id FROM {table} WHERE json_extract(doc, '$.k') = 'v42'",
        explain="EXPLAIN QUERY PLAN {query}",
        analyze="ANALYZE {table}",
    ),
}
GIN_INDEX = {
    "postgresql": IndexedQuery(
        ddl="CREATE TABLE {table} (id INTEGER PRIMARY KEY, doc JSONB NOT NULL)",
        index="CREATE INDEX {index} ON {table} USING GIN (doc)",
        query='SELECT id FROM {table} WHERE doc @> \'{{"k": "v42"}}\'',
        session=PG_PLAN_SESSION,
    ),
    "cockroachdb": IndexedQuery(
        ddl="CREATE TABLE {table} (id INT8 PRIMARY KEY, doc JSONB NOT NULL)",
        index="CREATE INVERTED INDEX {index} ON {table} (doc)",
        query='SELECT id FROM {table} WHERE doc @> \'{{"k": "v42"}}\'',
    ),
}


def _plan_uses(result_columns: list[str], plan: list[tuple[Any, ...]], index: str) -> bool:
    """Whether a plan names ``index`` as the access path: MySQL's EXPLAIN has a ``key`` column (its
    ``possible_keys`` would name an index it did not choose); PostgreSQL and SQLite plans are text lines."""
    if "key" in result_columns:
        at = result_columns.index("key")
        return any(row[at] == index for row in plan)
    return any(index in str(v) for row in plan for v in row)


def _plan_text(result_columns: list[str], plan: list[tuple[Any, ...]]) -> str:
    if "key" in result_columns:
        return "; ".join(
            ", ".join(
                f"{c}={v}"
                for c, v in zip(result_columns, row, strict=True)
                if c in ("table", "type", "key", "rows", "Extra")
            )
            for row in plan
        )
    return " | ".join(str(row[-1]).strip() for row in plan)


def _explain(s: Session, spec: IndexedQuery, query: str, index: str) -> tuple[bool, str, list[tuple[Any, ...]]]:
    """(index used?, plan text, query result) — EXPLAIN and the query in one transaction with the session
    settings, so a transaction-pooling proxy cannot move them to another server connection."""
    s.begin()
    try:
        for stmt in spec.session:
            s.execute(stmt)
        res = s.execute(spec.explain.format(query=query))
        rows = _rows(s, query)
    finally:
        s.rollback()
    return _plan_uses(res.columns, res.rows, index), _plan_text(res.columns, res.rows), rows


def _indexed(cell: Cell, specs: dict[str, IndexedQuery]) -> CellResult:
    spec = spelling(cell, specs)
    s = cell.connect()
    table = cell.table("jix")
    index = f"ix_{table}"
    names = {"table": table, "index": index}
    s.execute(spec.ddl.format(**names))
    for start in range(1, N_ROWS + 1, 500):
        values = ", ".join(
            f"({i}, '{json.dumps({'k': f'v{i}', 'n': i})}')" for i in range(start, min(start + 500, N_ROWS + 1))
        )
        s.execute(f"INSERT INTO {table} (id, doc) VALUES {values}")
    try:
        s.execute(spec.index.format(**names))
    except DriverError as exc:
        return cell.unsupported(exc)
    s.execute(spec.analyze.format(**names))
    query = spec.query.format(**names)
    used, plan, rows = _explain(s, spec, query, index)
    metrics = {"rows_in_table": N_ROWS}
    if not same_value(rows, [(42,)]):
        return cell.differs(f"{query} returned {rows!r}, expected [(42,)]; plan: {plan}", metrics=metrics)
    if used:
        return cell.supported(f"plan uses {index}: {plan}", metrics=metrics)
    if spec.by_column:
        by_column = spec.by_column.format(**names)
        used_by_column, plan_by_column, rows_by_column = _explain(s, spec, by_column, index)
        if used_by_column and same_value(rows_by_column, [(42,)]):
            return cell.differs(
                f"the index is not used for the JSON expression (plan: {plan}); only a query naming the "
                f"generated column uses it (plan: {plan_by_column})",
                metrics=metrics,
            )
    return cell.differs(f"the plan does not use {index}: {plan}", metrics=metrics)


def test_json_expression_index(cell):
    """An index on a JSON member (expression index, or an indexed generated column) is used by a query that
    filters on that member, as EXPLAIN shows (2000 rows, analyzed; PostgreSQL with enable_seqscan off)."""
    _indexed(cell, EXPRESSION_INDEX)


@requires("jsonb")
def test_jsonb_gin_index(cell):
    """A GIN (inverted) index on a JSONB column is used for an @> containment query, as EXPLAIN shows."""
    _indexed(cell, GIN_INDEX)


# --- what a JSON expression comes back as -------------------------------------------------------------------

BUILD_OBJECT = {
    "postgresql": "json_build_object('a', 1, 'b', 'x')",
    "cockroachdb": "json_build_object('a', 1, 'b', 'x')",
    "mysql": "JSON_OBJECT('a', 1, 'b', 'x')",
    "sqlite": "json_object('a', 1, 'b', 'x')",
}


def test_json_expression_type(cell):
    """A JSON value built in a SELECT comes back as a Python dict (SQLAlchemy layers declare sa.JSON on the
    column, as a SQLAlchemy user would); a str holding the JSON text is ``differs``."""
    s = cell.connect()
    expr = BUILD_OBJECT[cell.kind]
    value = s.execute(f"SELECT {expr} AS j", types={"j": sa.JSON()}).scalar()
    want = {"a": 1, "b": "x"}
    if same_value(value, want):
        cell.supported(f"{expr} -> {show(value)}")
    elif isinstance(value, str | bytes) and json.loads(value) == want:
        cell.differs(f"{expr} comes back as JSON text, not a dict: {show(value)}")
    else:
        cell.differs(f"{expr} -> {show(value)}, expected {want!r}")
