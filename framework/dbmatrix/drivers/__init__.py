"""Driver and layer registries: built-ins below plus whatever installed packages register as entry points.

Driver ids are contracts (results and expectations name them): the DBAPI/asyncio drivers, and each layer over
each DBAPI driver it can sit on, as ``<layer>+<dbapi>`` (``sa-core+asyncpg``). A package installed next to
dbmatrix adds its own through the entry point groups ``dbmatrix.drivers`` (name: the driver id, value:
``module:AdapterClass``) and ``dbmatrix.layers`` (name: the layer name, value: ``module:LayerClass``), the way
pytest finds its plugins; ``dbmatrix.engines`` is read by ``engines``. A plugin that cannot be loaded, or whose
name collides with another, is a configuration error (``UsageError``: one line, exit 2).

Built-in adapter modules are imported when an adapter is asked for; they import their driver lazily, so a missing
optional driver only makes its cells ``skipped``.
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass
from typing import Any

from ..engines import engine_classes
from ..entry_points import checked_class, load_group
from ..errors import UsageError
from .base import ConnectInfo, DriverAdapter, Result, Session
from .protocol import Layer

DRIVER_GROUP, LAYER_GROUP = "dbmatrix.drivers", "dbmatrix.layers"
# id -> "module:Class", the entry point format
BUILTIN_DRIVERS: dict[str, str] = {
    "asyncpg": "dbmatrix.drivers.asyncpg_driver:AsyncpgAdapter",
    "psycopg": "dbmatrix.drivers.psycopg_driver:PsycopgAdapter",
    "psycopg-async": "dbmatrix.drivers.psycopg_driver:PsycopgAsyncAdapter",
    "psycopg2": "dbmatrix.drivers.psycopg2_driver:Psycopg2Adapter",
    "pymysql": "dbmatrix.drivers.pymysql_driver:PyMySQLAdapter",
    "mysqlclient": "dbmatrix.drivers.mysqlclient_driver:MysqlclientAdapter",
    "asyncmy": "dbmatrix.drivers.asyncmy_driver:AsyncmyAdapter",
    "sqlite3": "dbmatrix.drivers.sqlite3_driver:Sqlite3Adapter",
    "aiosqlite": "dbmatrix.drivers.aiosqlite_driver:AiosqliteAdapter",
    "pg8000": "dbmatrix.drivers.pg8000_driver:Pg8000Adapter",
    "psqlpy": "dbmatrix.drivers.psqlpy_driver:PsqlpyAdapter",
    "aiomysql": "dbmatrix.drivers.aiomysql_driver:AiomysqlAdapter",
    "mysql-connector": "dbmatrix.drivers.mysql_connector_driver:MySQLConnectorAdapter",
    "mysql-connector-pure": "dbmatrix.drivers.mysql_connector_driver:MySQLConnectorPureAdapter",
    "mariadb-connector": "dbmatrix.drivers.mariadb_driver:MariaDBConnectorAdapter",
}
BUILTIN_LAYERS: dict[str, str] = {
    "sa-core": "dbmatrix.drivers.sqlalchemy_driver:SQLAlchemyCore",
    "sa-orm": "dbmatrix.drivers.sqlalchemy_driver:SQLAlchemyORM",
    "peewee": "dbmatrix.layers.peewee_layer:PeeweeLayer",
    "django": "dbmatrix.layers.django_layer:DjangoLayer",
    "sqlmodel": "dbmatrix.layers.sqlmodel_layer:SQLModelLayer",
    "pypika": "dbmatrix.layers.pypika_layer:PypikaLayer",
    "tortoise": "dbmatrix.layers.tortoise_layer:TortoiseLayer",
    "piccolo": "dbmatrix.layers.piccolo_layer:PiccoloLayer",
}


@dataclass(frozen=True)
class Registry:
    drivers: dict[str, type[DriverAdapter]]
    layers: dict[str, type[Layer]]


def _load(spec: str) -> Any:
    module, _, attr = spec.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


@functools.cache
def registry() -> Registry:
    """Every driver and layer class, built-ins first (read once per process)."""
    engine_classes()  # engine plugins are checked here too: every command reads this registry first
    drivers: dict[str, type[DriverAdapter]] = {i: _load(spec) for i, spec in BUILTIN_DRIVERS.items()}
    layers: dict[str, type[Layer]] = {n: _load(spec) for n, spec in BUILTIN_LAYERS.items()}
    for name, obj in load_group(DRIVER_GROUP, drivers, "driver").items():
        drivers[name] = checked_class(name, obj, DriverAdapter, "id", "driver")
        if issubclass(obj, Layer):
            raise UsageError(f"plugin driver {name!r} is a Layer; register it in {LAYER_GROUP}")
    for name, obj in load_group(LAYER_GROUP, layers, "layer").items():
        layers[name] = checked_class(name, obj, Layer, "name", "layer")
    return Registry(drivers, layers)


def dbapi_ids() -> list[str]:
    return list(registry().drivers)


def layer_pairs() -> dict[str, list[str]]:
    """``{layer: [dbapi ids it can sit on]}``, in registry order."""
    reg = registry()
    dbapis = [cls() for cls in reg.drivers.values()]
    return {name: [d.id for d in dbapis if cls.can_sit_on(d)] for name, cls in reg.layers.items()}


def all_driver_ids() -> list[str]:
    """Every driver id: DBAPI drivers first, then each layer over each DBAPI driver it can sit on."""
    return dbapi_ids() + [f"{layer}+{dbapi}" for layer, dbapis in layer_pairs().items() for dbapi in dbapis]


def default_orm_pairs() -> tuple[str, ...]:
    """``<orm>+<dbapi>`` for every ORM layer over each DBAPI driver it uses by default (``Layer.default_dbapis``):
    the cells ``orm.*`` gets in a run that names no drivers."""
    return tuple(f"{layer}+{dbapi}" for layer, dbapis in layer_pairs().items()
                 if registry().layers[layer].rung == "orm"
                 for dbapi in dbapis if dbapi in registry().layers[layer].default_dbapis)


def get_adapter(driver_id: str) -> DriverAdapter:
    """The adapter for ``driver_id``; ``UsageError`` (one line) for an unknown id or an impossible pair."""
    reg = registry()
    if "+" in driver_id:
        layer, _, dbapi = driver_id.partition("+")
        if layer not in reg.layers or dbapi not in reg.drivers:
            raise UsageError(_unknown(driver_id))
        under = reg.drivers[dbapi]()
        if not reg.layers[layer].can_sit_on(under):
            why = reg.layers[layer].cannot_sit_reason(under)
            raise UsageError(f"layer {layer} cannot sit on driver {dbapi}{f' ({why})' if why else ''}; {layer} sits "
                             f"on: {', '.join(layer_pairs()[layer]) or 'none installed'}")
        return reg.layers[layer](under)
    if driver_id not in reg.drivers:
        raise UsageError(_unknown(driver_id))
    return reg.drivers[driver_id]()


def describe() -> list[str]:
    """The driver ids for ``dbmatrix --help``: the DBAPI drivers, then exactly the valid ``layer+driver`` pairs."""
    lines = [f"drivers: {', '.join(dbapi_ids())}"]
    examples = []
    for layer, dbapis in layer_pairs().items():
        lines.append(f"  {layer}+<driver> for: {', '.join(dbapis)}")
        examples += [f"{layer}+{dbapis[0]}"] if dbapis else []
    if examples:
        lines.append(f"  e.g. {', '.join(examples)}")  # one pair per layer
    return lines


def _unknown(driver_id: str) -> str:
    layers = ", ".join(f"{layer}+<driver>" for layer in registry().layers)
    return f"unknown driver {driver_id!r}; known drivers: {', '.join(dbapi_ids())} and {layers}"


__all__ = ["ConnectInfo", "DriverAdapter", "Layer", "Result", "Session", "all_driver_ids", "describe",
           "get_adapter", "registry"]
