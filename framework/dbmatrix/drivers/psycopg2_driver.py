"""psycopg2 over libpq: parameters are interpolated client-side, so no server-side prepared statements ever.

That is why it is the PostgreSQL driver that keeps working behind PgBouncer in transaction pooling.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from . import params as paramstyles
from .base import ConnectInfo, DriverAdapter, Result, Session, translate
from .psycopg_driver import cursor_result, libpq_kwargs


class Psycopg2Session(Session):
    def __init__(self, adapter: DriverAdapter, info: ConnectInfo):
        super().__init__(adapter, info)
        import psycopg2

        self.conn = self._call(lambda: psycopg2.connect(**libpq_kwargs(info)))
        self.conn.autocommit = True  # transactions are opened by SQL (Session.begin), never implicitly
        self.cur = self.conn.cursor()

    def _execute(self, sql: str, params: Mapping[str, Any] | None, types: Mapping[str, Any] | None) -> Result:
        sql, args = translate(self.adapter, sql, params)
        self.cur.execute(sql, args)
        return cursor_result(self.cur, self.cur.fetchall() if self.cur.description is not None else None)

    def _close(self) -> None:
        self.conn.close()

    def hot_path(self, sql: str, params: Mapping[str, Any] | None = None) -> Callable[[], Any]:
        sql, args = translate(self.adapter, sql, params)
        cur = self.conn.cursor()

        def call() -> Any:
            cur.execute(sql, args)
            return cur.fetchall() if cur.description is not None else None

        return call


class Psycopg2Adapter(DriverAdapter):
    id = "psycopg2"
    kinds = frozenset({"postgresql", "cockroachdb"})  # CockroachDB speaks the PostgreSQL wire protocol
    paramstyle = paramstyles.PYFORMAT
    modules = ("psycopg2",)

    def open(self, info: ConnectInfo) -> Psycopg2Session:
        return Psycopg2Session(self, info)
