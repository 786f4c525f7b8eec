"""Tortoise ORM as a layer: ``tortoise+<dbapi>`` over the asyncio drivers Tortoise itself uses.

Tortoise's backends: ``asyncpg`` for PostgreSQL (``tortoise.backends.asyncpg``; psycopg 3 is a second backend),
``aiosqlite`` for SQLite, and for MySQL/MariaDB one client that imports **asyncmy** and falls back to aiomysql only
when asyncmy is missing (``tortoise/backends/mysql/client.py``: ``try: import asyncmy ... except ImportError:
import aiomysql``). With both installed Tortoise picks asyncmy: that is its default pair. ``tortoise+aiomysql``
is Tortoise where asyncmy is missing: its client module run once more with asyncmy hidden from its imports, so it
binds aiomysql and PyMySQL's error classes as its fallback does (the module Tortoise imported is left as it is).

Each kit gets a ``TortoiseContext`` of its own (Tortoise 1.x's isolated state: connections and apps), whose
one connection is a client of Tortoise's own class for the engine, configured through Tortoise's
documented engine hook (``engine`` names a module with ``get_client_class``: this one). The client adopts the
connection the DBAPI adapter opened: asyncpg's and asyncmy's clients take connections from a pool, so they get a
pool of that one connection (``OnePool``); the SQLite client keeps one connection and gets the adapter's. Then
the client's own setup runs as on a connection it opened: SQLite ``row_factory = sqlite3.Row`` and its pragmas
(``journal_mode=WAL`` — Tortoise switches the database file to WAL —, ``journal_size_limit``,
``foreign_keys=ON``), MySQL ``SET time_zone`` under ``use_tz``. Tortoise's exceptions (``OperationalError(exc)``,
``IntegrityError(exc)``) are unwrapped to the DBAPI adapter's codes.

``use_tz`` (Tortoise's one time-zone setting, default True) is process-wide in Tortoise (the ``USE_TZ`` environment
variable, cached): each kit operation sets the value it declares for the field it touches.
"""

from __future__ import annotations

import builtins
import functools
import importlib
import importlib.util
import sqlite3
import types
from typing import Any, ClassVar

from ..drivers.base import ConnectInfo, Session
from .async_orm import AsyncOrmLayer, OnePool
from .sqlite_adapters import kept_for

TORTOISE_ADAPTERS = kept_for("tortoise")  # its process-wide sqlite3 adapters, held by its own sessions only

# DBAPI adapter id -> Tortoise's backend module for it
BACKENDS = {"asyncpg": "tortoise.backends.asyncpg", "asyncmy": "tortoise.backends.mysql",
            "aiomysql": "tortoise.backends.mysql", "aiosqlite": "tortoise.backends.sqlite"}
DEFAULT_MYSQL_DRIVER = "asyncmy"  # what tortoise.backends.mysql imports first


def import_tortoise_backend(dbapi: str) -> Any:
    """Tortoise's backend package for ``dbapi`` (its ``client_class``); the SQLite executor's process-wide sqlite3
    adapters (Decimal, date, datetime as text) are kept to Tortoise's own sessions (``sqlite_adapters``)."""
    if dbapi == "aiosqlite":
        TORTOISE_ADAPTERS.import_keeping_apart("tortoise.backends.sqlite.executor")
    if dbapi == "aiomysql":
        return _mysql_client_without_asyncmy()
    return importlib.import_module(BACKENDS[dbapi])


@functools.cache
def _mysql_client_without_asyncmy() -> types.ModuleType:
    """Tortoise's MySQL client module as it is where asyncmy is not installed: its own source run once more with an
    ``import`` that refuses asyncmy, so it binds aiomysql and PyMySQL's errors (its ``create_pool``, its exception
    translation) the way its fallback does. The module Tortoise itself imported (asyncmy) stays as it is."""
    spec = importlib.util.find_spec("tortoise.backends.mysql.client")
    assert spec is not None and spec.loader is not None and spec.origin is not None
    real_import = builtins.__import__

    def without_asyncmy(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "asyncmy" or name.startswith("asyncmy."):
            raise ImportError(f"{name} is hidden: Tortoise's aiomysql fallback")
        return real_import(name, *args, **kwargs)

    module = types.ModuleType("tortoise.backends.mysql.client_over_aiomysql")
    module.__dict__.update(__file__=spec.origin, __package__="tortoise.backends.mysql",
                           __builtins__={**vars(builtins), "__import__": without_asyncmy})
    exec(compile(spec.loader.get_source(spec.name) or "", spec.origin, "exec"), module.__dict__)  # noqa: S102
    module.client_class = module.MySQLClient  # what the backend package names (``tortoise.backends.mysql``)
    return module


def get_client_class(db_info: dict[str, Any]) -> type:
    """Tortoise's engine hook: its client class for the driver, adopting the connection in the credentials."""
    creds = db_info["credentials"]
    base = import_tortoise_backend(creds["dbapi"]).client_class

    class Adopting(base):  # type: ignore[misc, valid-type]
        def __init__(self, *, adopt: Any, dbapi: str, kind: str, **kwargs: Any):
            if kind == "sqlite":
                super().__init__(kwargs.pop("file_path"), **kwargs)
            else:
                super().__init__(**kwargs)
            self._adopted, self._dbapi = adopt, dbapi

        async def create_connection(self, with_db: bool) -> None:
            conn = self._adopted
            if self._dbapi == "aiosqlite":  # SqliteClient.create_connection after its aiosqlite.connect
                self._connection = conn
                conn._conn.row_factory = sqlite3.Row
                for pragma, val in self.pragmas.items():
                    await (await conn.execute(f"PRAGMA {pragma}={val}")).close()
            else:
                self._pool = OnePool(conn)
                if self._dbapi != "asyncpg":  # MySQLClient.create_connection's session setup
                    await self._mysql_setup(conn)
            await self._post_connect()

        async def _mysql_setup(self, conn: Any) -> None:
            from tortoise.timezone import get_default_timezone, get_use_tz

            if get_use_tz():
                import datetime as dt

                offset = dt.datetime.now(tz=get_default_timezone()).utcoffset()
                seconds = int(offset.total_seconds()) if offset is not None else 0
                async with conn.cursor() as cursor:
                    await cursor.execute(f"SET time_zone='{seconds // 3600:+d}:{abs(seconds) % 3600 // 60:02d}';")

        async def close(self) -> None:
            self._pool = None  # the DBAPI session owns the connection and closes it
            self._connection = None

        async def _close(self) -> None:
            await self.close()

    return Adopting


class TortoiseLayer(AsyncOrmLayer):
    name = "tortoise"
    SITS_ON: ClassVar[frozenset[str]] = frozenset(BACKENDS)
    # what the database or the connection said (wrapped by Tortoise), and a value its fields refuse; not its
    # ConfigurationError / FieldError / ParamsError, which are misuse (a bug of ours: the cell is ``error``)
    exceptions: ClassVar[tuple[str, ...]] = (
        "tortoise.exceptions.OperationalError", "tortoise.exceptions.TransactionManagementError",
        "tortoise.exceptions.DBConnectionError", "tortoise.exceptions.ValidationError",
        "tortoise.exceptions.UnSupportedError")
    layer_distributions: ClassVar[tuple[str, ...]] = ("tortoise-orm", "pypika-tortoise")
    # where the time goes: pypika-tortoise and Tortoise's query builders make SQL; models, fields and the
    # queryset's row handling make objects (approximately: querysets also build); backends are the glue
    profile_parts: ClassVar[tuple[tuple[str, str], ...]] = (
        ("pypika_tortoise", "tortoise-sql"), ("tortoise/expressions", "tortoise-sql"),
        ("tortoise/query_utils", "tortoise-sql"), ("tortoise/models", "tortoise-objects"),
        ("tortoise/fields", "tortoise-objects"), ("tortoise", "tortoise"))
    profile_stages: ClassVar[dict[str, str]] = {"tortoise-sql": "sql", "tortoise-objects": "objects"}
    # Tortoise's own choice per engine (its MySQL client imports asyncmy first)
    default_dbapis: ClassVar[frozenset[str]] = frozenset({"asyncpg", DEFAULT_MYSQL_DRIVER, "aiosqlite"})
    kit_class: ClassVar[str] = "dbmatrix.layers.tortoise_kit:TortoiseKit"
    bench_module: ClassVar[str] = "dbmatrix.layers.tortoise_bench"

    @classmethod
    def layer_modules(cls) -> tuple[str, ...]:
        return ("tortoise",)

    def unavailable_reason(self) -> str | None:
        reason = super().unavailable_reason()
        if reason is None:
            try:
                import_tortoise_backend(self.under.id)
            except ImportError as exc:
                return f"driver {self.id} not installed ({BACKENDS[self.under.id]}: {exc})"
        return reason

    def open(self, info: ConnectInfo) -> Session:
        # imported before any kit operation holds the kept sqlite3 adapters (an import under a hold keeps nothing)
        import_tortoise_backend(self.under.id)
        return super().open(info)

    async def attach(self, session: Session) -> Any:
        """Nothing yet: Tortoise binds models when its context is initialised, so the kit (and the bench) make a
        ``TortoiseContext`` of their own with their models (``tortoise_config``)."""
        return None

    def tortoise_alias(self, session: Session) -> str:
        """The connection's name: one per engine kind and driver, because Tortoise caches each model's INSERT and
        UPDATE SQL for the whole process by (connection name, table) (``EXECUTOR_CACHE``): two engines under one
        name and the same table names (the bench's) would get the first one's SQL (SQLite's ``?`` on PostgreSQL)."""
        return f"{session.info.kind}_{self.under.id}"

    def tortoise_config(self, session: Session, models_module: str) -> dict[str, Any]:
        """Tortoise's config: one connection (``alias``) on ``session``'s connection (this module is its engine),
        one app ``models`` of the models in ``models_module`` (a module name: Tortoise takes names only)."""
        alias = self.tortoise_alias(session)
        return {"connections": {alias: {"engine": __name__, "credentials": self.credentials(session)}},
                "apps": {"models": {"models": [models_module], "default_connection": alias}}}

    def credentials(self, session: Session) -> dict[str, Any]:
        """The ``credentials`` of Tortoise's connection config for ``session`` (what ``get_client_class`` gets)."""
        info, url = session.info, session.info.url
        creds: dict[str, Any] = {"adopt": session.driver_connection(), "dbapi": self.under.id, "kind": info.kind}
        if info.kind == "sqlite":
            creds["file_path"] = url.database or ":memory:"
        else:
            # no password: the client never connects (it adopts the session's connection), so none is handed on
            creds.update(user=url.username, password="", database=url.database, host=url.host,
                         port=url.port or (5432 if info.kind != "mysql" else 3306))
        return creds
