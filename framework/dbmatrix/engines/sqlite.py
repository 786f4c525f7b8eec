"""SQLite: no server, so no lock table another connection could read.

A SQLite connection that meets a lock held by another connection gets SQLITE_BUSY and calls its *busy handler*,
which sleeps and retries until the busy timeout; that wait is invisible from any other connection. So the
observer here watches from inside: ``BusyWatch`` installs a busy handler on the session's own ``sqlite3``
connection (through ctypes, on the same libsqlite3 the ``sqlite3`` module uses) that behaves exactly like
SQLite's default one (``sqlite3_busy_timeout``: the same sleep schedule and the same timeout) and records that the
connection is waiting. ``is_blocked`` is then "the session's pending step is in its busy handler now", an
observation, not a guess. ``waits_for`` is always [] (SQLite does not say who holds the lock).

Where the handler cannot be installed (a Python whose ``sqlite3`` does not expose its handle as expected), the
watch is absent and ``is_blocked`` raises DriverError "Unobservable" instead of answering wrongly. A session
that runs ``PRAGMA busy_timeout = N`` gets the watch back with bound N (``BusyWatch.rearm``).
"""

from __future__ import annotations

import ctypes
import os
import re
import threading
import time
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import DriverError
from .base import LOCK_TIMEOUT_S, Engine
from .observer import LockObserver

if TYPE_CHECKING:
    from ..drivers.base import ConnectInfo, Session

# sqliteDefaultBusyCallback's schedule (main.c): sleep delays[i] ms on the i-th call, then 100 ms each time
_DELAYS_MS = (1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100)
_BUSY_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int)
_lib: Any = None
_BUSY_TIMEOUT_PRAGMA = re.compile(r"\s*PRAGMA\s+(?:main\.)?busy_timeout\s*=\s*(-?\d+)\s*;?\s*$", re.IGNORECASE)
_lib_lock = threading.Lock()


def _sqlite_library() -> Any:
    """libsqlite3 as linked by the ``_sqlite3`` extension (its dependencies resolve through its handle)."""
    global _lib
    with _lib_lock:
        if _lib is None:
            import _sqlite3

            lib = ctypes.CDLL(_sqlite3.__file__)
            lib.sqlite3_busy_handler.argtypes = [ctypes.c_void_p, _BUSY_CALLBACK, ctypes.c_void_p]
            lib.sqlite3_busy_handler.restype = ctypes.c_int
            lib.sqlite3_db_filename.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
            lib.sqlite3_db_filename.restype = ctypes.c_char_p
            _lib = lib
        return _lib


def _db_handle(conn: Any, path: str) -> int | None:
    """The ``sqlite3 *`` of a ``sqlite3.Connection``: CPython keeps it as the first field after the object header
    (Modules/_sqlite/connection.h, 3.8-3.13); checked against the file SQLite reports for it (``path``)."""
    import sqlite3

    if not isinstance(conn, sqlite3.Connection) or not path or path == ":memory:":
        return None
    handle = ctypes.c_void_p.from_address(id(conn) + object.__basicsize__).value
    if not handle:
        return None
    name = _sqlite_library().sqlite3_db_filename(handle, b"main")
    return handle if name and os.path.realpath(name.decode()) == os.path.realpath(path) else None


class BusyWatch:
    """A busy handler equal to ``sqlite3_busy_timeout(timeout)`` that records whether the connection waits."""

    def __init__(self, conn: Any, path: str, timeout_s: float = LOCK_TIMEOUT_S):
        self.timeout_ms = int(timeout_s * 1000)
        self.waiting = False
        self.cancelled = False
        self.waits = 0  # busy episodes seen, for the record
        handle = _db_handle(conn, path)
        if handle is None:
            raise DriverError(None, "Unobservable", "cannot reach the sqlite3 handle of this connection")
        self._callback = _BUSY_CALLBACK(self._busy)  # kept referenced: SQLite holds the C pointer
        self._conn = conn  # the handle lives as long as the connection object
        self._handle = handle
        _sqlite_library().sqlite3_busy_handler(handle, self._callback, None)

    def rearm(self, timeout_ms: int) -> None:
        """After the session ran ``PRAGMA busy_timeout = N`` (which replaced this handler): the same bound, watched
        again. N <= 0 means no busy handler at all in SQLite: a lock conflict fails at once, nothing to watch."""
        if timeout_ms > 0:
            self.timeout_ms = timeout_ms
            _sqlite_library().sqlite3_busy_handler(self._handle, self._callback, None)

    def _busy(self, _arg: Any, count: int) -> int:
        if count < len(_DELAYS_MS):
            delay, prior = _DELAYS_MS[count], sum(_DELAYS_MS[:count])
        else:
            delay, prior = _DELAYS_MS[-1], sum(_DELAYS_MS) + (count - len(_DELAYS_MS)) * _DELAYS_MS[-1]
        if self.cancelled:
            self.waiting = False
            return 0  # Session.cancel(): give up now (sqlite3_interrupt does not end a busy wait)
        if prior + delay > self.timeout_ms:
            delay = self.timeout_ms - prior
            if delay <= 0:
                self.waiting = False
                return 0  # give up: the statement fails with SQLITE_BUSY, as with the default handler
        if count == 0:
            self.waits += 1
        self.waiting = True
        time.sleep(delay / 1000.0)
        return 1

    _rearm_after: int | None = None

    def step_starts(self, sql: str) -> None:
        """Called by the session when a step starts: ``PRAGMA busy_timeout = N`` replaces this handler, so the
        watch is installed again (with bound N) once that step has run."""
        if pragma := _BUSY_TIMEOUT_PRAGMA.match(sql):
            self._rearm_after = int(pragma[1])

    def step_done(self) -> None:
        """Called by the session when a step ends (the handler is not told when a retry succeeds)."""
        self.waiting = False
        self.cancelled = False
        if self._rearm_after is not None:
            self.rearm(self._rearm_after)
            self._rearm_after = None

    def cancel(self) -> None:
        self.cancelled = True


NO_TRANSACTION = "none (autocommit: no transaction open)"


def write_lock_held(path: str) -> bool:
    """Whether a connection holds the database's write lock (RESERVED; WAL's writer lock). A probe connection of our
    own asks for it with ``BEGIN IMMEDIATE`` and busy timeout 0: SQLite answers SQLITE_BUSY at once if it is held."""
    import sqlite3

    if not path or path == ":memory:":
        raise DriverError(None, "Unobservable", "an in-memory database has no second connection to probe from")
    probe = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        probe.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if str(getattr(exc, "sqlite_errorname", "")).startswith("SQLITE_BUSY"):
            return True
        raise
    else:
        probe.execute("ROLLBACK")
        return False
    finally:
        probe.close()


class SQLiteObserver(LockObserver):
    def is_blocked(self, session: Session) -> bool:
        watch = getattr(session, "busy_watch", None)
        if watch is None:
            raise DriverError(None, "Unobservable", f"{session.adapter.id}: no busy watch on this SQLite session")
        return watch.waiting and session.pending is not None

    def waits_for(self, session: Session) -> list[Any]:
        return []


class SQLite(Engine):
    name = "sqlite"
    # SQLite is always serializable; what it has besides are lock modes and the read_uncommitted pragma
    isolation_levels: ClassVar[tuple[str, ...]] = ("serializable", "deferred", "immediate", "exclusive",
                                                   "read uncommitted")
    read_isolation_sql = "PRAGMA read_uncommitted"

    def begin_statements(self, isolation: str | None) -> list[str]:
        iso = self.check_isolation(isolation)
        if iso in (None, "serializable", "deferred"):
            return ["BEGIN DEFERRED"]
        if iso in ("immediate", "exclusive"):
            return [f"BEGIN {iso.upper()}"]
        return ["PRAGMA read_uncommitted = 1", "BEGIN DEFERRED"]

    def normalise_isolation(self, value: Any) -> str:
        return "read uncommitted" if str(value) == "1" else "serializable"

    def transaction_isolation(self, session: Session) -> str:
        """SQLite has no level to report, so what a mode means is observed: whether a transaction is open at all
        (``in_transaction``, SQLite's autocommit flag), the read_uncommitted pragma, and whether the write lock is
        held (``immediate``) or not (``deferred``)."""
        uncommitted = session.execute(self.read_isolation_sql).scalar()
        raw = session.raw_sqlite3()
        if raw is None:
            raise DriverError(None, "Unobservable", f"{session.adapter.id}: no sqlite3 connection to ask")
        if not raw.in_transaction:
            return NO_TRANSACTION
        if str(uncommitted) == "1":
            return "read uncommitted"
        return "immediate" if write_lock_held(str(session.info.url.database or "")) else "deferred"

    def expected_report(self, isolation: str) -> str:
        # serializable is SQLite's default BEGIN (DEFERRED); in WAL mode EXCLUSIVE takes the same write lock
        return {"serializable": "deferred", "exclusive": "immediate"}.get(isolation, isolation)

    def session_setup(self, info: ConnectInfo) -> list[str]:
        return []  # the busy timeout is the driver's connect argument (and the busy watch keeps it)

    def wait_bounds(self) -> list[str]:
        return [f"PRAGMA busy_timeout = {int(LOCK_TIMEOUT_S * 1000)}"]

    def observer(self, admin_url: Any) -> SQLiteObserver:
        return SQLiteObserver()

    # --- refusals for schedules and retries ---
    # the database is locked; "5" and "517" are the primary and extended result codes of drivers that give numbers
    busy_codes = frozenset({"SQLITE_BUSY", "SQLITE_BUSY_SNAPSHOT", "SQLITE_BUSY_RECOVERY", "SQLITE_LOCKED",
                            "5", "517"})
    retry_codes = frozenset({"SQLITE_BUSY", "SQLITE_BUSY_SNAPSHOT", "SQLITE_BUSY_RECOVERY", "SQLITE_LOCKED"})
    schedule_session_setup = ("PRAGMA synchronous = OFF",)  # schedules test isolation, not durability

    def attach(self, session: Session) -> None:
        raw = session.raw_sqlite3()
        if raw is not None:
            try:
                session.busy_watch = BusyWatch(raw, str(session.info.url.database or ""))
            except DriverError:
                session.busy_watch = None
