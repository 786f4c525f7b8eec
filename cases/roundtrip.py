"""The type round-trip check shared by the ``types.*`` cases.

Write a Python value through the driver into a column, read it back, and record the exact value and type
the driver returns: ``supported`` when it is what was written, ``differs`` (saying how) when not, and
``unsupported`` with the engine's own error when the write is refused.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rowcheck import same_value, spelling

from dbmatrix.cell import Cell, describe_error, show
from dbmatrix.drivers.base import Session
from dbmatrix.errors import DriverError
from dbmatrix.results import CellResult


@dataclass
class RoundTrip:
    ddl: Mapping[str, str]  # engine or kind -> column type
    values: list[Any]  # written one row each
    sa_type: Any = None  # what a SQLAlchemy user would declare; SA layers get it through ``types``
    same: Callable[[Any, Any], bool] | None = None  # written vs read; default: rowcheck.same_value
    session_sql: Mapping[str, list[str]] = field(default_factory=dict)  # per kind, before writing
    write_sql: Mapping[str, str] = field(default_factory=dict)  # per kind placeholder expression, default :v
    note: Callable[[Any, Any], str | None] | None = None  # extra words on a supported cell
    # what the engine really stored, measured on a cell that differs: (cell, session, table) -> words
    stored: Callable[[Cell, Session, str], str | None] | None = None


def float_same(written: float, read: Any) -> bool:
    if not isinstance(read, float):
        return False
    if math.isnan(written):
        return math.isnan(read)
    return read == written


def check(cell: Cell, spec: RoundTrip) -> CellResult:
    ddl = spelling(cell, spec.ddl)
    table = cell.table("rt")
    s = cell.connect()
    for stmt in spec.session_sql.get(cell.kind, []):
        s.execute(stmt)
    s.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, v {ddl})")
    types = {"v": spec.sa_type} if spec.sa_type is not None else None
    placeholder = spec.write_sql.get(cell.kind, ":v")
    try:
        for i, value in enumerate(spec.values):
            s.execute(f"INSERT INTO {table} (id, v) VALUES ({i}, {placeholder})", {"v": value}, types=types)
    except DriverError as exc:
        return cell.unsupported(exc)
    try:
        rows = s.execute(f"SELECT v FROM {table} ORDER BY id", types=types).rows
    except DriverError as exc:  # written, but the driver refuses to read it back (psqlpy: a NULL array element)
        return cell.unsupported(f"written, but reading it back failed: {describe_error(exc)}",
                                mechanism=f"error:{exc.code or exc.cls}")
    read = [r[0] for r in rows]
    same = spec.same or same_value
    lines, ok = [], len(read) == len(spec.values)
    for written, got in zip(spec.values, read, strict=False):
        if not same(written, got):
            ok = False
            lines.append(f"wrote {show(written)}, read {show(got)}")
    if not ok:
        if len(read) != len(spec.values):
            lines.append(f"wrote {len(spec.values)} rows, read {len(read)}")
        if spec.stored and (words := spec.stored(cell, s, table)):
            lines.append(words)
        return cell.differs("; ".join(lines))
    extra = spec.note(spec.values[-1], read[-1]) if spec.note else None
    detail = "read " + ", ".join(show(v) for v in read) + (f" — {extra}" if extra else "")
    return cell.supported(detail)
