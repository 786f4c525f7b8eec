"""The seeded run: each revision upgraded on populated tables, timed, and (PostgreSQL) watched by a probe
connection that samples ``pg_locks`` for the migrating backend, with each table's relfilenode compared before
and after to catch rewrites."""

from __future__ import annotations

import threading
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .catalog import TOOL_TABLES, snapshot
from .seed import seed_empty_tables
from .walk import Chain, describe

SAMPLE_EVERY_S = 0.002
PROBE_DEADLINE_S = 600
# modes that block writers (and readers, for AccessExclusiveLock) on the table while held
WRITE_BLOCKING = ("ShareLock", "ShareRowExclusiveLock", "ExclusiveLock", "AccessExclusiveLock")

_LOCKS_SQL = sa.text(
    "SELECT c.relname, l.mode FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
    "WHERE l.pid = :pid AND l.granted AND l.locktype = 'relation' AND c.relkind IN ('r', 'p') "
    "AND c.relnamespace = current_schema()::regnamespace "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)
_FILENODES_SQL = sa.text(
    "SELECT relname, relfilenode FROM pg_class WHERE relkind IN ('r', 'p') "
    "AND relnamespace = current_schema()::regnamespace"
)


class LockProbe:
    """Samples the locks one backend holds on user tables, from its own connection, until stopped."""

    def __init__(self, engine: sa.Engine, pid: int):
        self.engine, self.pid = engine, pid
        # (table, mode) -> continuous holds [start, end]: a lock released and taken again is two holds
        self.seen: dict[tuple[str, str], list[list[float]]] = {}
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> LockProbe:
        self._ready = threading.Event()
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        deadline = time.monotonic() + PROBE_DEADLINE_S
        try:
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                self._ready.set()
                previous: set[tuple[str, str]] = set()
                while not self._stop.is_set() and time.monotonic() < deadline:
                    now = time.perf_counter()
                    current = {(t, m) for t, m in conn.execute(_LOCKS_SQL, {"pid": self.pid})}
                    for key in current:
                        holds = self.seen.setdefault(key, [])
                        if key in previous:
                            holds[-1][1] = now
                        else:
                            holds.append([now, now])
                    previous = current
                    time.sleep(SAMPLE_EVERY_S)
        except Exception as exc:  # noqa: BLE001 - reported with the result, the migration goes on
            self.error = describe(exc)
        finally:
            self._ready.set()

    def held(self) -> list[tuple[str, str, float]]:
        """(table, mode, longest continuous hold in ms), sampling resolution a few ms."""
        return [(t, m, round(max(b - a for a, b in holds) * 1000 + SAMPLE_EVERY_S * 1000, 1))
                for (t, m), holds in sorted(self.seen.items())]


def seeded_run(chain: Chain, conn: Connection, engine: sa.Engine, rows: int, lock_budget_ms: float) -> dict[str, Any]:
    """Upgrade revision by revision on seeded tables; duration everywhere, locks and rewrites on PostgreSQL."""
    is_pg = conn.dialect.name == "postgresql"
    out: dict[str, Any] = {"rows": rows, "revisions": [], "seed": {}}
    steps = chain.steps()
    for step in steps:
        counts = seed_empty_tables(conn, snapshot(conn), rows)
        out["seed"].update({t: c for t, c in counts.items() if isinstance(c, str)})
        populated = {t: c for t, c in counts.items() if isinstance(c, int) and c > 0}
        rec: dict[str, Any] = {"revision": step.id, "rows": rows}
        nodes_before = dict(conn.execute(_FILENODES_SQL).all()) if is_pg else {}
        # the backend that runs the migration: the chain's own connection when it has one (yoyo)
        pid = (getattr(chain, "backend_pid", None) or (lambda: None))() if is_pg else None
        if is_pg and pid is None:
            pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        if conn.in_transaction():
            conn.commit()
        probe = LockProbe(engine, pid) if is_pg else None
        t0 = time.perf_counter()
        try:
            if probe is not None:
                with probe:
                    chain.up(step)
            else:
                chain.up(step)
        except Exception as exc:  # noqa: BLE001 - the walk reports the failure; here it ends the run
            rec["error"] = describe(exc)
            out["revisions"].append(rec)
            return out
        rec["ms"] = round((time.perf_counter() - t0) * 1000, 1)
        if is_pg and probe is not None:
            rec["locks"] = _lock_findings(step.id, probe, populated, lock_budget_ms)
            nodes_after = dict(conn.execute(_FILENODES_SQL).all())
            conn.commit()
            for table, node in sorted(nodes_before.items()):
                if table in nodes_after and nodes_after[table] != node and populated.get(table):
                    rec["locks"].append({"revision": step.id, "table": table, "rewrite": True, "rows": populated[table],
                                         "flag": f"{table} ({populated[table]} rows) was rewritten (relfilenode "
                                                 f"{node} -> {nodes_after[table]})"})
            if probe.error:
                rec["probe_error"] = probe.error
        out["revisions"].append(rec)
    return out


def _lock_findings(revision: str, probe: LockProbe, populated: dict[str, int], budget_ms: float) -> list[dict]:
    out = []
    for table, mode, held_ms in probe.held():
        if table in TOOL_TABLES:
            continue
        f: dict[str, Any] = {"revision": revision, "table": table, "lock": mode, "held_ms": held_ms,
                             "rows": populated.get(table, 0)}
        if mode in WRITE_BLOCKING and populated.get(table) and held_ms >= budget_ms:
            f["flag"] = f"{mode} on {table} ({populated[table]} rows) held {held_ms} ms (budget {budget_ms:g} ms)"
        out.append(f)
    return out
