"""The catalog snapshot: what a database's schema really is, read back from the engine, normalised per engine.

Built on SQLAlchemy's inspector (tables, columns, keys, indexes, checks, comments, sequences, enums) plus a few
engine catalog queries the inspector does not expose (PostgreSQL index definitions, SQLite index SQL).
``diff_catalogs`` lists every difference as one line with its path, so a failing check shows exactly what changed.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

# Bookkeeping tables of the migration tools: never part of the user's schema.
TOOL_TABLES = frozenset({"alembic_version", "_yoyo_migration", "_yoyo_log", "_yoyo_version", "yoyo_lock",
                         "django_migrations"})

Catalog = dict[str, Any]


def snapshot(conn: Connection, *, exclude: frozenset[str] = TOOL_TABLES) -> Catalog:
    """Read the schema behind ``conn`` into plain, comparable data (dicts keyed by name, no engine objects)."""
    with warnings.catch_warnings():
        # "Skipped unsupported reflection of expression-based index": read back by _index_definitions instead
        warnings.simplefilter("ignore", sa.exc.SAWarning)
        return _snapshot(conn, exclude)


def committed_snapshot(conn: Connection) -> Catalog:
    """``snapshot``, then the read's transaction ended, so that the tool's next command (on this connection or
    another) neither runs inside it nor waits for its locks."""
    cat = snapshot(conn)
    if conn.in_transaction():
        conn.commit()
    return cat


def _snapshot(conn: Connection, exclude: frozenset[str]) -> Catalog:
    insp = sa.inspect(conn)
    engine = conn.dialect.name
    tables: dict[str, Any] = {}
    for name in sorted(insp.get_table_names()):
        if name in exclude:
            continue
        tables[name] = _table(conn, insp, name)
    cat: Catalog = {"engine": engine, "tables": tables}
    if engine == "postgresql":
        cat["enums"] = {e["name"]: list(e["labels"]) for e in insp.get_enums()}
        cat["sequences"] = sorted(insp.get_sequence_names())
    return cat


def _table(conn: Connection, insp: sa.Inspector, name: str) -> dict[str, Any]:
    engine = conn.dialect.name
    columns = {}
    for c in insp.get_columns(name):
        columns[c["name"]] = {
            "type": _type(c["type"], conn.dialect),
            "nullable": bool(c["nullable"]),
            "default": _default(c.get("default"), engine),
            "comment": c.get("comment"),
            **({"identity": True} if c.get("identity") else {}),
            **({"autoincrement": True} if c.get("autoincrement") is True else {}),
        }
    pk = insp.get_pk_constraint(name)
    fks = {}
    for fk in insp.get_foreign_keys(name):
        opts = fk.get("options") or {}
        fks[fk.get("name") or _anon(fk["constrained_columns"])] = {
            "columns": fk["constrained_columns"],
            "references": f"{fk['referred_table']}({', '.join(fk['referred_columns'])})",
            "ondelete": (opts.get("ondelete") or "NO ACTION").upper(),
            "onupdate": (opts.get("onupdate") or "NO ACTION").upper(),
        }
    uniques = {u.get("name") or _anon(u["column_names"]): u["column_names"] for u in insp.get_unique_constraints(name)}
    if engine == "sqlite":
        for cols in _sqlite_column_uniques(conn, name):
            if cols not in uniques.values():
                uniques[_anon(cols)] = cols
    checks = {c.get("name") or _anon([c["sqltext"]]): _sql(c["sqltext"]) for c in insp.get_check_constraints(name)}
    indexes = {}
    for ix in insp.get_indexes(name):
        entry: dict[str, Any] = {"columns": ix["column_names"], "unique": bool(ix["unique"])}
        if any(c is None for c in ix["column_names"]):
            entry["expressions"] = [_sql(e) for e in ix.get("expressions") or []]
        where = {k: v for k, v in (ix.get("dialect_options") or {}).items() if k.endswith("_where")}
        if where:
            entry["where"] = _sql(str(next(iter(where.values()))))
        indexes[ix["name"]] = entry
    for ix_name, definition in _index_definitions(conn, name).items():
        if ix_name not in indexes and engine != "sqlite":
            continue  # PostgreSQL lists primary-key indexes here; the primary key is recorded already
        # SQLAlchemy skips SQLite expression indexes: the engine's own text still names them
        unique = definition.upper().startswith("CREATE UNIQUE")
        indexes.setdefault(ix_name, {"columns": [None], "unique": unique})["definition"] = definition
    try:
        comment = insp.get_table_comment(name).get("text")
    except NotImplementedError:
        comment = None
    return {"columns": columns, "primary_key": pk.get("constrained_columns") or [], "foreign_keys": fks,
            "unique": uniques, "checks": checks, "indexes": indexes, "comment": comment}


def _sqlite_column_uniques(conn: Connection, table: str) -> list[list[str]]:
    """SQLite: the columns of each UNIQUE constraint, column-level ones (``name TEXT UNIQUE``) included, which the
    inspector does not report (SQLite keeps them as automatic indexes only)."""
    q = conn.dialect.identifier_preparer.quote
    out = []
    for row in conn.execute(sa.text(f"PRAGMA index_list({q(table)})")).mappings():
        if row["origin"] == "u":
            info = conn.execute(sa.text(f"PRAGMA index_info({q(row['name'])})")).mappings()
            out.append([r["name"] for r in sorted(info, key=lambda r: r["seqno"])])
    return out


def _index_definitions(conn: Connection, table: str) -> dict[str, str]:
    """The engine's own text of each index, where the catalog keeps one (catches partial/expression details)."""
    engine = conn.dialect.name
    if engine == "postgresql":
        rows = conn.execute(sa.text(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = :t"
        ), {"t": table})
    elif engine == "sqlite":
        rows = conn.execute(sa.text(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = :t AND sql IS NOT NULL"
        ), {"t": table})
    else:
        return {}
    return {n: _sql(d) for n, d in rows}


def _type(t: sa.types.TypeEngine, dialect: sa.Dialect) -> str:
    try:
        text = t.compile(dialect=dialect)
    except Exception:  # noqa: BLE001 - a type the dialect cannot render is shown by its repr
        text = repr(t)
    return re.sub(r"\s+", " ", text).strip()


def _default(value: str | None, engine: str) -> str | None:
    if value is None:
        return None
    text = _sql(value)
    while text.startswith("(") and text.endswith(")") and _balanced(text[1:-1]):
        text = text[1:-1].strip()
    if engine == "mysql" and text.upper() == "NULL":
        return None  # MariaDB reports DEFAULT NULL for every nullable column
    return text


def _balanced(text: str) -> bool:
    depth = 0
    for ch in text:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0


def _sql(text: str) -> str:
    """Whitespace and identifier quoting normalised, so two spellings of one expression compare equal."""
    text = re.sub(r"[`\"]", "", str(text))
    return re.sub(r"\s+", " ", text).strip()


def _anon(parts: list[Any]) -> str:
    return "(unnamed " + ", ".join(str(p) for p in parts) + ")"


def diff_catalogs(before: Catalog, after: Catalog) -> list[str]:
    """Every difference between two snapshots, one line each: ``path: before -> after``; [] when equal."""
    out: list[str] = []
    _diff(before, after, "", out)
    return out


def _diff(a: Any, b: Any, path: str, out: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            sub = f"{path}.{key}" if path else str(key)
            if key not in b:
                out.append(f"{sub}: only before ({_short(a[key])})")
            elif key not in a:
                out.append(f"{sub}: only after ({_short(b[key])})")
            else:
                _diff(a[key], b[key], sub, out)
    elif a != b:
        out.append(f"{path}: {_short(a)} -> {_short(b)}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


# --- across engines ----------------------------------------------------------------------------------------
def portable(cat: Catalog) -> Catalog:
    """The parts of a snapshot that should agree on every engine: tables, columns with a type family and
    nullability, keys, named checks, indexes by columns. Engine spellings (TINYINT(1) for boolean, jsonb vs JSON,
    native ENUM vs VARCHAR + CHECK) become the logical type so that what remains is a real difference."""
    tables = {}
    enums = cat.get("enums", {})
    for name, t in cat["tables"].items():
        as_enum = _check_enums(t)
        tables[name] = {
            "columns": {c: {"type": as_enum.get(c, (_family(v["type"], enums), None))[0], "nullable": v["nullable"],
                            "has_default": _declared_default(v["default"])}
                        for c, v in t["columns"].items()},
            "primary_key": t["primary_key"],
            # keyed by what they constrain, not by name: engines (and Django per engine) name them differently,
            # and SQLite leaves an inline REFERENCES unnamed
            "foreign_keys": {f"({', '.join(fk['columns'])}) -> {fk['references']}": {"ondelete": fk["ondelete"]}
                             for fk in t["foreign_keys"].values()},
            "checks": sorted(n for n in t["checks"]
                             if not n.startswith("(unnamed") and n not in {k for _, k in as_enum.values()}),
            "indexes": _portable_indexes(t),
        }
    return {"tables": tables}


def _portable_indexes(t: dict[str, Any]) -> dict[str, dict[str, bool]]:
    """Indexes by their columns, unique constraints among them (PostgreSQL and MariaDB list a unique constraint's
    index as an index, SQLite only as a constraint). A plain index on exactly a foreign key's columns is left out:
    MariaDB/MySQL make one for every foreign key whether it is declared or not (Django declares it on the other
    engines only), so it tells nothing about the chain."""
    fk_columns = {tuple(fk["columns"]) for fk in t["foreign_keys"].values()}
    out: dict[str, dict[str, bool]] = {}
    for name, ix in t["indexes"].items():
        if name == "PRIMARY" or (not ix["unique"] and tuple(ix["columns"]) in fk_columns):
            continue
        key = f"({', '.join(ix['columns'])})" if None not in ix["columns"] else name  # expression index: its name
        out[key] = {"unique": out.get(key, {}).get("unique", False) or ix["unique"]}
    for columns in t.get("unique", {}).values():
        out[f"({', '.join(columns)})"] = {"unique": True}
    return out


_IN_LIST = re.compile(r"^\(*\s*(\w+)\s+IN\s*\(([^()]*)\)\s*\)*$", re.IGNORECASE)


def _check_enums(t: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """{column: (enum family, check name)} for string columns limited by ``CHECK (col IN ('a', 'b'))``: how
    SQLAlchemy's Enum is spelled where the engine has no enum type (SQLite)."""
    out = {}
    for check_name, sql in t["checks"].items():
        m = _IN_LIST.match(sql)
        if m and m.group(1) in t["columns"] and "CHAR" in t["columns"][m.group(1)]["type"].upper():
            labels = [v.strip().strip("'") for v in m.group(2).split(",")]
            out[m.group(1)] = ("enum(" + ", ".join(labels) + ")", check_name)
    return out


def _declared_default(default: str | None) -> bool:
    # PostgreSQL shows a serial column's sequence as its default; the other engines call it autoincrement
    return default is not None and not default.startswith("nextval(")


_FAMILIES = [
    (r"^(INTEGER|INT|INT4|SERIAL)(\(\d+\))?$", "integer"),
    (r"^(BIGINT|INT8)(\(\d+\))?$", "bigint"),
    (r"^(SMALLINT|INT2)$", "smallint"),
    (r"^(BOOLEAN|BOOL|TINYINT\(1\))$", "boolean"),
    (r"^(JSON|JSONB|LONGTEXT)( |$)", "json"),  # MariaDB: JSON is LONGTEXT ... COLLATE utf8mb4_bin
    (r"^(TEXT|CLOB|MEDIUMTEXT)$", "text"),
    (r"^(DATETIME|TIMESTAMP|TIMESTAMP WITHOUT TIME ZONE)$", "datetime"),
    (r"^(TIMESTAMP WITH TIME ZONE|TIMESTAMPTZ)$", "datetime_tz"),
]


def _family(type_text: str, enums: dict[str, list[str]]) -> str:
    if type_text.lower() in enums:
        return "enum(" + ", ".join(enums[type_text.lower()]) + ")"
    m = re.match(r"^ENUM\((.*)\)$", type_text, re.IGNORECASE)
    if m:
        return "enum(" + ", ".join(v.strip().strip("'").lower() for v in m.group(1).split(",")) + ")"
    for pattern, family in _FAMILIES:
        if re.match(pattern, type_text, re.IGNORECASE):
            return family
    m = re.match(r"^(?:NUMERIC|DECIMAL)\((\d+), ?(\d+)\)$", type_text, re.IGNORECASE)
    if m:
        return f"numeric({m.group(1)},{m.group(2)})"
    m = re.match(r"^(?:VARCHAR|CHARACTER VARYING|NVARCHAR)\((\d+)\)$", type_text, re.IGNORECASE)
    if m:
        return f"varchar({m.group(1)})"
    m = re.match(r"^(?:CHAR|CHARACTER|NCHAR)\((\d+)\)$", type_text, re.IGNORECASE)
    if m:
        return f"char({m.group(1)})"
    return type_text.lower()
