"""Capabilities: one documented entry per thing an engine may or may not do.

Cases ask ``requires("returning_update")`` instead of branching on engine names. A profile is the set of
capabilities of an engine at a version; a missing capability makes the cell ``unsupported`` with the reason
below. Doubtful capabilities that depend on configuration are probed per target instead, once per URL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CAPABILITIES: dict[str, str] = {
    "transactional_ddl": "DDL inside a transaction is rolled back with it",
    "isolation_levels": "SET TRANSACTION ISOLATION LEVEL with read committed / repeatable read / serializable",
    "returning_insert": "INSERT ... RETURNING",
    "returning_update": "UPDATE ... RETURNING",
    "returning_delete": "DELETE ... RETURNING",
    "upsert_on_conflict": "INSERT ... ON CONFLICT DO UPDATE / DO NOTHING",
    "upsert_on_duplicate_key": "INSERT ... ON DUPLICATE KEY UPDATE",
    "json": "a JSON column type (or JSON functions over text)",
    "jsonb": "binary JSONB with containment operators (@>) and GIN indexes",
    "json_path": "SQL/JSON path queries (jsonb_path_exists / JSON_EXISTS)",
    "json_contains": "JSON containment test (jsonb @> / JSON_CONTAINS)",
    "json_arrow_operators": "the -> / ->> JSON extraction operators",
    "arrays": "SQL array columns and operators (@>, &&, = ANY)",
    "interval": "an INTERVAL column type",
    "uuid_type": "a native UUID column type",
    "timestamptz": "a timestamp type that stores an absolute instant and converts to the session time zone",
    "time_zone_setting": "a session time zone setting (SET TIME ZONE / SET time_zone)",
    "cte": "WITH common table expressions",
    "cte_recursive": "WITH RECURSIVE",
    "cte_dml": "data-modifying statements inside WITH",
    "window_functions": "window functions (OVER, named WINDOW)",
    "for_update": "SELECT ... FOR UPDATE row locks",
    "skip_locked": "SELECT ... FOR UPDATE SKIP LOCKED",
    "nowait": "SELECT ... FOR UPDATE NOWAIT",
    "listen_notify": "LISTEN / NOTIFY",
    "advisory_locks": "advisory locks (pg_advisory_lock / GET_LOCK)",
    "advisory_xact_locks": "transaction-level advisory locks, released at COMMIT/ROLLBACK (pg_advisory_xact_lock)",
    "savepoints": "SAVEPOINT / ROLLBACK TO SAVEPOINT",
    "server_side_cursors": "cursors that stream rows from the server",
    "server_prepared_statements": "statements prepared once on the server and executed many times (PREPARE / the "
    "extended or binary protocol)",
    "create_database": "CREATE DATABASE (used for the scratch space)",
    "lock_introspection": "pg_locks and relfilenode: the table locks a statement holds, whether it rewrote a table",
    "lock_wait_observation": "another connection can see that a session waits on a row lock, and for whom "
    "(pg_isolation_test_session_is_blocked, crdb_internal.cluster_locks, InnoDB lock tables, SQLite's busy handler)",
    "squawk_lint": "SQL in PostgreSQL's dialect, which squawk lints for unsafe migrations",
}


@dataclass(frozen=True)
class Gate:
    """A capability that an engine has from ``since`` (inclusive) on; ``None`` means every version."""

    name: str
    since: tuple[int, ...] | None = None


def _gates(*items: str | tuple[str, tuple[int, ...]]) -> list[Gate]:
    return [Gate(i) if isinstance(i, str) else Gate(i[0], i[1]) for i in items]


_ALL_PG = [c for c in CAPABILITIES if c not in ("upsert_on_duplicate_key",)]

# engine -> gates. Versions are the engine's own (MariaDB 10.5 is (10, 5)).
PROFILES: dict[str, list[Gate]] = {
    "postgresql": _gates(*[c for c in _ALL_PG if c != "json_path"], ("json_path", (12,))),
    "cockroachdb": _gates(
        "transactional_ddl", "isolation_levels", "returning_insert", "returning_update", "returning_delete",
        "upsert_on_conflict", "json", "jsonb", "arrays", "interval", "uuid_type", "timestamptz",
        "time_zone_setting", "cte", "cte_recursive", "cte_dml", "window_functions", "for_update", "skip_locked",
        "nowait", "savepoints", "server_side_cursors", "create_database", ("json_path", (24, 1)),
        "server_prepared_statements",
        "json_contains", "json_arrow_operators", ("lock_wait_observation", (22, 1)),
    ),
    "mariadb": _gates(
        "isolation_levels", "upsert_on_duplicate_key", "json", "time_zone_setting", "for_update", "savepoints",
        "advisory_locks", "server_side_cursors", "create_database", "server_prepared_statements",
        ("returning_delete", (10, 0)), ("returning_insert", (10, 5)), ("cte", (10, 2)), ("cte_recursive", (10, 2)),
        ("window_functions", (10, 2)), ("nowait", (10, 3)), ("skip_locked", (10, 6)), ("json_path", (10, 2)),
        ("uuid_type", (10, 7)), ("json_contains", (10, 2, 3)), "lock_wait_observation",
    ),
    "mysql": _gates(
        "isolation_levels", "upsert_on_duplicate_key", "json", "time_zone_setting", "for_update", "savepoints",
        "advisory_locks", "server_side_cursors", "create_database", "server_prepared_statements",
        ("cte", (8, 0)), ("cte_recursive", (8, 0)), ("window_functions", (8, 0)), ("nowait", (8, 0)),
        ("skip_locked", (8, 0)), ("json_path", (8, 0, 21)), ("json_contains", (5, 7)),
        ("json_arrow_operators", (5, 7, 13)), "lock_wait_observation",
    ),
    "sqlite": _gates(
        "transactional_ddl", "json", "cte", "cte_recursive", "savepoints", "lock_wait_observation",
        # in-process, SQLite steps a statement one row at a time: a cursor streams rows as the engine produces them
        "server_side_cursors",
        ("upsert_on_conflict", (3, 24)), ("window_functions", (3, 25)), ("returning_insert", (3, 35)),
        ("returning_update", (3, 35)), ("returning_delete", (3, 35)), ("json_arrow_operators", (3, 38)),
    ),
}


def parse_version(text: str | None) -> tuple[int, ...]:
    """Leading numeric components of a version string.

    '10.11.19-MariaDB-0+deb12u1' -> (10, 11, 19); '15.19 (Debian ...)' -> (15, 19); '18beta1' -> (18,).
    """
    m = re.match(r"v?(\d+(?:\.\d+)*)", (text or "").strip())
    return tuple(int(p) for p in m[1].split(".")) if m else ()


def profile(engine: str, version: tuple[int, ...]) -> frozenset[str]:
    """Capabilities of ``engine`` at ``version`` (unknown engine: nothing is assumed)."""
    return frozenset(g.name for g in PROFILES.get(engine, []) if g.since is None or version >= g.since)


def why_missing(capability: str, engine: str, version: tuple[int, ...]) -> str:
    """One line saying why a capability is absent, for the ``unsupported`` cell's detail."""
    if capability not in CAPABILITIES:
        raise KeyError(f"unknown capability {capability!r}")
    gate = next((g for g in PROFILES.get(engine, []) if g.name == capability), None)
    ver = ".".join(map(str, version)) or "?"
    if gate is not None and gate.since is not None:
        since = ".".join(map(str, gate.since))
        return f"{engine} {ver} lacks {CAPABILITIES[capability]} (needs {since}+)"
    return f"{engine} {ver} lacks {CAPABILITIES[capability]}"


# What an engine answers when a case uses a capability its profile lacks: its "cannot parse this" or "no such
# function/type" error. The plugin predicts these; any other error (a typo, a missing table) is a deviation.
REFUSALS: dict[str, tuple[str, ...]] = {
    "postgresql": ("42601",),  # syntax_error
    "cockroachdb": ("42601",),
    "mariadb": ("1064",),  # ER_PARSE_ERROR
    "mysql": ("1064",),
    "sqlite": ("SQLITE_ERROR",),  # SQLite reports syntax errors and unknown functions alike
}
# Where the refusal is not a syntax error: (engine, capability) -> errors.
REFUSAL_OVERRIDES: dict[tuple[str, str], tuple[str, ...]] = {
    # no LISTEN in SQL: the adapter says the driver has no notification API (DriverError class "Unsupported")
    **{(engine, "listen_notify"): ("Unsupported",) for engine in ("mariadb", "mysql", "sqlite")},
    # MariaDB parses a column type it does not know and names it: ER_UNKNOWN_DATA_TYPE 4161
    # CockroachDB parses LISTEN and answers "unimplemented" (feature_not_supported 0A000), its issue 41522
    ("cockroachdb", "listen_notify"): ("0A000",),
    ("mariadb", "jsonb"): ("4161",),
    ("mariadb", "interval"): ("4161",),
}


def refusal_errors(capability: str, engine: str) -> tuple[str, ...]:
    """The errors ``engine`` is predicted to raise for SQL that needs ``capability`` it lacks."""
    if capability not in CAPABILITIES:
        raise KeyError(f"unknown capability {capability!r}")
    return REFUSAL_OVERRIDES.get((engine, capability), REFUSALS.get(engine, ()))


def profile_entry(capability: str, engine: str) -> str:
    """Which profile entry to change when ``engine`` turns out to have ``capability`` after all."""
    return f"PROFILES[{engine!r}] in dbmatrix/targets/capabilities.py: add {capability!r} (with its version gate)"
