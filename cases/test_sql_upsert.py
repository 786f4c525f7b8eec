"""sql.upsert_*: insert-or-update and insert-or-skip, in each engine's own spelling.

PostgreSQL, SQLite and CockroachDB spell it ``ON CONFLICT (k) DO UPDATE`` / ``DO NOTHING``; MySQL and MariaDB
``ON DUPLICATE KEY UPDATE`` / ``INSERT IGNORE``. The spelling is chosen by capability, not by engine name.

Each case checks the table contents exactly and records the row count the driver reports for every statement.
The reference count is the standard one (SQL MERGE, PostgreSQL): one per row inserted or updated, none for a
skipped row. MySQL counts an updated row as 2 and a row updated to its current values as 0 (1 when the client
sets CLIENT_FOUND_ROWS, as SQLAlchemy's MySQL dialects do); such counts make the cell ``differs``, with the
counts in the detail and the metrics.
"""

from __future__ import annotations

import re
from typing import Any

from rowcheck import same_value

from dbmatrix.cell import Cell
from dbmatrix.drivers.base import Session
from dbmatrix.errors import DriverError
from dbmatrix.results import CellResult

# capability -> statement templates ({table}, {rows}); the first capability the target has is its spelling.
UPDATE_ON_CONFLICT = {
    "upsert_on_conflict": "INSERT INTO {table} (k, v) VALUES {rows} ON CONFLICT (k) DO UPDATE SET v = excluded.v",
    # VALUES(v) rather than MySQL 8.0.19's row alias (AS new): MariaDB has no row alias.
    "upsert_on_duplicate_key": "INSERT INTO {table} (k, v) VALUES {rows} ON DUPLICATE KEY UPDATE v = VALUES(v)",
}
DO_NOTHING = {
    "upsert_on_conflict": "INSERT INTO {table} (k, v) VALUES {rows} ON CONFLICT (k) DO NOTHING",
    # MySQL's idiom; note it also downgrades other errors (NOT NULL, truncation) to warnings.
    "upsert_on_duplicate_key": "INSERT IGNORE INTO {table} (k, v) VALUES {rows}",
}

Step = tuple[str, list[tuple[int, str]], int]  # name, rows (k, v) to upsert, reference row count


def _spelling(cell: Cell, templates: dict[str, str]) -> str | None:
    return next((sql for cap, sql in templates.items() if cell.has(cap)), None)


def _run(
    cell: Cell,
    templates: dict[str, str],
    initial: list[tuple[int, str]],
    steps: list[Step],
    final: list[tuple[int, str]],
    bad_rows: tuple[tuple[str, tuple[int, Any]], ...] = (),
) -> CellResult:
    """Apply ``steps`` to a table holding ``initial``; compare row counts with the reference, the table with
    ``final``."""
    template = _spelling(cell, templates)
    if template is None:
        raise DriverError(None, "NoSpelling", "; ".join(filter(None, (cell.target.missing(c) for c in templates))))
    s: Session = cell.connect()
    table = cell.table("ups")
    s.execute(f"CREATE TABLE {table} (k INTEGER PRIMARY KEY, v VARCHAR(20) NOT NULL)")
    for k, v in initial:
        s.execute(f"INSERT INTO {table} (k, v) VALUES (:k, :v)", {"k": k, "v": v})
    counts: dict[str, int] = {}
    for name, rows, _ in steps:
        values = ", ".join(f"(:k{i}, :v{i})" for i in range(len(rows)))
        params: dict[str, Any] = {}
        for i, (k, v) in enumerate(rows):
            params.update({f"k{i}": k, f"v{i}": v})
        try:
            counts[name] = s.execute(template.format(table=table, rows=values), params).rowcount
        except DriverError as exc:
            return cell.unsupported(exc)
    got = [tuple(r) for r in s.execute(f"SELECT k, v FROM {table} ORDER BY k").rows]
    metrics = {f"rowcount_{name}": n for name, n in counts.items()}
    reported = ", ".join(f"{name}={counts[name]}" for name, _, _ in steps)
    reference = ", ".join(f"{name}={ref}" for name, _, ref in steps)
    if not same_value(got, final):
        return cell.differs(f"table afterwards {got!r}, expected {final!r}; row counts {reported}", metrics=metrics)
    coerced = [note for label, row in bad_rows if (note := _accepted(cell, s, template, table, label, row))]
    if coerced:
        return cell.differs("conflicting keys are skipped, but other bad rows are not refused: " + "; ".join(coerced),
                            metrics=metrics, mechanism="warning:" + (",".join(_warning_codes(coerced)) or "none"))
    if any(not same_value(counts[name], ref) for name, _, ref in steps):
        return cell.differs(f"table as expected, but row counts {reported} (reference {reference})", metrics=metrics)
    return cell.supported(f"row counts {reported}; table {got!r}", metrics=metrics)


def test_upsert_update(cell):
    """Insert-or-update inserts a new key, overwrites an existing one, and counts one row per row touched:
    new key, changed value, unchanged value, and a two-row statement mixing an update and an insert."""
    _run(
        cell,
        UPDATE_ON_CONFLICT,
        initial=[(1, "a")],
        steps=[
            ("new", [(2, "b")], 1),
            ("updated", [(1, "a2")], 1),
            ("unchanged", [(1, "a2")], 1),  # the row is still written (and counted) by the standard statement
            ("mixed", [(2, "b2"), (3, "c")], 2),
        ],
        final=[(1, "a2"), (2, "b2"), (3, "c")],
    )


def test_upsert_do_nothing(cell):
    """Insert-or-skip leaves an existing key untouched, inserts new keys, and counts only inserted rows; a row
    that breaks another constraint (NULL into NOT NULL, text too long) is still refused, not silently coerced."""
    _run(
        cell,
        DO_NOTHING,
        initial=[(1, "a")],
        steps=[
            ("conflict", [(1, "z")], 0),
            ("new", [(2, "b")], 1),
            ("mixed", [(2, "y"), (3, "c")], 1),
        ],
        final=[(1, "a"), (2, "b"), (3, "c")],
        bad_rows=BAD_ROWS,
    )


# Rows that break another rule than the key: insert-or-skip must skip only key conflicts and still refuse these.
BAD_ROWS = (("NULL into NOT NULL v", (4, None)), ("31 characters into VARCHAR(20) v", (5, "x" * 31)))


def _accepted(cell: Cell, s: Session, template: str, table: str, label: str, row: tuple[int, Any]) -> str | None:
    """None when the engine refuses ``row``; else what it stored instead, with the warnings it gave."""
    k, v = row
    if cell.kind == "sqlite" and isinstance(v, str):
        return None  # SQLite does not enforce declared lengths on any insert: nothing an upsert could change
    try:
        s.execute(template.format(table=table, rows="(:k0, :v0)"), {"k0": k, "v0": v})
    except DriverError:
        return None
    warnings = s.execute("SHOW WARNINGS").rows if cell.kind == "mysql" else []  # before any other statement
    stored = s.execute(f"SELECT v FROM {table} WHERE k = :k", {"k": k}).rows
    said = ", ".join(f"warning {w[1]} {w[2]!r}" for w in warnings) or "no warning"
    kept = f"stored {stored[0][0]!r}" if stored else "row skipped"
    return f"{label}: accepted, {kept} ({said})"


def _warning_codes(notes: list[str]) -> list[str]:
    return [code for note in notes for code in re.findall(r"warning (\d+)", note)]
