"""A tiny dbmatrix plugin, installed from outside ``framework/`` through entry points (see tests/test_plugins.py):

* ``tiny``: a driver of its own, the standard library's sqlite3 driven with ``?`` placeholders;
* ``tinypg``: an engine, a PostgreSQL-compatible product detected from the server's ``version()``;
* ``audit``: a layer (an in-house data-access layer, say) that sits on any blocking SQLite driver and counts the
  statements it sends, reusing what the adapter underneath knows (errors, cancel) by asking it.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from dbmatrix.drivers import params
from dbmatrix.drivers.base import ConnectInfo, DBAPISession, DriverAdapter, Layer, Session
from dbmatrix.engines.postgresql import PostgreSQL


class TinySession(DBAPISession):
    @staticmethod
    def _bind(args: Any) -> Any:
        return args if args is not None else ()

    def raw_sqlite3(self) -> Any:
        return self.conn  # the engine's busy watch (what the lock observer reads) is installed on it


class TinyAdapter(DriverAdapter):
    id = "tiny"
    kinds = frozenset({"sqlite"})
    paramstyle = params.QMARK
    modules = ("sqlite3",)
    exceptions = ("sqlite3.Error",)

    def open(self, info: ConnectInfo) -> Session:
        conn = sqlite3.connect(info.url.database or ":memory:", timeout=20, isolation_level=None,
                               check_same_thread=False)
        return TinySession(self, info, conn)

    def cancel_running(self, session: Session, raw: Any, fut: Any) -> None:
        raw.interrupt()


class AuditLayer(Layer):
    name = "audit"

    @classmethod
    def can_sit_on(cls, dbapi: DriverAdapter) -> bool:
        return "sqlite" in dbapi.kinds and not dbapi.is_async

    def open(self, info: ConnectInfo) -> Session:
        session = self.under.open(info)
        session.adapter = self  # statements, errors and cancels go through the layer, which asks the adapter under it
        execute = session._execute
        session.audited = 0  # type: ignore[attr-defined]

        def audited(sql: str, params: Any, types: Any) -> Any:
            session.audited += 1  # type: ignore[attr-defined]
            return execute(sql, params, types)

        session._execute = audited  # type: ignore[method-assign]
        return session


class TinyPostgres(PostgreSQL):
    """An engine for a PostgreSQL-compatible product (here: any PostgreSQL 15, to be testable on the local
    server); it opens every transaction READ ONLY (as for a read-only product), so its SQL is visible in what runs."""

    name = "tinypg"
    kind = "postgresql"

    @classmethod
    def detects(cls, version_text: str) -> bool:
        return version_text.startswith("PostgreSQL 15")

    def begin_statements(self, isolation: str | None) -> list[str]:
        return [f"{stmt} READ ONLY" for stmt in super().begin_statements(isolation)]
