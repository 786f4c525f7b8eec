"""Scratch space: each run works in a database (or schema) it created, and drops exactly that.

The safety guard: the name of what we drop is always the name we created in this process, recorded in a
``ScratchSpace``; nothing else is ever dropped, truncated or altered, whatever the URL points at.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL

from ..engines import engine_for
from ..errors import DriverError
from .admin import admin_connection
from .model import Target

# SQLSTATE / errno meaning "you may not create a database" -> fall back to a schema
_NO_CREATEDB = {"42501", "1044", "1227"}


def scratch_name(run_id: str, target_name: str) -> str:
    """``dbmatrix_<run>_<target>``: unique per run and target (two targets may share one server)."""
    name = f"dbmatrix_{run_id}_{re.sub(r'[^a-z0-9]+', '_', target_name.lower())}"
    return name[:63]


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
        assert self.name.startswith("dbmatrix_"), "refusing to drop something dbmatrix did not name"
        quoted = _quote(self.target.kind, self.name)
        with admin_connection(self.target.kind, self.admin_url) as conn:
            if self.kind == "schema":
                conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {quoted} CASCADE")
            elif self.target.kind == "postgresql" and self.target.version >= (13,):
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
            elif self.target.kind == "cockroachdb":
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted} CASCADE")
            else:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted}")


def _quote(kind: str, ident: str) -> str:
    return f"`{ident}`" if kind == "mysql" else f'"{ident}"'


def create_scratch(target: Target, run_id: str) -> ScratchSpace:
    """Create the scratch space for ``target`` and point ``target.scratch_url`` at it."""
    if target.kind == "sqlite":
        path = Path(tempfile.mkdtemp(prefix=f"dbmatrix_{run_id}_"))
        space = ScratchSpace(target, "file", str(path), target.url, path=path)
        target.scratch_url = target.url.set(database=str(path / "scratch.db"))
        if target.managed:
            target.url = target.scratch_url  # the report then shows where the file was
        _enable_wal(target.scratch_url)
        return space
    name = scratch_name(run_id, target.name)
    quoted = _quote(target.kind, name)
    with admin_connection(target.kind, target.url) as conn:
        try:
            conn.exec_driver_sql(f"CREATE DATABASE {quoted}")
        except Exception as exc:  # noqa: BLE001 - inspect and fall back below
            err = _code(exc)
            if err not in _NO_CREATEDB or target.kind == "mysql":
                raise
            conn.exec_driver_sql(f"CREATE SCHEMA {quoted}")
            target.scratch_url = target.url
            target.init_sql = [f"SET search_path TO {quoted}"]
            return ScratchSpace(target, "schema", name, target.url)
        # Timeouts live on the database, so every connection to it starts bounded, whichever server connection
        # a pooler lends; no session SET is needed (or lost, or leaked to another client) where this works.
        timeouts = engine_for(target.kind, target.engine).database_timeouts(name)
        for stmt in timeouts:
            conn.exec_driver_sql(stmt)
        target.database_timeouts = bool(timeouts)
    target.scratch_url = target.url.set(database=name)
    return ScratchSpace(target, "database", name, target.url)


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
