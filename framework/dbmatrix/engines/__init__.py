"""Per-engine knowledge, one small class per engine (as yoyo's backends): how a transaction is opened at an
isolation level, what bounds a session needs, how a connection names itself on the server, how to read back the
isolation level in effect, and how an outside observer sees a session wait on a lock.

``engine_for(kind, engine)`` returns the class for a target; drivers and cases ask it instead of branching on
``kind``. An isolation level an engine does not offer raises ``IsolationUnsupported`` (outcome ``unsupported``).
"""

from __future__ import annotations

from .base import CapabilityMissing, Engine, IsolationUnsupported
from .cockroachdb import CockroachDB
from .mysql import MariaDB, MySQL
from .postgresql import PostgreSQL
from .sqlite import SQLite

_BY_ENGINE: dict[str, type[Engine]] = {
    "postgresql": PostgreSQL,
    "cockroachdb": CockroachDB,
    "mysql": MySQL,
    "mariadb": MariaDB,
    "sqlite": SQLite,
}
_BY_KIND: dict[str, type[Engine]] = {"postgresql": PostgreSQL, "cockroachdb": CockroachDB, "mysql": MySQL,
                                     "sqlite": SQLite}


def engine_for(kind: str, engine: str = "") -> Engine:
    """The engine class for a target of ``kind`` whose detected product is ``engine`` (may be empty)."""
    cls = _BY_ENGINE.get(engine) or _BY_KIND.get(kind)
    if cls is None:
        raise ValueError(f"unknown target kind {kind!r}")
    return cls()


__all__ = ["CapabilityMissing", "Engine", "IsolationUnsupported", "engine_for"]
