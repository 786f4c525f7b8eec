"""Seed every table of a schema with generated rows, parents before children, so that what a migration does
to a populated table (locks, rewrites, duration) shows. One INSERT ... SELECT per table, rows generated on the
server by a recursive CTE (the same SQL on PostgreSQL, MariaDB/MySQL and SQLite)."""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .catalog import Catalog, _family

# The session variable that bounds a recursive CTE: MariaDB stops *silently* after 1,000 iterations by default
# (max_recursive_iterations), MySQL 8 refuses beyond 1,000 (cte_max_recursion_depth).
RECURSION_LIMIT = {"mariadb": "max_recursive_iterations", "mysql": "cte_max_recursion_depth"}


def seed_empty_tables(conn: Connection, cat: Catalog, rows: int) -> dict[str, Any]:
    """Fill each empty table with ``rows`` rows; returns {table: rows now in it, or the error that stopped it}."""
    engine = conn.dialect.name
    out: dict[str, Any] = {}
    if rows <= 0:
        return out  # (the generator below yields its anchor row even for 0)
    if engine == "mysql":
        limit = RECURSION_LIMIT["mariadb" if conn.dialect.is_mariadb else "mysql"]
        conn.execute(sa.text(f"SET SESSION {limit} = {max(int(rows), 1000)}"))
    for table in _parents_first(cat):
        q = conn.dialect.identifier_preparer.quote
        have = conn.execute(sa.text(f"SELECT COUNT(*) FROM {q(table)}")).scalar_one()
        if have:
            out[table] = have
            continue
        t = cat["tables"][table]
        cols, exprs = [], []
        for name, col in t["columns"].items():
            expr = _value(engine, table, name, col, t, cat)
            if expr is not None:
                cols.append(q(name))
                exprs.append(expr)
        seq = (f"(WITH RECURSIVE seq(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM seq WHERE g < {int(rows)}) "
               "SELECT g FROM seq) s")
        sql = f"INSERT INTO {q(table)} ({', '.join(cols)}) SELECT {', '.join(exprs)} FROM {seq}"
        try:
            conn.execute(sa.text(sql))
            conn.commit()
            out[table] = conn.execute(sa.text(f"SELECT COUNT(*) FROM {q(table)}")).scalar_one()  # what is there
            conn.commit()
        except sa.exc.DBAPIError as exc:
            conn.rollback()
            out[table] = f"could not seed {table}: {str(exc.orig).splitlines()[0]}"
    return out


def _parents_first(cat: Catalog) -> list[str]:
    tables = cat["tables"]
    done: list[str] = []
    pending = sorted(tables)
    while pending:
        ready = [t for t in pending
                 if all(fk["references"].split("(")[0] in done or fk["references"].split("(")[0] == t
                        for fk in tables[t]["foreign_keys"].values())]
        ready = ready or pending[:1]  # a cycle: seed it anyway, the error is reported
        done += ready
        pending = [t for t in pending if t not in ready]
    return done


def _value(engine: str, table: str, name: str, col: dict[str, Any], t: dict[str, Any], cat: Catalog) -> str | None:
    """A SQL expression of ``g`` for the column, or None to leave it to its default / NULL."""
    fk = next((fk for fk in t["foreign_keys"].values() if fk["columns"] == [name]), None)
    if fk is not None:
        return "g"  # parents were seeded first with ids 1..rows
    if col["default"] is not None or col.get("autoincrement") or col.get("identity"):
        return None
    if name in t["primary_key"] and len(t["primary_key"]) == 1 and engine == "sqlite":
        return None  # INTEGER PRIMARY KEY is the rowid
    if col["nullable"]:
        return None
    family = _family(col["type"], cat.get("enums", {}))
    text = ("'v' || g" if engine in ("sqlite", "postgresql") else "CONCAT('v', g)")
    m = re.match(r"(?:var)?char\((\d+)\)", family)
    if m:
        return f"SUBSTR({text}, 1, {m.group(1)})"
    if family.startswith("enum("):
        return "'" + family[5:].split(",")[0].strip(" )") + "'"
    return {
        "integer": "g", "bigint": "g", "smallint": "g % 30000",
        "boolean": "(g % 2 = 0)" if engine == "postgresql" else "g % 2",
        "json": "'{}'", "text": text, "datetime": "CURRENT_TIMESTAMP", "datetime_tz": "CURRENT_TIMESTAMP",
    }.get(family, "g % 1000" if family.startswith("numeric") else text)
