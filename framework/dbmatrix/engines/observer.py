"""The lock observer: answers "is this session waiting on a lock?" from outside the session.

It asks the engine (an admin connection of its own, never the driver under test), so a verdict such as
``blocked`` never depends on a timer: a step is blocked when the server says so, and a step that finished
first was not. Polling starts at 0.5 ms and backs off to 10 ms, so detection costs little on a loaded machine; between
two questions it waits on the step itself, so a step that finishes is seen finished at once.
"""

from __future__ import annotations

import concurrent.futures
import time
from typing import TYPE_CHECKING, Any

from ..errors import DriverError

if TYPE_CHECKING:
    from ..drivers.base import Session

FIRST_POLL_S = 0.0005
MAX_POLL_S = 0.01
DEFAULT_WAIT_S = 30.0


class LockObserver:
    """Subclasses answer ``is_blocked`` and ``waits_for`` for one engine."""

    def is_blocked(self, session: Session) -> bool:
        """Whether ``session`` is waiting on a lock right now (as the engine reports it)."""
        raise NotImplementedError

    def waits_for(self, session: Session) -> list[Any]:
        """The server ids of the connections ``session`` waits on ([] when not waiting or not knowable)."""
        raise NotImplementedError

    def wait_until_blocked(self, session: Session, future: concurrent.futures.Future[Any],
                           timeout: float = DEFAULT_WAIT_S) -> bool:
        """True once the engine reports ``session`` waiting on a lock; False if ``future`` (its pending step)
        finished first. Neither within ``timeout`` seconds: DriverError "HarnessTimeout" (nothing hangs)."""
        deadline = time.monotonic() + timeout
        delay = FIRST_POLL_S
        while True:
            # blocked is asked first: a step seen waiting was blocked, even if it finishes a moment later
            if self.is_blocked(session):
                return True
            if future.done():
                return False
            if time.monotonic() > deadline:
                raise DriverError(None, "HarnessTimeout",
                                  f"the step was neither blocked nor finished after {timeout}s")
            # a wait on the step itself, not a sleep: a step that finishes meanwhile ends the wait at once
            concurrent.futures.wait([future], timeout=delay)
            delay = min(delay * 2, MAX_POLL_S)

    def close(self) -> None:
        """Close the observer's own connection (if any). Safe to call twice."""

    def __enter__(self) -> LockObserver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AdminObserver(LockObserver):
    """An observer over one autocommit DBAPI connection; ``query`` is serialised (the observer may be shared by
    the threads of a schedule executor)."""

    def __init__(self, conn: Any):
        import threading

        self.conn = conn
        self._lock = threading.Lock()

    def query(self, sql: str, args: Any = None, fetch: bool = True) -> list[tuple[Any, ...]]:
        """The rows of ``sql`` ([] with ``fetch=False``, for statements such as SET that return none)."""
        with self._lock:
            cur = self.conn.cursor()
            try:
                cur.execute(sql, args)
                return [tuple(r) for r in cur.fetchall()] if fetch else []
            finally:
                cur.close()

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            finally:
                self.conn = None
