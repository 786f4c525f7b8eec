"""Small helpers shared by the ``sql.*`` feature cases: load rows in one statement, compare whole result sets.

Cases compare the full result set a query returns with the rows computed in Python from the same data, so a
wrong value anywhere (not just a missing feature) shows up as ``differs`` with the first rows that disagree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dbmatrix.cell import Cell
from dbmatrix.drivers.base import Session


def insert_rows(session: Session, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """One multi-row ``INSERT ... VALUES`` (no executemany: what runs is one statement on every driver)."""
    names = ", ".join(columns)
    values, params = [], {}
    for i, row in enumerate(rows):
        keys = [f"{col}_{i}" for col in columns]
        params.update(zip(keys, row, strict=True))
        values.append("(" + ", ".join(f":{k}" for k in keys) + ")")
    session.execute(f"INSERT INTO {table} ({names}) VALUES {', '.join(values)}", params)


def plain(rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
    """Rows as plain tuples (SQLAlchemy rows, lists) so they compare with ``==``.

    Values are left as the driver returned them: ``Decimal('5') == 5`` holds, so a MariaDB ``SUM`` (DECIMAL)
    still matches the Python int, while a wrong value does not.
    """
    return [tuple(r) for r in rows]


def row_difference(got: Sequence[Sequence[Any]], want: Sequence[Sequence[Any]], limit: int = 3) -> str | None:
    """None when ``got`` equals ``want`` row for row; otherwise a short description of the first differences."""
    got_rows, want_rows = plain(got), plain(want)
    if got_rows == want_rows:
        return None
    notes = []
    if len(got_rows) != len(want_rows):
        notes.append(f"{len(got_rows)} rows instead of {len(want_rows)}")
    for i, (g, w) in enumerate(zip(got_rows, want_rows, strict=False)):
        if g != w:
            notes.append(f"row {i}: got {g!r}, want {w!r}")
            if len(notes) > limit:
                break
    return "; ".join(notes)


def differences(checks: Mapping[str, tuple[Sequence[Sequence[Any]], Sequence[Sequence[Any]]]]) -> list[str]:
    """``what: how`` for every named (got, want) pair whose rows differ."""
    return [f"{what}: {d}" for what, (got, want) in checks.items() if (d := row_difference(got, want))]


def record_comparison(cell: Cell, diffs: Sequence[str], detail: str, **kw: Any) -> None:
    """``differs`` listing the differences, or ``supported`` with ``detail`` when there are none."""
    if diffs:
        cell.differs("; ".join(diffs), **kw)
    else:
        cell.supported(detail, **kw)
