"""sql.array_*: SQL arrays in queries — containment, overlap, ``= ANY(list parameter)``, array results.

PostgreSQL (and CockroachDB) only; elsewhere the ``arrays`` capability is missing and the cell is
``unsupported``. The operand arrays are Python lists bound as parameters, the way applications pass them: a
driver that cannot adapt a list (or whose adaptation the server cannot type) is ``unsupported`` with the
driver's own error. Every case compares the full, ordered result with the expected rows.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from rowcheck import same_value, spelling

from dbmatrix.casekit import requires
from dbmatrix.cell import Cell, show
from dbmatrix.drivers.base import Session
from dbmatrix.errors import DriverError
from dbmatrix.results import CellResult

TAGS_DDL = {"postgresql": "TEXT[]", "cockroachdb": "STRING[]"}
ROWS = [(1, "one", ["a", "b"]), (2, "two", ["b", "c"]), (3, "three", ["x"]), (4, "four", [])]


def _tags_table(cell: Cell, s: Session) -> str:
    table = cell.table("arr")
    s.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, name TEXT NOT NULL, tags {spelling(cell, TAGS_DDL)})")
    # literal arrays, so that the table is right even where list parameters are the thing that fails
    values = ", ".join(
        f"({i}, '{name}', ARRAY[{', '.join(repr(t) for t in tags)}]::{spelling(cell, TAGS_DDL)})"
        for i, name, tags in ROWS
    )
    s.execute(f"INSERT INTO {table} (id, name, tags) VALUES {values}")
    return table


def _queries(cell: Cell, sql: str, cases: list[tuple[dict[str, Any], list[tuple[Any, ...]]]]) -> CellResult:
    """Run ``sql`` once per (parameters, expected rows); ``supported`` when every result is exact."""
    s = cell.connect()
    table = _tags_table(cell, s)
    results = []
    for params, want in cases:
        try:
            got = [tuple(r) for r in s.execute(sql.format(table=table), params).rows]
        except DriverError as exc:
            return cell.unsupported(exc)
        results.append((params, got, want))
    wrong = [f"{params} -> {got!r}, expected {want!r}" for params, got, want in results
             if not same_value(got, want)]
    if wrong:
        return cell.differs("; ".join(wrong))
    return cell.supported("; ".join(f"{params} -> {got!r}" for params, got, _ in results))


@requires("arrays")
def test_array_contains(cell):
    """``tags @> :want`` with a Python list selects the rows whose array holds every wanted element."""
    _queries(
        cell,
        "SELECT id FROM {table} WHERE tags @> :want ORDER BY id",
        [
            ({"want": ["b"]}, [(1,), (2,)]),
            ({"want": ["b", "a"]}, [(1,)]),
            ({"want": []}, [(1,), (2,), (3,), (4,)]),
        ],
    )


@requires("arrays")
def test_array_overlap(cell):
    """``tags && :want`` with a Python list selects the rows sharing at least one element with it."""
    _queries(
        cell,
        "SELECT id FROM {table} WHERE tags && :want ORDER BY id",
        [
            ({"want": ["x", "c"]}, [(2,), (3,)]),
            ({"want": ["zz"]}, []),
        ],
    )


@requires("arrays")
def test_array_any_param(cell):
    """``col = ANY(:list)`` with Python lists of ints and of strs (and an empty list) selects exactly the rows
    whose value is in the list — the usual replacement for ``IN (...)`` with a variable number of values."""
    _queries(
        cell,
        "SELECT id, name FROM {table} WHERE id = ANY(:ids) OR name = ANY(:names) ORDER BY id",
        [
            ({"ids": [1, 3], "names": ["four"]}, [(1, "one"), (3, "three"), (4, "four")]),
            ({"ids": [], "names": ["two"]}, [(2, "two")]),
            ({"ids": [], "names": []}, []),
        ],
    )


_ARRAYS_SQL = (
    "SELECT ARRAY[1, NULL, -3] AS ints, ARRAY['plain', 'with \"quotes\"', 'a,b', '{{braces}}', 'NULL', ''] AS texts, "
    "ARRAY[]::{int_type}[] AS empty, {grid} AS grid"
)
ARRAY_SELECT = {
    "postgresql": _ARRAYS_SQL.format(int_type="INTEGER", grid="ARRAY[[1, 2], [3, 4]]"),
    "cockroachdb": _ARRAYS_SQL.format(int_type="INT8", grid="NULL"),  # CockroachDB has no multi-dimensional arrays
}
ARRAYS_WANT = {
    "ints": [1, None, -3],
    "texts": ["plain", 'with "quotes"', "a,b", "{braces}", "NULL", ""],
    "empty": [],
    "grid": [[1, 2], [3, 4]],
}
# What a SQLAlchemy user declares for these columns; the DBAPI layers ignore ``types``.
ARRAY_TYPES = {
    "ints": sa.ARRAY(sa.Integer()),
    "texts": sa.ARRAY(sa.Text()),
    "empty": sa.ARRAY(sa.Integer()),
    "grid": sa.ARRAY(sa.Integer(), dimensions=2),
}


@requires("arrays")
def test_array_literal_select(cell):
    """Arrays built in a SELECT come back as Python lists: NULL elements as None, quotes, commas, braces and the
    text 'NULL' intact, an empty array as [], a two-dimensional array as a list of lists."""
    s = cell.connect()
    try:
        res = s.execute(spelling(cell, ARRAY_SELECT), types=ARRAY_TYPES)
    except DriverError as exc:  # the driver cannot read these arrays back (psqlpy: a NULL element)
        cell.unsupported(exc)
        return
    got = dict(zip(res.columns, res.rows[0], strict=True))
    want = dict(ARRAYS_WANT)
    if cell.kind == "cockroachdb":
        want["grid"] = None
    wrong = [
        f"{name}: {show(got[name])}"
        for name in want
        if not same_value(got[name], want[name])
    ]
    if wrong:
        cell.differs("; ".join(wrong) + f" (expected {want!r})")
    else:
        cell.supported(", ".join(f"{name}={show(got[name])}" for name in want))
