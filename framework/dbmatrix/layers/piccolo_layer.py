"""Piccolo as a layer: ``piccolo+<dbapi>`` over the asyncio drivers Piccolo itself uses.

Piccolo's engines (``piccolo.engine``): ``PostgresEngine`` and ``CockroachEngine`` on asyncpg, ``SQLiteEngine`` on
aiosqlite (with the standard library's sqlite3 under it). It has no MySQL/MariaDB engine, so the layer sits on
``asyncpg`` and ``aiosqlite`` only and there is no ``piccolo+`` id for a MySQL driver (``--driver piccolo+asyncmy``
is refused with that reason, ``MISSING_ENGINES``).

Piccolo opens connections itself: one per query (and per transaction) unless a pool is started on PostgreSQL, a
new ``aiosqlite.connect`` per query on SQLite. Here its engine adopts the connection the DBAPI adapter opened
instead (its timeouts, ``application_name``, error mapping): ``get_new_connection`` / ``get_connection`` return
it (``Unclosable``: Piccolo's ``close()`` after each query leaves it open), and the SQLite engine's per-query
``aiosqlite.connect`` runs on it too. What Piccolo does on its own connections is kept: on SQLite it connects with
``detect_types=PARSE_DECLTYPES | PARSE_COLNAMES`` (its converters read values back by declared type), so the
adapter opens the connection with those options; ``row_factory = dict_factory`` and ``PRAGMA foreign_keys = 1`` before
each query. Its process-wide sqlite3 adapters (Decimal, UUID, date/time, list as text) are kept to its own sessions
(``sqlite_adapters``); its sqlite3 converters (by declared type: TIMESTAMP, NUMERIC, BOOLEAN...) are process-wide
too but act only on connections opened with ``detect_types``, which no other adapter here uses. Piccolo raises
the driver's own exceptions, so errors are the adapter's codes as they are.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Mapping
from typing import Any, ClassVar

from ..drivers.base import ConnectInfo, DriverAdapter, Result, Session
from .async_orm import AsyncOrmLayer, Unclosable
from .sqlite_adapters import kept_for

PICCOLO_ADAPTERS = kept_for("piccolo")  # its process-wide sqlite3 adapters, held by its own sessions only

# Piccolo's reason for the engines it lacks (its docs: "Piccolo supports Postgres, CockroachDB and SQLite")
MISSING_ENGINES = {"mysql": "Piccolo has no MySQL/MariaDB engine: piccolo.engine offers PostgresEngine, "
                   "CockroachEngine (asyncpg) and SQLiteEngine (aiosqlite) only"}


def import_piccolo_engines() -> Any:
    """``piccolo.engine``, imported first through the guard: importing any of Piccolo's tables, columns or engines
    imports its SQLite engine, which registers its sqlite3 adapters for the whole process (kept apart here)."""
    return PICCOLO_ADAPTERS.import_keeping_apart("piccolo.engine")


def piccolo_engine(session: Session) -> Any:
    """A Piccolo engine of the right class for ``session`` that runs every query on the session's connection."""
    conn, kind = session.driver_connection(), session.info.kind
    import_piccolo_engines()
    if kind == "sqlite":
        from piccolo.engine.sqlite import SQLiteEngine, dict_factory

        class AdoptingSQLite(SQLiteEngine):
            async def get_connection(self) -> Any:
                conn.row_factory = dict_factory  # what SQLiteEngine.get_connection does after aiosqlite.connect
                await conn.execute("PRAGMA foreign_keys = 1")
                return Unclosable(conn)

            async def _run_in_new_connection(self, query: str, args: Any = None, query_type: str = "generic",
                                             table: Any = None) -> Any:
                # SQLiteEngine's own body (PRAGMA foreign_keys, dict rows, the query) on the adopted connection in
                # place of ``async with aiosqlite.connect``; its commit() there is a no-op in autocommit mode
                return await self._run_in_existing_connection(Unclosable(conn), query, args, query_type, table)

        return AdoptingSQLite(path=session.info.url.database or ":memory:")
    from piccolo.engine.cockroach import CockroachEngine
    from piccolo.engine.postgres import PostgresEngine

    class AdoptingPostgres(CockroachEngine if kind == "cockroachdb" else PostgresEngine):  # type: ignore[misc]
        async def get_new_connection(self) -> Any:
            return Unclosable(conn)

        async def check_version(self) -> None:
            pass  # run by Engine.__init__ through run_sync: a query from another thread's loop, on a connection
            # that belongs to the session's loop (Piccolo only warns on an old server)

        async def prep_database(self) -> None:
            pass  # the same for its extensions check (CREATE EXTENSION for none: extensions=())

    url = session.info.url
    return AdoptingPostgres(config={"host": url.host, "port": url.port, "user": url.username,
                                    "database": url.database}, extensions=())


class PiccoloLayer(AsyncOrmLayer):
    name = "piccolo"
    SITS_ON: ClassVar[frozenset[str]] = frozenset({"asyncpg", "aiosqlite"})
    exceptions: ClassVar[tuple[str, ...]] = ("piccolo.engine.exceptions.TransactionError",)
    layer_distributions: ClassVar[tuple[str, ...]] = ("piccolo",)
    # where the time goes: Piccolo's query classes and QueryString build SQL, its tables and columns make objects
    profile_parts: ClassVar[tuple[tuple[str, str], ...]] = (
        ("piccolo/query", "piccolo-sql"), ("piccolo/querystring", "piccolo-sql"),
        ("piccolo/table", "piccolo-objects"), ("piccolo/columns", "piccolo-objects"), ("piccolo", "piccolo"))
    profile_stages: ClassVar[dict[str, str]] = {"piccolo-sql": "sql", "piccolo-objects": "objects"}
    default_dbapis: ClassVar[frozenset[str]] = frozenset({"asyncpg", "aiosqlite"})  # its two engines' drivers
    kit_class: ClassVar[str] = "dbmatrix.layers.piccolo_kit:PiccoloKit"
    bench_module: ClassVar[str] = "dbmatrix.layers.piccolo_bench"

    def __init__(self, under: DriverAdapter):
        super().__init__(under)
        self.kinds = under.kinds - MISSING_ENGINES.keys()  # type: ignore[misc]

    def unavailable_reason(self) -> str | None:
        reason = super().unavailable_reason()
        if reason is None:
            try:  # the first import of Piccolo's engines goes through the guard wherever it happens
                import_piccolo_engines()
            except ImportError as exc:
                return f"driver {self.id} not installed (piccolo.engine: {exc})"
        return reason

    def open(self, info: ConnectInfo) -> Session:
        import_piccolo_engines()  # before any kit operation holds the kept adapters (an import under a hold keeps
        # nothing), and on PostgreSQL too: Piccolo's tables import its SQLite engine
        if info.kind == "sqlite":  # Piccolo's own connect options: its converters read values by declared type
            info = dataclasses.replace(info, options={
                "detect_types": sqlite3.PARSE_DECLTYPES | sqlite3.PARSE_COLNAMES, **info.options})
        session = super().open(info)
        if info.kind == "sqlite":
            plain = session._aexecute  # type: ignore[attr-defined]

            async def tuples(sql: str, params: Mapping[str, Any] | None, types: Mapping[str, Any] | None) -> Result:
                session.conn.row_factory = None  # type: ignore[attr-defined]  # Piccolo leaves dict rows set
                return await plain(sql, params, types)

            session._aexecute = tuples  # type: ignore[attr-defined]
        return session

    @classmethod
    def cannot_sit_reason(cls, dbapi: DriverAdapter) -> str:
        return "; ".join(sorted({MISSING_ENGINES[k] for k in dbapi.kinds if k in MISSING_ENGINES}))

    async def attach(self, session: Session) -> Any:
        return piccolo_engine(session)
