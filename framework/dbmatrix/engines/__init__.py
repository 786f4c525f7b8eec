"""Per-engine knowledge, one small class per engine (as yoyo's backends): how a transaction is opened at an
isolation level, what bounds a session needs, how a connection names itself on the server, how to read back the
isolation level in effect, and how an outside observer sees a session wait on a lock.

``engine_for(kind, engine)`` returns the class for a target; drivers and cases ask it instead of branching on
``kind``. An isolation level an engine does not offer raises ``IsolationUnsupported`` (outcome ``unsupported``).

An installed package adds an engine (a product detected on a known target kind, e.g. a PostgreSQL fork) through
the entry point group ``dbmatrix.engines``: name = the engine name a target detects, value = ``module:EngineClass``.
A collision with a built-in name, or a plugin that does not load, is a UsageError (one line, exit 2).
"""

from __future__ import annotations

import functools

from ..entry_points import checked_class, load_group
from .base import CapabilityMissing, Engine, IsolationUnsupported
from .cockroachdb import CockroachDB
from .mysql import MariaDB, MySQL
from .postgresql import PostgreSQL
from .sqlite import SQLite

ENGINE_GROUP = "dbmatrix.engines"
_BY_ENGINE: dict[str, type[Engine]] = {
    "postgresql": PostgreSQL,
    "cockroachdb": CockroachDB,
    "mysql": MySQL,
    "mariadb": MariaDB,
    "sqlite": SQLite,
}
_BY_KIND: dict[str, type[Engine]] = {"postgresql": PostgreSQL, "cockroachdb": CockroachDB, "mysql": MySQL,
                                     "sqlite": SQLite}


@functools.cache
def engine_classes() -> dict[str, type[Engine]]:
    """Every engine class by name: the built-ins, then the ``dbmatrix.engines`` entry points (read once)."""
    plugins = load_group(ENGINE_GROUP, _BY_ENGINE, "engine")
    return {**_BY_ENGINE, **{n: checked_class(n, cls, Engine, "name", "engine") for n, cls in plugins.items()}}


def plugin_engine_detected(kind: str, version_text: str) -> str | None:
    """The name of the plugin engine that claims a server of ``kind`` with this ``version()`` text, if any."""
    return next((name for name, cls in engine_classes().items()
                 if name not in _BY_ENGINE and cls.kind == kind and cls.detects(version_text)), None)


def engine_for(kind: str, engine: str = "") -> Engine:
    """The engine class for a target of ``kind`` whose detected product is ``engine`` (may be empty)."""
    cls = (engine_classes().get(engine) if engine else None) or _BY_KIND.get(kind)
    if cls is None:
        raise ValueError(f"unknown target kind {kind!r}")
    return cls()


__all__ = ["CapabilityMissing", "Engine", "IsolationUnsupported", "engine_classes", "engine_for",
           "plugin_engine_detected"]
