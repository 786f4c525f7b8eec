"""psycopg2 over libpq: parameters are interpolated client-side, so no server-side prepared statements ever.

That is why it is the PostgreSQL driver that keeps working behind PgBouncer in transaction pooling.
"""

from __future__ import annotations

import contextlib
import select
import time
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from . import params as paramstyles
from .dbapi import fetch_batches
from .protocol import ConnectInfo, Notifier, Result
from .psycopg_driver import LibpqKnowledge, LibpqSession, cursor_name, libpq_kwargs


class Psycopg2Notifier(Notifier):
    """psycopg2's documented loop: ``select()`` on the connection's socket, ``poll()``, read ``conn.notifies``
    (which also holds what arrived during other statements)."""

    def listen(self, raw: Any, channel: str) -> None:
        """``LISTEN "channel"``, the channel quoted as an identifier by psycopg2."""
        from psycopg2 import sql  # psycopg2 is optional: imported when a session of it is listening

        with raw.cursor() as cur:
            cur.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))

    def received(self, raw: Any, timeout: float) -> list[tuple[str, str]]:
        deadline = time.monotonic() + timeout
        raw.poll()
        while not raw.notifies and (remaining := deadline - time.monotonic()) > 0:
            select.select([raw], [], [], remaining)
            raw.poll()
        got = [(n.channel, n.payload) for n in raw.notifies]
        del raw.notifies[:]
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


# Python types whose psycopg2 adapter others register process-wide: SQLAlchemy's psycopg2 dialect calls
# ``register_uuid`` on every connection it opens, and that adds a *global* uuid.UUID adapter. Left in place, a raw
# psycopg2 cell would accept uuid.UUID only if an SQLAlchemy cell happened to run first in the process.
FOREIGN_ADAPTED = (uuid.UUID,)


@contextlib.contextmanager
def own_adapters() -> Iterator[None]:
    """psycopg2's adapters as psycopg2 alone installs them, for the duration of one statement."""
    from psycopg2.extensions import ISQLQuote, adapters  # optional driver, imported when used

    borrowed = {key: adapters.pop(key) for key in [(t, ISQLQuote) for t in FOREIGN_ADAPTED] if key in adapters}
    try:
        yield
    finally:
        adapters.update(borrowed)


class Psycopg2Session(LibpqSession):
    stream_batches = staticmethod(stream_batches)

    def _execute(self, sql: str, params: Mapping[str, Any] | None, types: Mapping[str, Any] | None) -> Result:
        with own_adapters():
            return super()._execute(sql, params, types)

    def open_connection(self, info: ConnectInfo) -> Any:
        import psycopg2  # optional driver, imported when used

        conn = psycopg2.connect(**libpq_kwargs(info))
        conn.autocommit = True  # transactions are opened by SQL (Session.begin), never implicitly
        return conn

    def begin_native(self, isolation: str) -> str:
        """``conn.set_session(isolation_level=..., autocommit=False)``: psycopg2 sends ``BEGIN ISOLATION LEVEL X``
        before the next statement (with autocommit off it leaves ``default_transaction_isolation`` alone). The
        previous autocommit and level (``None``: the server's default, ``DEFAULT`` to set_session) are put back."""
        level = self.checked_level(isolation).upper()
        conn = self.conn
        saved = (conn.autocommit, conn.isolation_level)

        def restore() -> None:
            conn.set_session(isolation_level="DEFAULT" if saved[1] is None else saved[1], autocommit=saved[0])

        return self._open_with_settings(conn, lambda: conn.set_session(isolation_level=level, autocommit=False),
                                        restore, f"psycopg2 conn.set_session(isolation_level={level!r}, "
                                        "autocommit=False)")


class Psycopg2Adapter(LibpqKnowledge):
    id = "psycopg2"
    paramstyle = paramstyles.PYFORMAT
    modules = ("psycopg2",)
    exceptions = ("psycopg2.Error",)
    refusals = (("ValueError", r"^A string literal cannot contain NUL \(0x00\) characters"),)
    distributions = ("psycopg2", "psycopg2-binary")
    sa_driver = "psycopg2"

    def open(self, info: ConnectInfo) -> Psycopg2Session:
        return Psycopg2Session(self, info)

    def read_socket(self, raw: Any) -> int | None:
        return int(raw.fileno())  # libpq's socket (PQsocket)

    def notifier(self) -> Notifier:
        return Psycopg2Notifier()
