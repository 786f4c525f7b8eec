"""Run one migration project on one target's scratch database and collect what the checks judge."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection

from ..targets.admin import admin_drivername
from ..targets.urls import kind_of, redact
from .alembic_project import AlembicChain, AlembicProject
from .catalog import TOOL_TABLES, Catalog, snapshot
from .guard import ForeignDatabase, scratch_guard
from .walk import Step, Walk, walk_chain


@dataclass
class MigrateOptions:
    models: Any = None  # a MetaData, for migrate.model_drift
    seed_rows: int = 50_000
    lock_budget_ms: float | None = None  # off: lock hold times are reported, a rewrite fails the check
    offline: bool = True


# Every wait is bounded: a migration stuck on a lock fails instead of hanging the run.
LOCK_TIMEOUT_S = 30
STATEMENT_TIMEOUT_S = 600
_SESSION_BOUNDS = {
    "postgresql": [f"SET lock_timeout = '{LOCK_TIMEOUT_S}s'", f"SET statement_timeout = '{STATEMENT_TIMEOUT_S}s'"],
    "mysql": [f"SET SESSION lock_wait_timeout = {LOCK_TIMEOUT_S}",
              f"SET SESSION innodb_lock_wait_timeout = {LOCK_TIMEOUT_S}",
              f"SET SESSION max_statement_time = {STATEMENT_TIMEOUT_S}"],
    "sqlite": [f"PRAGMA busy_timeout = {LOCK_TIMEOUT_S * 1000}"],
}


def sync_engine(url: URL) -> sa.Engine:
    """A plain (sync) SQLAlchemy engine on ``url`` with the admin DBAPI for its kind; no pooling, bounded waits."""
    kind = kind_of(url)
    engine = sa.create_engine(url.set(drivername=admin_drivername(kind)), poolclass=sa.pool.NullPool)

    @sa.event.listens_for(engine, "connect")
    def _bound(dbapi_conn: Any, record: Any) -> None:
        bound_session(kind, dbapi_conn)

    return engine


def bound_session(kind: str, dbapi_conn: Any) -> None:
    """Put lock and statement timeouts on a DBAPI connection (ours, or the one yoyo opened). psycopg's automatic
    server-side prepared statements are turned off: behind a transaction pooler (PgBouncer) they collide."""
    if hasattr(dbapi_conn, "prepare_threshold"):
        dbapi_conn.prepare_threshold = None
    cur = dbapi_conn.cursor()
    for sql in _SESSION_BOUNDS.get(kind, []):
        try:
            cur.execute(sql)
        except Exception:  # noqa: BLE001, S110 - MySQL has no max_statement_time: the others still apply
            dbapi_conn.rollback()
    cur.close()
    if kind != "sqlite":
        dbapi_conn.commit()


def committed_snapshot(conn: Connection) -> Catalog:
    cat = snapshot(conn)
    if conn.in_transaction():
        conn.commit()  # so the next alembic command opens (and commits) its own transaction
    return cat


def walk_alembic(project: AlembicProject, url: URL, target: str, opts: MigrateOptions) -> Walk:
    """upgrade / downgrade / re-upgrade every revision on the scratch database at ``url`` (empty on entry)."""
    engine = sync_engine(url)
    url = engine.url
    walk = Walk(target=target, engine=engine.dialect.name, tool="alembic")
    try:
        with scratch_guard(url) as guard, engine.connect() as conn:
            chain = AlembicChain(project, url, conn)
            try:
                walk.heads = project.heads(url)
            except Exception as exc:  # noqa: BLE001 - judged by migrate.single_head
                from .walk import describe

                walk.chain_error = describe(exc)
                return walk
            if len(walk.heads) > 1:
                return walk

            def verify_first(step: Step) -> None:
                if step.id not in chain.applied():
                    raise ForeignDatabase(
                        f"after upgrading {step.id}, the version table of dbmatrix's scratch database "
                        f"{redact(url)} does not show it: env.py migrated another database. Make env.py use "
                        "config.attributes['connection'] or the sqlalchemy.url dbmatrix sets")

            walk_chain(chain, lambda: committed_snapshot(conn), guard.take, walk, verify_first=verify_first)
            if walk.head is not None and opts.models is not None:
                walk.extra["model_drift"] = model_drift(conn, opts.models)
    finally:
        engine.dispose()
    if opts.offline and walk.records:
        walk.extra["offline"] = offline_sql(project, url, [r.step for r in walk.records])
    return walk


def model_drift(conn: Connection, metadata: Any) -> list[str] | str:
    """alembic's autogenerate comparison of ``metadata`` with the live head schema, one line per difference."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    try:
        mc = MigrationContext.configure(conn, opts={
            "compare_type": True,
            "include_name": lambda name, type_, parent: not (type_ == "table" and name in TOOL_TABLES)})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", sa.exc.SAWarning)  # expression indexes it cannot reflect
            diffs = compare_metadata(mc, metadata)
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {exc}"
    finally:
        if conn.in_transaction():
            conn.rollback()
    return [_drift_line(d) for d in diffs]


def _drift_line(diff: Any) -> str:
    if isinstance(diff, list):  # modify_* entries come grouped per column
        return "; ".join(_drift_line(d) for d in diff)
    op, *args = diff
    names = []
    for a in args:
        if isinstance(a, dict):
            continue  # the existing column's keywords
        name = getattr(a, "name", None)
        table = getattr(getattr(a, "table", None), "name", None)
        if name is not None:
            names.append(f"{table}.{name}" if table and table != name else str(name))
        elif isinstance(a, str | int | bool) or a is None:
            names.append(str(a))
        else:
            names.append(type(a).__name__ if not hasattr(a, "compile") else str(a))
    return f"{op} " + " ".join(n for n in names if n and n != "None")


def offline_sql(project: AlembicProject, url: URL, steps: list[Step]) -> dict[str, Any]:
    """Each revision rendered by alembic's offline mode for ``url``'s dialect (or the exception it raised)."""
    from .alembic_project import Revision
    from .walk import describe

    out: dict[str, Any] = {}
    for s in steps:
        try:
            out[s.id] = project.offline_sql(url, Revision(s.id, s.down, s.path, ""))
        except Exception as exc:  # noqa: BLE001
            out[s.id] = RuntimeError(describe(exc))
    return out


ScratchFactory = Callable[[str], tuple[URL, Callable[[], None]]]
