"""The seeded run: each revision upgraded on populated tables, timed, and watched by a probe connection that
samples the locks every other session of the scratch database holds on user tables, with each table's physical
identity compared before and after to catch rewrites.

The probe watches the whole scratch database, not one connection: the database is the run's alone, so every lock
in it is the migration's, whichever connection the tool used (the one dbmatrix offers, one alembic's stock env.py
builds with ``engine_from_config``, one yoyo opens per migration). A revision whose migration the probe never saw
(no statement through SQLAlchemy's or yoyo's cursors, no lock from any session) has no lock verdict: ``unsupported``.

PostgreSQL: ``pg_locks`` and ``pg_class.relfilenode``. MariaDB: ``information_schema.METADATA_LOCK_INFO`` (the
``metadata_lock_info`` plugin; ``ci/provision`` installs it, a user's server may not have it) and InnoDB's table id,
which changes when ALTER TABLE rebuilds the table. MySQL 8 exposes metadata locks through performance_schema
only, which this probe does not read yet: there the check says so."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine

from .catalog import TOOL_TABLES, snapshot
from .connections import sync_engine
from .seed import seed_empty_tables
from .walk import Chain, describe

SAMPLE_EVERY_S = 0.002
PROBE_DEADLINE_S = 600


@dataclass(frozen=True)
class LockSource:
    """Where one engine shows the locks a connection holds on the current schema's tables."""

    locks_sql: str  # (session, table, mode) held by every session but the probe's own
    identity_sql: str  # (table, physical id): a different id after a statement means the table was rewritten
    write_blocking: tuple[str, ...]  # modes that block writers on the table while held
    exclusive: str  # the mode that blocks readers too
    identity_name: str  # what the physical id is called, for the finding


POSTGRES = LockSource(
    locks_sql=(
        # client backends only: autovacuum, woken by the seeding, takes its own locks on the same tables
        "SELECT l.pid, c.relname, l.mode FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
        "JOIN pg_stat_activity a ON a.pid = l.pid AND a.backend_type = 'client backend' "
        "WHERE l.pid <> pg_backend_pid() AND l.granted AND l.locktype = 'relation' AND c.relkind IN ('r', 'p') "
        "AND c.relnamespace = current_schema()::regnamespace "
        "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"),
    identity_sql=("SELECT relname, relfilenode FROM pg_class WHERE relkind IN ('r', 'p') "
                  "AND relnamespace = current_schema()::regnamespace"),
    write_blocking=("ShareLock", "ShareRowExclusiveLock", "ExclusiveLock", "AccessExclusiveLock"),
    exclusive="AccessExclusiveLock",
    identity_name="relfilenode",
)
MARIADB = LockSource(
    locks_sql=("SELECT THREAD_ID, TABLE_NAME, LOCK_MODE FROM information_schema.METADATA_LOCK_INFO "
               "WHERE THREAD_ID <> CONNECTION_ID() AND TABLE_SCHEMA = DATABASE() "
               "AND LOCK_TYPE = 'Table metadata lock'"),
    # InnoDB names tables 'schema/table' (with schema and table in its file-name encoding; scratch names are
    # plain ASCII identifiers, so they match as they are)
    identity_sql=("SELECT SUBSTRING(NAME, LENGTH(DATABASE()) + 2), TABLE_ID FROM information_schema.INNODB_SYS_TABLES "
                  "WHERE NAME LIKE CONCAT(DATABASE(), '/%')"),
    write_blocking=("MDL_SHARED_NO_WRITE", "MDL_SHARED_NO_READ_WRITE", "MDL_EXCLUSIVE"),
    exclusive="MDL_EXCLUSIVE",
    identity_name="InnoDB table id",
)


def lock_source(conn: Connection) -> LockSource | None:
    """The lock source for this connection's engine; None when it shows none (see ``lock_view_missing``)."""
    if conn.dialect.name == "postgresql":
        return POSTGRES
    if conn.dialect.name == "mysql" and lock_view_missing(conn) is None:
        return MARIADB
    return None


def _autocommit(dbapi_conn: Any) -> None:
    """Autocommit on a DBAPI connection: an attribute in psycopg, a method in the MySQL drivers."""
    if callable(getattr(dbapi_conn, "autocommit", None)):
        dbapi_conn.autocommit(True)
    else:
        dbapi_conn.autocommit = True


class LockProbe:
    """The locks every other session of the scratch database holds on user tables, seen from a connection of its
    own: sampled every few ms by a thread (long statements), and right after each statement of the migration (the
    locks a transaction keeps until commit, however short the statement was)."""

    def __init__(self, engine: sa.Engine, source: LockSource):
        self.engine = engine
        # (table, mode) -> continuous holds [start, end]: a lock released and taken again is two holds
        self.seen: dict[tuple[str, str], list[list[float]]] = {}
        self.statements = 0  # statements of the migration seen finishing (each followed by a sample)
        self.sessions: set[Any] = set()  # server ids of the sessions seen holding a lock
        self.error: str | None = None
        self._previous: set[tuple[str, str]] = set()
        self._mutex = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        # a raw DBAPI connection: its queries are not statements SQLAlchemy's event hooks would see
        self._conn = engine.raw_connection()
        # autocommit on the DBAPI connection itself: an open transaction here would make CREATE INDEX
        # CONCURRENTLY wait for it
        _autocommit(self._conn.driver_connection)
        self._sql = source.locks_sql

    def __enter__(self) -> LockProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(30)
        self._conn.close()

    def after_statement(self, *_: Any) -> None:
        """The hook run after each statement of the migration: counted (the probe saw the migration run), then
        a sample while the statement's transaction still holds its locks."""
        self.statements += 1
        self.sample()

    def sample(self) -> None:
        """Record what the other sessions hold now (safe from any thread)."""
        with self._mutex:
            if self.error is not None:
                return
            try:
                cur = self._conn.cursor()
                cur.execute(self._sql)
                rows = cur.fetchall()
                cur.close()
                current = {(t, m) for _, t, m in rows}
                self.sessions.update(s for s, _, _ in rows)
            except Exception as exc:  # noqa: BLE001 - reported with the result, the migration goes on
                self.error = describe(exc)
                return
            now = time.perf_counter()
            for key in current:
                holds = self.seen.setdefault(key, [])
                if key in self._previous:
                    holds[-1][1] = now
                else:
                    holds.append([now, now])
            self._previous = current

    def _run(self) -> None:
        deadline = time.monotonic() + PROBE_DEADLINE_S
        while not self._stop.is_set() and time.monotonic() < deadline:
            self.sample()
            self._stop.wait(SAMPLE_EVERY_S)

    def unseen(self) -> str | None:
        """Why this probe cannot vouch that it watched the migration (None when it saw it run)."""
        if self.statements or self.sessions:
            return None
        return ("the probe saw no statement of this revision's migration (neither through SQLAlchemy's engines nor "
                "through yoyo's cursors) and no session holding a lock in the scratch database: the tool ran it "
                "where the probe cannot see, so no lock verdict")

    def held(self) -> list[tuple[str, str, float]]:
        """(table, mode, longest continuous hold in ms), sampling resolution a few ms."""
        return [(t, m, round(max(b - a for a, b in holds) * 1000 + SAMPLE_EVERY_S * 1000, 1))
                for (t, m), holds in sorted(self.seen.items())]


class ObservedCursor:
    """A DBAPI cursor that calls ``hook`` after each ``execute``; everything else is the cursor's own."""

    def __init__(self, cursor: Any, hook: Callable[..., None]):
        self._cursor, self._hook = cursor, hook

    def execute(self, *args: Any, **kw: Any) -> Any:
        result = self._cursor.execute(*args, **kw)
        self._hook()
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)

    def __iter__(self) -> Any:
        return iter(self._cursor)


@contextmanager
def after_each_statement(chain: Chain, hook: Callable[..., None]) -> Iterator[None]:
    """Call ``hook`` after every statement the chain's tool executes: alembic through SQLAlchemy's engine events,
    yoyo through the cursors its backend hands its steps."""
    observe = getattr(chain, "observe", None)
    if observe is not None:
        with observe(hook):
            yield
        return
    sa.event.listen(Engine, "after_cursor_execute", hook)
    try:
        yield
    finally:
        sa.event.remove(Engine, "after_cursor_execute", hook)


def seeded_run(chain: Chain, conn: Connection, engine: sa.Engine, rows: int,
               lock_budget_ms: float | None, observer_url: URL | None = None) -> dict[str, Any]:
    """Upgrade revision by revision on seeded tables; duration everywhere, locks and rewrites where the engine
    shows them (PostgreSQL; MariaDB with metadata_lock_info). ``conn`` seeds between revisions (committed, so it
    holds no lock while the migration runs). Locks and table identities are read through ``observer_url`` (the
    same database as the target's own user: MariaDB shows them only with PROCESS, which a sandboxed login lacks),
    else through ``engine``."""
    observer = sync_engine(observer_url) if observer_url is not None else engine
    try:
        return _seeded_run(chain, conn, observer, rows, lock_budget_ms)
    finally:
        if observer is not engine:
            observer.dispose()


def _identities(observer: sa.Engine, identity: Any) -> dict[str, Any]:
    with observer.connect() as oc:
        return dict(oc.execute(identity).all())


def _seeded_run(chain: Chain, conn: Connection, engine: sa.Engine, rows: int,
                lock_budget_ms: float | None) -> dict[str, Any]:
    out: dict[str, Any] = {"rows": rows, "revisions": [], "seed": {}}
    with engine.connect() as oc:  # what the observer may see, not the migration's login
        if oc.dialect.name == "mysql":
            out["lock_view_missing"] = lock_view_missing(oc)
        source = lock_source(oc)
    identity = sa.text(source.identity_sql) if source else None
    steps = chain.steps()
    for step in steps:
        counts = seed_empty_tables(conn, snapshot(conn), rows)
        out["seed"].update({t: c for t, c in counts.items() if isinstance(c, str)})
        populated = {t: c for t, c in counts.items() if isinstance(c, int) and c > 0}
        rec: dict[str, Any] = {"revision": step.id, "rows": rows}
        if conn.in_transaction():
            conn.commit()
        ids_before = _identities(engine, identity) if identity is not None else {}
        probe = LockProbe(engine, source) if source is not None else None
        if conn.in_transaction():
            conn.commit()
        t0 = time.perf_counter()
        try:
            if probe is not None:
                with probe, after_each_statement(chain, probe.after_statement):
                    chain.up(step)
            else:
                chain.up(step)
        except Exception as exc:  # noqa: BLE001 - the walk reports the failure; here it ends the run
            rec["error"] = describe(exc)
            out["revisions"].append(rec)
            return out
        rec["ms"] = round((time.perf_counter() - t0) * 1000, 1)
        if source is not None and probe is not None and identity is not None:
            rec["locks"] = _lock_findings(step.id, source, probe, populated, lock_budget_ms)
            ids_after = _identities(engine, identity)
            for table, before in sorted(ids_before.items()):
                if table in ids_after and ids_after[table] != before and populated.get(table):
                    rec["locks"].append({"revision": step.id, "table": table, "rewrite": True, "rows": populated[table],
                                         "flag": f"{table} ({populated[table]} rows) was rewritten "
                                                 f"({source.identity_name} {before} -> {ids_after[table]})"})
            if probe.error:
                rec["probe_error"] = probe.error
            elif probe.unseen():
                rec["unseen"] = probe.unseen()
        out["revisions"].append(rec)
    return out


def lock_view_missing(conn: Connection) -> str | None:
    """Why this MariaDB/MySQL server shows no metadata locks to the probe, or None when it does.
    (Installing the plugin is a server-wide change dbmatrix leaves to the server's owner.)"""
    has_view = conn.execute(sa.text(
        "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'information_schema' "
        "AND TABLE_NAME = 'METADATA_LOCK_INFO'")).scalar_one()
    conn.commit()
    if has_view:
        try:  # both views are shown only to a login with PROCESS (MariaDB)
            conn.execute(sa.text("SELECT COUNT(*) FROM information_schema.INNODB_SYS_TABLES WHERE NAME = ''")).all()
        except sa.exc.DBAPIError as exc:
            conn.rollback()
            return (f"this login may not read InnoDB's tables and metadata locks ({describe(exc)}); MariaDB shows "
                    "them with the PROCESS privilege")
        return None
    return ("this server exposes no metadata locks to the probe: the metadata_lock_info plugin is not installed "
            "(MariaDB: INSTALL SONAME 'metadata_lock_info'; MySQL's performance_schema is not read yet)")


def _lock_findings(revision: str, source: LockSource, probe: LockProbe, populated: dict[str, int],
                   budget_ms: float | None) -> list[dict]:
    """Every lock seen on a user table. The exclusive mode on a populated table is marked ``access_exclusive``;
    with a budget, a write-blocking lock held longer than it on a populated table is flagged (fails the check)."""
    out = []
    for table, mode, held_ms in probe.held():
        if table in TOOL_TABLES:
            continue
        f: dict[str, Any] = {"revision": revision, "table": table, "lock": mode, "held_ms": held_ms,
                             "rows": populated.get(table, 0)}
        if mode == source.exclusive and populated.get(table):
            f["access_exclusive"] = True
        if budget_ms is not None and mode in source.write_blocking and populated.get(table) and held_ms >= budget_ms:
            f["flag"] = f"{mode} on {table} ({populated[table]} rows) held {held_ms} ms (budget {budget_ms:g} ms)"
        out.append(f)
    return out
