"""sqlite3: the standard library SQLite binding; it takes ``:name`` parameters natively.

Errors need no special mapping: since Python 3.11 every SQLite error carries ``sqlite_errorname``, the
extended result code (``SQLITE_CONSTRAINT_PRIMARYKEY``, ``SQLITE_BUSY``), which ``default_normalise`` uses.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from ..engines.base import LOCK_TIMEOUT_S
from . import params
from .dbapi import DBAPISession, fetch_batches, translate
from .protocol import ConnectInfo, DriverAdapter, with_options
from .session import Session


def sqlite_connect_args(info: ConnectInfo) -> tuple[str, dict[str, Any]]:
    """Path and keywords for ``sqlite3.connect``: autocommit (BEGIN/COMMIT are ours to send), lock bound.

    ``sqlite://`` with no path is an in-memory database, as in SQLAlchemy.
    """
    return info.url.database or ":memory:", with_options({"timeout": LOCK_TIMEOUT_S, "isolation_level": None}, info)


# The mode sqlite3's legacy transaction control names in its implicit BEGIN, per level. SQLite is serializable in
# every mode (DEFERRED is its default); ``read uncommitted`` is the read_uncommitted pragma, which no driver API sets.
LEGACY_MODES = {"serializable": "DEFERRED", "deferred": "DEFERRED", "immediate": "IMMEDIATE",
                "exclusive": "EXCLUSIVE", "read uncommitted": "DEFERRED"}


def legacy_begin_api(driver: str, isolation: str) -> str:
    """What ``begin_native`` of sqlite3/aiosqlite does, said in the cell."""
    pragma = "PRAGMA read_uncommitted = 1 (no API for it), then " if isolation == "read uncommitted" else ""
    return (f"{driver} {pragma}conn.isolation_level = {LEGACY_MODES[isolation]!r} (legacy transaction control: "
            "the implicit BEGIN comes before INSERT/UPDATE/DELETE/REPLACE only)")


def stream_batches(conn: Any, query: str, args: Any, batch: int) -> Iterator[list[tuple[Any, ...]]]:
    """SQLite runs in-process and steps its statement one row at a time: a plain cursor is already lazy, so
    ``fetchmany`` gives ``batch`` rows per call with nothing buffered beyond them."""
    yield from fetch_batches(conn.execute(query, args if args is not None else ()), batch)


class Sqlite3Session(DBAPISession):
    """One sqlite3 connection in autocommit mode (``isolation_level=None``)."""

    @staticmethod
    def _bind(args: Any) -> Any:
        return args if args is not None else ()  # sqlite3 wants a sequence even for no parameters

    def begin_native(self, isolation: str) -> str:
        """``conn.isolation_level = 'DEFERRED' | 'IMMEDIATE'``, the one sqlite3 API that names a transaction mode, on
        every Python: 3.12's ``autocommit=False`` opens a DEFERRED transaction at once but cannot ask for IMMEDIATE.
        Where ``autocommit`` exists (feature-detected) and is not legacy, isolation_level would be ignored, so it is
        set to LEGACY_TRANSACTION_CONTROL for the transaction and put back after it."""
        iso = self.checked_level(isolation)
        conn, mode = self.conn, LEGACY_MODES[iso]
        legacy = getattr(importlib.import_module("sqlite3"), "LEGACY_TRANSACTION_CONTROL", None)
        saved_level, saved_autocommit, saved_pragma = conn.isolation_level, getattr(conn, "autocommit", legacy), []

        def restore() -> None:
            conn.isolation_level = saved_level  # (setting None commits an open transaction: end() ended it first)
            if getattr(conn, "autocommit", legacy) != saved_autocommit:
                conn.autocommit = saved_autocommit
            if saved_pragma:
                conn.execute(f"PRAGMA read_uncommitted = {int(saved_pragma[0])}").close()

        def apply() -> None:
            if iso == "read uncommitted":
                saved_pragma.append(conn.execute("PRAGMA read_uncommitted").fetchone()[0])
                conn.execute("PRAGMA read_uncommitted = 1").close()
            if saved_autocommit != legacy:
                conn.autocommit = legacy
            conn.isolation_level = mode

        return self._open_with_settings(conn, apply, restore, legacy_begin_api("sqlite3", iso))

    def raw_sqlite3(self) -> Any:
        return self.conn

    def _stream(self, sql: str, params: Mapping[str, Any] | None, batch: int) -> Iterator[list[tuple[Any, ...]]]:
        query, args = translate(self.adapter, sql, params)
        return stream_batches(self.conn, query, args, batch)


class SQLiteKnowledge(DriverAdapter):
    """What sqlite3 and aiosqlite declare alike (aiosqlite is sqlite3 on a thread of its own)."""

    kinds: ClassVar[frozenset[str]] = frozenset({"sqlite"})
    paramstyle: ClassVar[str] = params.NAMED
    exceptions: ClassVar[tuple[str, ...]] = ("sqlite3.Error",)
    refusals: ClassVar[tuple[tuple[str, str], ...]] = (("ProgrammingError", r"type '[\w.]+' is not supported"),)

    def cancel_running(self, session: Session, raw: Any, fut: Any) -> None:
        # ``interrupt()`` ends a running statement; the busy watch (engines/sqlite.py) gives up a lock wait, which
        # sqlite3_interrupt does not end
        session.raw_sqlite3().interrupt()

    def sa_connect_args(self, info: ConnectInfo) -> dict[str, Any]:
        # no connect timeout in SQLite; ``timeout`` is its busy timeout, as in the sqlite3 adapter
        return {"timeout": LOCK_TIMEOUT_S}


class Sqlite3Adapter(SQLiteKnowledge):
    id: ClassVar[str] = "sqlite3"
    modules: ClassVar[tuple[str, ...]] = ("sqlite3",)  # a Python built without SQLite has no _sqlite3
    sa_driver: ClassVar[str | None] = "pysqlite"

    def sa_connect_args(self, info: ConnectInfo) -> dict[str, Any]:
        # check_same_thread=False: submit() runs statements on a worker thread (one at a time per session)
        return {**super().sa_connect_args(info), "check_same_thread": False}

    def open(self, info: ConnectInfo) -> Session:
        sqlite3 = importlib.import_module("sqlite3")
        path, kwargs = sqlite_connect_args(info)
        try:
            # check_same_thread=False: submit() runs the statement on a worker thread (one at a time per session).
            conn = sqlite3.connect(path, check_same_thread=False, **kwargs)
        except sqlite3.Error as exc:
            raise self.normalise_error(exc) or exc from None
        return Sqlite3Session(self, info, conn)
