"""Small helpers shared by the ``sql.*`` feature cases: load rows in one statement, compare whole result sets.

Cases compare the full result set a query returns with the rows computed in Python from the same data, so a
wrong value anywhere (not just a missing feature) shows up as ``differs`` with the first rows that disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
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


Checks = Mapping[str, tuple[Sequence[Sequence[Any]], Sequence[Sequence[Any]]]]


def differences(checks: Checks) -> list[str]:
    """``what: how`` for every named (got, want) pair whose rows differ."""
    return [f"{what}: {d}" for what, (got, want) in checks.items() if (d := row_difference(got, want))]


# A side difference: the engine gives the right value in another type, where that type is not what the case is
# about (a case on recursive CTEs or window frames is not about SUM's result type). A case names the ones it
# tolerates; each is then a finding on the cell, and the outcome stays about the case's feature. Cases about
# types (types.*) name none.
Side = Callable[[Any, Any], str | None]


def whole_decimal(got: Any, want: Any) -> str | None:
    """SUM over integers as DECIMAL (MariaDB/MySQL): ``Decimal('50')`` where the reference is the int 50."""
    if type(want) is int and type(got) is Decimal and got == want:
        return "SUM over an INTEGER column comes back as decimal.Decimal, not int (the values agree)"
    return None


def int_truth(got: Any, want: Any) -> str | None:
    """A truth value as the integer 1/0 (MariaDB/MySQL have no boolean type)."""
    if type(want) is bool and type(got) is int and got == int(want):
        return "a truth value comes back as the integer 1/0, not bool (the answers agree)"
    return None


def set_aside(what: str, got: Sequence[Sequence[Any]], want: Sequence[Sequence[Any]], side: Sequence[Side],
              met: dict[tuple[str, str], dict[str, Any]]) -> list[tuple[Any, ...]]:
    """``got`` with every value that differs from ``want`` only by a ``side`` difference replaced by the wanted
    one; each such difference counted in ``met`` as a finding (which check, how many values, the first one)."""
    got_rows, want_rows = plain(got), plain(want)
    for i, (g, w) in enumerate(zip(got_rows, want_rows, strict=False)):
        if len(g) != len(w):
            continue
        row = list(g)
        for j, (gv, wv) in enumerate(zip(g, w, strict=True)):
            note = None if same_value(gv, wv) else next((n for rule in side if (n := rule(gv, wv))), None)
            if note:
                row[j] = wv
                found = met.setdefault((what, note), {"check": what, "side_difference": note, "values": 0,
                                                      "example": value_difference(gv, wv)})
                found["values"] += 1
        got_rows[i] = tuple(row)
    return got_rows


def compare(checks: Checks, side: Sequence[Side] = ()) -> tuple[list[str], list[dict[str, Any]]]:
    """``differences`` once the ``side`` differences are set aside, and those as findings for the cell."""
    met: dict[tuple[str, str], dict[str, Any]] = {}
    kept = {what: (set_aside(what, got, want, side, met), want) for what, (got, want) in checks.items()}
    return differences(kept), list(met.values())


def record_comparison(cell: Cell, diffs: Sequence[str], detail: str, **kw: Any) -> None:
    """``differs`` listing the differences, or ``supported`` with ``detail`` when there are none."""
    if diffs:
        cell.differs("; ".join(diffs), **kw)
    else:
        cell.supported(detail, **kw)
