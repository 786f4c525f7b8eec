"""Scratch space: each run works in a database (or schema) it created, and drops exactly that.

The safety guard: the name of what we drop is always the name we created in this process, recorded in a
``ScratchSpace``; nothing else is ever dropped, truncated or altered, whatever the URL points at.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL

from ..engines import engine_for
from ..errors import DriverError
from .admin import admin_connection
from .model import Target
from .owner import marker_sql, this_process, write_dir_marker

# SQLSTATE / errno meaning "you may not create a database" -> fall back to a schema
_NO_CREATEDB = {"42501", "1044", "1227"}
# Why that fallback is refused behind a transaction pooler: the schema lives in the user's own database, and
# SET search_path (and any session setting) would stay on whichever pooled server connection ran it, follow none
# of dbmatrix's later statements, and let a case create tables in the user's schemas.
_POOLED_SCHEMA = (
    "may not CREATE DATABASE, and behind a transaction pooler a scratch schema cannot be kept apart (session "
    "settings stay on pooled server connections); grant CREATEDB to this role or use a URL that bypasses the pooler"
)


# How long a replica may take to replay the creation of a scratch database before the cell fails.
REPLAY_TIMEOUT_S = 30.0
_MAX_IDENT = 63  # PostgreSQL's identifier limit (MySQL allows 64)


def scratch_name(run_id: str, *parts: str) -> str:
    """``dbmatrix_<run>_<part>_<part>...``: unique per run and part (target, worker, cell).

    A part with upper-case letters also gets a checksum of its exact text, so targets ``PG`` and ``pg`` never
    share a scratch space. Too long for an identifier, the tail becomes a hash of the full name, so two long
    names never truncate to the same one.
    """
    slug = "_".join(_slug(p) for p in parts if p)
    name = f"dbmatrix_{run_id}_{slug}" if slug else f"dbmatrix_{run_id}"
    if len(name) > _MAX_IDENT:
        name = f"{name[:_MAX_IDENT - 9]}_{zlib.crc32(name.encode()):08x}"
    return name


def _slug(part: str) -> str:
    plain = re.sub(r"[^a-z0-9]+", "_", part.lower()).strip("_")
    return plain if part == part.lower() else f"{plain}_{zlib.crc32(part.encode()):08x}"


@dataclass
class ScratchSpace:
    target: Target
    kind: str  # database | schema | file
    name: str  # what we created: the only thing drop() will remove
    admin_url: URL
    path: Path | None = None

    @property
    def url(self) -> URL:
        """SQLAlchemy URL (no ``+driver``) of this space; a schema is reached through libpq's ``options``."""
        if self.kind == "file":
            assert self.path is not None
            return self.admin_url.set(database=str(self.path / "scratch.db"))
        if self.kind == "schema":
            return self.admin_url.update_query_dict({"options": f"-csearch_path={self.name}"})
        return self.admin_url.set(database=self.name)

    @property
    def init_sql(self) -> list[str]:
        return [f"SET search_path TO {_quote(self.target.kind, self.name)}"] if self.kind == "schema" else []

    def drop(self) -> None:
        """Remove exactly what we created. Safe to call twice."""
        if self.kind == "file":
            if self.path is not None:
                shutil.rmtree(self.path, ignore_errors=True)
                self.path = None
            return
        drop_scratch(self.target.kind, self.admin_url, self.kind, self.name)


def drop_scratch(kind: str, admin_url: URL, scope: str, name: str) -> None:
    """Drop the scratch database or schema ``name`` (one dbmatrix created), ending sessions still in it."""
    assert name.startswith("dbmatrix_"), "refusing to drop something dbmatrix did not name"
    quoted = _quote(kind, name)
    with admin_connection(kind, admin_url) as conn:
        if scope == "schema":
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {quoted} CASCADE")
        elif kind == "postgresql":
            if int(conn.exec_driver_sql("SHOW server_version_num").scalar_one()) >= 130000:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
            else:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted}")
        elif kind == "cockroachdb":
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted} CASCADE")
        else:
            # a session of ours left in a transaction (an interrupted cell) would hold a metadata lock forever
            conn.exec_driver_sql("SET SESSION lock_wait_timeout = 10")
            ids = conn.exec_driver_sql(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = %s AND ID <> CONNECTION_ID()", (name,)
            ).scalars().all()
            for pid in ids:
                try:
                    conn.exec_driver_sql(f"KILL {int(pid)}")
                except Exception:  # noqa: BLE001, S110 - it may have ended by itself meanwhile
                    pass
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted}")


def _quote(kind: str, ident: str) -> str:
    return f"`{ident}`" if kind == "mysql" else f'"{ident}"'


def create_scratch(target: Target, run_id: str, *name_parts: str) -> ScratchSpace:
    """Create the run's scratch space for ``target`` and point ``target.scratch_url`` at it.

    ``name_parts`` make the name unique beyond run and target (e.g. a pytest-xdist worker id).
    """
    space = create_space(target, scratch_name(run_id, target.name, *name_parts), run_id=run_id)
    target.scratch_name = space.name
    try:
        target.scratch_url = space.url if space.kind != "schema" else target.url
        target.init_sql = space.init_sql
        if space.kind == "file" and target.managed:
            target.url = target.scratch_url  # the report then shows where the file was
    except BaseException:
        space.drop()  # never leave behind what we created
        raise
    return space


def create_space(target: Target, name: str, *, run_id: str | None = None) -> ScratchSpace:
    """Create a database named ``name`` (a schema where CREATE DATABASE is refused; a temp dir for SQLite).

    The returned space is the only record of what exists: ``drop()`` removes exactly that. It carries an owner
    marker (run id, pid, host; see owner.py) so that ``dbmatrix clean`` can tell it from anyone else's.
    """
    owner = this_process(run_id or _run_of(name))
    if not name.startswith("dbmatrix_"):
        raise ValueError(f"refusing to create {name!r}: scratch names start with dbmatrix_")
    if target.replica_of:
        raise ValueError(f"target {target.name} is a replica of {target.replica_of}: it never creates anything")
    if target.kind == "sqlite":
        path = Path(tempfile.mkdtemp(prefix=f"{name}_"))
        write_dir_marker(path, "sqlite-scratch", owner.run)
        space = ScratchSpace(target, "file", str(path), target.url, path=path)
        _enable_wal(space.url)
        return space
    quoted = _quote(target.kind, name)
    with admin_connection(target.kind, target.url) as conn:
        try:
            conn.exec_driver_sql(f"CREATE DATABASE {quoted}")
        except Exception as exc:  # noqa: BLE001 - inspect and fall back below
            err = _code(exc)
            if err not in _NO_CREATEDB or target.kind == "mysql":
                raise
            if target.pooler == "transaction":
                raise DriverError(err, "ScratchSchemaBehindPooler", _POOLED_SCHEMA) from None
            conn.exec_driver_sql(f"CREATE SCHEMA {quoted}")
            space = ScratchSpace(target, "schema", name, target.url)
            _stamp(conn, space, marker_sql(target.kind, target.engine, "schema", quoted, owner))
            return space
        space = ScratchSpace(target, "database", name, target.url)
        _stamp(conn, space, marker_sql(target.kind, target.engine, "database", quoted, owner))
        try:
            # Timeouts live on the database, so every connection to it starts bounded, whichever server
            # connection a pooler lends; no session SET is needed (or lost, or leaked to another client).
            timeouts = engine_for(target.kind, target.engine).database_timeouts(name)
            for stmt in timeouts:
                conn.exec_driver_sql(stmt)
        except BaseException:
            space.drop()  # never leave behind what we created
            raise
        target.database_timeouts = bool(timeouts)
    return space


def replica_url(space: ScratchSpace, replica: Target) -> URL:
    """The replica's URL of a space created on its primary (the same database or schema, read there)."""
    if space.kind == "file":
        raise ValueError("a SQLite file has no replica")
    if space.kind == "schema":
        return replica.url.update_query_dict({"options": f"-csearch_path={space.name}"})
    return replica.url.set(database=space.name)


def wait_for_replay(space: ScratchSpace, replica: Target, timeout_s: float = REPLAY_TIMEOUT_S) -> float:
    """Wait until ``replica`` has replayed the creation of ``space``; returns the seconds waited.

    PostgreSQL: the replica's ``pg_last_wal_replay_lsn()`` reaches the primary's ``pg_current_wal_lsn()``
    read after the creation. Other engines: until the database shows in the replica's catalog.
    Raises DriverError (class ReplicaLag) when the bound passes first.
    """
    started = time.monotonic()
    primary = space.target
    if primary.kind == "postgresql":
        with admin_connection(primary.kind, space.admin_url) as conn:
            lsn = conn.exec_driver_sql("SELECT pg_current_wal_lsn()::text").scalar_one()
        query, args = "SELECT pg_last_wal_replay_lsn() >= %(lsn)s::pg_lsn", {"lsn": lsn}
        what = f"WAL position {lsn}"
    else:
        query, args = "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = %(n)s", {"n": space.name}
        what = f"database {space.name}"
    with admin_connection(replica.kind, replica.url) as conn:
        while True:
            if conn.exec_driver_sql(query, args).scalar():
                return time.monotonic() - started
            if time.monotonic() - started > timeout_s:
                raise DriverError(
                    None, "ReplicaLag", f"replica {replica.name} did not replay {what} within {timeout_s:.0f}s"
                )
            time.sleep(0.02)


def _stamp(conn: object, space: ScratchSpace, sql: str | None) -> None:
    """Write the owner marker (see owner.py) that lets ``dbmatrix clean`` recognise this space later."""
    if sql is None:
        return
    try:
        conn.exec_driver_sql(sql)  # type: ignore[attr-defined]
    except BaseException:
        space.drop()  # never leave behind what we created
        raise


def _run_of(name: str) -> str:
    """The run id inside a scratch name ``dbmatrix_<YYYYmmddHHMMSS>_<hex>_...`` (for the owner marker)."""
    m = re.match(r"dbmatrix_(\d{14}_[0-9a-f]{6})", name)
    return m[1] if m else "unknown"


def _code(exc: BaseException) -> str | None:
    orig = getattr(exc, "orig", exc)
    if isinstance(exc, DriverError):
        return exc.code
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if code is None and getattr(orig, "args", None) and isinstance(orig.args[0], int):
        code = str(orig.args[0])
    return code


def _enable_wal(url: URL) -> None:
    import sqlite3

    with sqlite3.connect(url.database) as conn:  # type: ignore[arg-type]
        conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
