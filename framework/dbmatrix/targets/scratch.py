"""Scratch space: each run works in a database (or schema) it created, and drops exactly that.

The safety guard: the name of what we drop is always the name we created in this process, recorded in a
``ScratchSpace``; nothing else is ever dropped, truncated or altered, whatever the URL points at.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL

from ..errors import DriverError
from .admin import admin_connection
from .leftovers import marker_sql, this_process, write_dir_marker
from .model import Target

# SQLSTATE / errno meaning "you may not create a database" -> fall back to a schema
_NO_CREATEDB = {"42501", "1044", "1227"}
# Why that fallback is refused behind a transaction pooler: the schema lives in the user's own database, and
# SET search_path (and any session setting) would stay on whichever pooled server connection ran it, follow none
# of dbmatrix's later statements, and let a case create tables in the user's schemas.
_POOLED_SCHEMA = (
    "may not CREATE DATABASE, and behind a transaction pooler a scratch schema cannot be kept apart (session "
    "settings stay on pooled server connections); grant CREATEDB to this role or use a URL that bypasses the pooler"
)


def scratch_name(run_id: str, target_name: str) -> str:
    """``dbmatrix_<run>_<target>``: unique per run and target (two targets may share one server).

    When the target name is not already a plain lower-case identifier (``PG``, ``pg-2``), a checksum of the
    exact name is appended, so ``PG`` and ``pg`` never share a scratch space.
    """
    plain = re.sub(r'[^a-z0-9]+', '_', target_name.lower())
    suffix = "" if plain == target_name else f"_{zlib.crc32(target_name.encode()):08x}"
    return f"dbmatrix_{run_id}_{plain[:63 - len(run_id) - 10 - len(suffix)]}{suffix}"


@dataclass
class ScratchSpace:
    target: Target
    kind: str  # database | schema | file
    name: str  # what we created: the only thing drop() will remove
    admin_url: URL
    path: Path | None = None

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


def create_scratch(target: Target, run_id: str) -> ScratchSpace:
    """Create the scratch space for ``target`` and point ``target.scratch_url`` at it."""
    if target.kind == "sqlite":
        path = Path(tempfile.mkdtemp(prefix=f"dbmatrix_{run_id}_"))
        write_dir_marker(path, "sqlite-scratch", run_id)
        space = ScratchSpace(target, "file", str(path), target.url, path=path)
        target.scratch_url = target.url.set(database=str(path / "scratch.db"))
        if target.managed:
            target.url = target.scratch_url  # the report then shows where the file was
        _enable_wal(target.scratch_url)
        return space
    name = scratch_name(run_id, target.name)
    quoted = _quote(target.kind, name)
    owner = this_process(run_id)
    target.scratch_name = name
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
            _stamp(conn, marker_sql(target.kind, target.engine, "schema", quoted, owner))
            target.scratch_url = target.url
            target.init_sql = [f"SET search_path TO {quoted}"]
            return ScratchSpace(target, "schema", name, target.url)
        _stamp(conn, marker_sql(target.kind, target.engine, "database", quoted, owner))
    target.scratch_url = target.url.set(database=name)
    return ScratchSpace(target, "database", name, target.url)


def _stamp(conn: object, sql: str | None) -> None:
    """Write the owner marker (see leftovers.py) that lets ``dbmatrix clean`` recognise this space later."""
    if sql is not None:
        conn.exec_driver_sql(sql)  # type: ignore[attr-defined]


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
