"""Driver adapters: one module per driver, found by id through this registry.

Driver ids are contracts (results and expectations name them): the DBAPI/asyncio drivers below, and
SQLAlchemy layered over any of them as ``sa-core+<dbapi>`` / ``sa-orm+<dbapi>``. Modules are imported lazily
so a missing optional driver only makes its cells ``skipped``.
"""

from __future__ import annotations

import importlib

from ..errors import UsageError
from .base import ConnectInfo, DriverAdapter, Result, Session

# id -> "module:Class" under dbmatrix.drivers
DBAPI_DRIVERS: dict[str, str] = {
    "asyncpg": "asyncpg_driver:AsyncpgAdapter",
    "psycopg": "psycopg_driver:PsycopgAdapter",
    "psycopg-async": "psycopg_driver:PsycopgAsyncAdapter",
    "psycopg2": "psycopg2_driver:Psycopg2Adapter",
    "pymysql": "pymysql_driver:PyMySQLAdapter",
    "mysqlclient": "mysqlclient_driver:MysqlclientAdapter",
    "asyncmy": "asyncmy_driver:AsyncmyAdapter",
    "sqlite3": "sqlite3_driver:Sqlite3Adapter",
    "aiosqlite": "aiosqlite_driver:AiosqliteAdapter",
}
SA_LAYERS = ("sa-core", "sa-orm")


def all_driver_ids() -> list[str]:
    """Every driver id, DBAPI drivers first, then SQLAlchemy layers over each of them."""
    ids = list(DBAPI_DRIVERS)
    for layer in SA_LAYERS:
        ids += [f"{layer}+{dbapi}" for dbapi in DBAPI_DRIVERS]
    return ids


def get_adapter(driver_id: str) -> DriverAdapter:
    """The adapter for ``driver_id``; ``UsageError`` (one line) for an unknown id."""
    if "+" in driver_id:
        layer, _, dbapi = driver_id.partition("+")
        if layer not in SA_LAYERS or dbapi not in DBAPI_DRIVERS:
            raise UsageError(_unknown(driver_id))
        from .sqlalchemy_driver import SQLAlchemyAdapter

        return SQLAlchemyAdapter(layer, dbapi)
    if driver_id not in DBAPI_DRIVERS:
        raise UsageError(_unknown(driver_id))
    module_name, _, cls_name = DBAPI_DRIVERS[driver_id].partition(":")
    module = importlib.import_module(f"{__name__}.{module_name}")
    return getattr(module, cls_name)()


def _unknown(driver_id: str) -> str:
    known = ", ".join(DBAPI_DRIVERS)
    return f"unknown driver {driver_id!r}; known drivers: {known} and sa-core+<dbapi>, sa-orm+<dbapi>"


__all__ = ["ConnectInfo", "DriverAdapter", "Result", "Session", "all_driver_ids", "get_adapter", "DBAPI_DRIVERS"]
