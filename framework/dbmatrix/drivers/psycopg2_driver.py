"""psycopg2 over libpq: parameters are interpolated client-side, so no server-side prepared statements ever.

That is why it is the PostgreSQL driver that keeps working behind PgBouncer in transaction pooling.
"""

from __future__ import annotations

import select
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from . import params as paramstyles
from .base import ConnectInfo, DriverAdapter, Result, Session, cursor_result, fetch_batches, translate
from .psycopg_driver import cursor_name, libpq_kwargs


# --- notifications and streaming, shared with the SQLAlchemy layers (they pass the raw psycopg2 connection) ------
def listen_on(conn: Any, channel: str) -> None:
    """``LISTEN "channel"``, the channel quoted as an identifier by psycopg2."""
    from psycopg2 import sql

    with conn.cursor() as cur:
        cur.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))


def notifications_of(conn: Any, timeout: float) -> list[tuple[str, str]]:
    """psycopg2's documented loop: ``select()`` on the connection's socket, ``poll()``, read ``conn.notifies``
    (which also holds what arrived during other statements); wait up to ``timeout`` s for the first one."""
    deadline = time.monotonic() + timeout
    conn.poll()
    while not conn.notifies and (remaining := deadline - time.monotonic()) > 0:
        select.select([conn], [], [], remaining)
        conn.poll()
    got = [(n.channel, n.payload) for n in conn.notifies]
    del conn.notifies[:]
    return got


def stream_batches(conn: Any, sql: str, args: Any, batch: int) -> Iterator[list[tuple[Any, ...]]]:
    """A named (server-side) cursor: DECLARE, then FETCH ``batch`` rows at a time; needs an open transaction.

    ``withhold=True`` only because psycopg2 refuses a named cursor on an autocommit connection ("can't use a named
    cursor outside of transactions") even inside a transaction opened with SQL. Inside that transaction, and closed
    before it ends, a WITH HOLD cursor is an ordinary one: nothing is materialised, rows come as they are fetched.
    """
    cur = conn.cursor(name=cursor_name(), withhold=True)
    cur.itersize = batch
    try:
        cur.execute(sql, args)
    except BaseException:
        cur.close()
        raise
    yield from fetch_batches(cur, batch)  # a generator: DECLARE runs inside the caller's transaction


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
        return cursor_result(self.cur)

    def _close(self) -> None:
        self.conn.close()

    def _listen(self, channel: str) -> None:
        listen_on(self.conn, channel)

    def _notifications(self, timeout: float) -> list[tuple[str, str]]:
        return notifications_of(self.conn, timeout)

    def _stream(self, sql: str, params: Mapping[str, Any] | None, batch: int) -> Iterator[list[tuple[Any, ...]]]:
        sql, args = translate(self.adapter, sql, params)
        return self._within_transaction(stream_batches(self.conn, sql, args, batch))

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
