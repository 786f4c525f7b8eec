"""The scratch guard: every statement any SQLAlchemy engine sends while a migration runs must go to the
scratch database, or it is refused before it reaches the server.

A user's env.py may ignore the URL and the connection dbmatrix offers and build its own engine from the app's
settings; the guard listens on the ``Engine`` class (sync engines and the ``sync_engine`` of async ones), so such
an engine is caught at its first statement, before anything outside scratch is read or written. It also records
the statements sent to scratch, which ``migrate.offline_sql`` compares with the offline rendering, and bounds every
new connection to scratch, whoever opened it, with the engine's lock and statement timeouts.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Engine

from ..targets.urls import kind_of, redact
from .connections import BOUNDED, bound_session


class ForeignDatabase(RuntimeError):
    """A migration tried to talk to a database that is not dbmatrix's scratch database."""


_DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mariadb": 3306}


def _where(url: URL) -> tuple[str, str, int | None, str]:
    """Which database a URL reaches, whatever its driver or spelling of the default host and port."""
    backend = url.get_backend_name()
    if backend == "sqlite":
        return (backend, "", None, os.path.realpath(url.database or ""))
    host = (url.host or "").lower().replace("localhost", "127.0.0.1")
    return (backend, host, url.port or _DEFAULT_PORTS.get(backend), url.database or "")


@dataclass
class ScratchGuard:
    scratch: URL
    statements: list[str] = field(default_factory=list)
    refused: str | None = None
    _sandboxed: set[int] = field(default_factory=set)

    def _before(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        url = conn.engine.url
        if _where(url) != _where(self.scratch):
            self.refused = (f"the migration environment connected to {redact(url)} instead of dbmatrix's scratch "
                            f"database {redact(self.scratch)}; refused before its first statement ({statement[:60]!r})")
            raise ForeignDatabase(self.refused)
        if url.get_backend_name() == "sqlite":
            self._sandbox_sqlite(conn.connection.driver_connection)
        self.statements.append(statement)

    def _connected(self, conn: Any) -> None:
        """A connection an engine (env.py's own too) checked out: bound it once, if it reaches scratch."""
        fairy = conn.connection
        if fairy.info.get(BOUNDED) or _where(conn.engine.url) != _where(self.scratch):
            return
        bound_session(kind_of(self.scratch), fairy.dbapi_connection)
        fairy.info[BOUNDED] = True

    def _sandbox_sqlite(self, dbapi: Any) -> None:
        """SQLite's authorizer refuses ATTACH of any other file: the scratch connection cannot reach outside it
        (a privilege sandbox; a raw ``sqlite3.connect`` of env.py's own is not seen)."""
        if id(dbapi) in self._sandboxed or not hasattr(dbapi, "set_authorizer"):
            return
        import sqlite3  # the sqlite backend is in use: its module is loaded already

        def authorize(action: int, arg1: str | None, *_: Any) -> int:
            if action == sqlite3.SQLITE_ATTACH and arg1 not in ("", ":memory:"):
                self.refused = (f"the migration tried to ATTACH {arg1!r}, a database outside dbmatrix's scratch "
                                f"{redact(self.scratch)}; refused by SQLite's authorizer")
                return sqlite3.SQLITE_DENY
            return sqlite3.SQLITE_OK

        done = dbapi.set_authorizer(authorize)
        if inspect.isawaitable(done):  # aiosqlite: a coroutine run on its thread; an async engine's cursor events
            from sqlalchemy.util import await_only  # run inside SQLAlchemy's greenlet, where it can be awaited

            await_only(done)
        self._sandboxed.add(id(dbapi))

    def _error(self, context: Any) -> BaseException | None:
        # the authorizer cannot raise: the statement fails "not authorized", and the refusal replaces that error
        if self.refused and "not authorized" in str(context.original_exception):
            return ForeignDatabase(self.refused)
        return None

    def take(self) -> list[str]:
        """The statements recorded since the last call."""
        out, self.statements = self.statements, []
        return out


@contextmanager
def scratch_guard(scratch: URL) -> Iterator[ScratchGuard]:
    guard = ScratchGuard(scratch)
    event.listen(Engine, "before_cursor_execute", guard._before)
    event.listen(Engine, "engine_connect", guard._connected)
    event.listen(Engine, "handle_error", guard._error)
    try:
        yield guard
    finally:
        event.remove(Engine, "before_cursor_execute", guard._before)
        event.remove(Engine, "handle_error", guard._error)
        event.remove(Engine, "engine_connect", guard._connected)


_DBAPIS = ("psycopg", "psycopg2", "MySQLdb", "pymysql", "sqlite3", "mariadb", "asyncpg", "aiomysql", "asyncmy")


@contextmanager
def no_connections(what: str) -> Iterator[None]:
    """Inside, opening a connection with any installed DBAPI is refused (``ForeignDatabase``): for code that must
    not reach a database at all, such as a Django settings module while it is imported (it cannot know dbmatrix's
    scratch database yet, so any database it reaches is the application's own)."""
    import importlib

    patched = []
    for name in _DBAPIS:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        original = getattr(module, "connect", None)
        if original is None:
            continue

        def refuse(*args: Any, _name: str = name, **kw: Any) -> Any:
            raise ForeignDatabase(f"{what} opened a database connection ({_name}.connect) while it was imported; "
                                  "refused before its first statement: dbmatrix replaces DATABASES with its "
                                  "scratch database, so settings must not connect anywhere themselves")

        module.connect = refuse
        patched.append((module, original))
    try:
        yield
    finally:
        for module, original in patched:
            module.connect = original
