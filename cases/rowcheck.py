"""Small helpers shared by the ``sql.*`` feature cases: load rows in one statement, compare whole result sets.

Cases compare the full result set a query returns with the rows computed in Python from the same data, so a
wrong value anywhere (not just a missing feature) shows up as ``differs`` with the first rows that disagree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dbmatrix.cell import Cell, show
from dbmatrix.drivers.base import Session


def spelling(cell: Cell, by_engine: Mapping[str, Any]) -> Any:
    """The entry for the cell's engine, else its kind, else the PostgreSQL (standard) spelling: an engine with
    no spelling of its own still runs the case's SQL, so the engine, not a missing key, decides the cell."""
    return by_engine.get(cell.engine) or by_engine.get(cell.kind) or by_engine["postgresql"]


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
    """Rows as plain tuples (SQLAlchemy rows, lists); values are left exactly as the driver returned them."""
    return [tuple(r) for r in rows]


def same_value(got: Any, want: Any) -> bool:
    """Equal value and the same Python type, all the way down: ``Decimal('6')`` is not ``6``, ``1`` is not
    ``True``, a driver's own UUID class is not ``uuid.UUID``. The one comparison every case uses."""
    if type(got) is not type(want):
        return False
    if isinstance(want, tuple | list):
        return len(got) == len(want) and all(same_value(g, w) for g, w in zip(got, want, strict=True))
    if isinstance(want, dict):
        return got.keys() == want.keys() and all(same_value(got[k], want[k]) for k in want)
    return bool(got == want)


def value_difference(got: Any, want: Any) -> str | None:
    """None when ``same_value``; otherwise ``got X (type), want Y (type)``."""
    return None if same_value(got, want) else f"got {show(got)}, want {show(want)}"


def row_difference(got: Sequence[Sequence[Any]], want: Sequence[Sequence[Any]], limit: int = 3) -> str | None:
    """None when ``got`` equals ``want`` row for row (values and types); otherwise the first differences."""
    got_rows, want_rows = plain(got), plain(want)
    if same_value(got_rows, want_rows):
        return None
    notes = []
    if len(got_rows) != len(want_rows):
        notes.append(f"{len(got_rows)} rows instead of {len(want_rows)}")
    for i, (g, w) in enumerate(zip(got_rows, want_rows, strict=False)):
        if same_value(g, w):
            continue
        if len(g) == len(w):
            cols = [f"col {j}: {value_difference(gv, wv)}" for j, (gv, wv) in enumerate(zip(g, w, strict=True))
                    if not same_value(gv, wv)]
            notes.append(f"row {i} {', '.join(cols)}")
        else:
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
