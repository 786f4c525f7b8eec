"""sql.for_update*, sql.skip_locked, sql.nowait: row locks taken by SELECT ... FOR UPDATE, seen from a second session.

Session A locks a row inside a transaction; session B runs its locking read through ``submit()`` and the cell's
lock observer (an admin connection asking the engine: ``pg_isolation_test_session_is_blocked``, InnoDB's lock
wait, SQLite's busy handler) says whether B waits — no timer decides "blocked". B's lock wait is bounded per
transaction, so nothing here waits long even if an engine ignores a clause; A always ends its transaction, so B
is always released.
"""

from __future__ import annotations

import concurrent.futures
import time

from rowcheck import insert_rows, row_difference

from dbmatrix.casekit import requires
from dbmatrix.cell import Cell
from dbmatrix.drivers.base import Result, Session
from dbmatrix.errors import DriverError

ROWS = [(1, 10), (2, 20), (3, 30)]
B_LOCK_WAIT_S = 5
# bounds the observer's watch: B's own lock wait ends first, so the watch always ends with an answer
WATCH_S = B_LOCK_WAIT_S + 10
# Bound B's lock waits for its current transaction only; SET LOCAL also holds through a transaction pooler.
B_LOCK_WAIT = {
    "postgresql": f"SET LOCAL lock_timeout = '{B_LOCK_WAIT_S}s'",
    "mysql": f"SET SESSION innodb_lock_wait_timeout = {B_LOCK_WAIT_S}",
}


def setup(cell: Cell) -> tuple[Session, Session, str]:
    """The table with three rows, and two sessions."""
    t = cell.table("locked")
    a, b = cell.connect(), cell.connect()
    a.execute(f"CREATE TABLE {t} (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)")
    insert_rows(a, t, ("id", "v"), ROWS)
    return a, b, t


def begin_bounded(cell: Cell, s: Session) -> None:
    s.begin()
    s.execute(B_LOCK_WAIT[cell.kind])


def finish(future: concurrent.futures.Future[Result], timeout: float) -> tuple[Result | None, DriverError | None]:
    """The result or the database error of a submitted step, waiting at most ``timeout`` seconds."""
    try:
        return future.result(timeout), None
    except DriverError as exc:
        return None, exc


def unblocked(cell: Cell, s: Session, future: concurrent.futures.Future[Result]
              ) -> tuple[Result | None, DriverError | None]:
    """A step that must not wait for a lock: its result or error, or (None, None) if the engine reported it
    waiting (the step is then left pending for ``end`` to collect)."""
    if cell.observer().wait_until_blocked(s, future, WATCH_S):
        return None, None
    return finish(future, WATCH_S)


def end(*sessions: Session, pending: tuple[concurrent.futures.Future[Result], ...] = ()) -> None:
    """Roll back what is still open, so no lock outlives the case. The first session must be the lock holder:
    once it has rolled back, steps still waiting for it finish, and only then are their sessions rolled back
    (a session's connection is never used by two threads at once)."""
    holder, *others = sessions
    if holder.in_transaction:
        holder.rollback()
    for future in pending:
        try:
            future.result(WATCH_S)
        except DriverError:
            pass  # the step's own outcome was taken already; here we only wait for it to let go
    for s in others:
        if s.in_transaction:
            s.rollback()


@requires("for_update")
def test_for_update_blocks(cell):
    """B's ``SELECT ... FOR UPDATE`` of a row A has locked waits until A commits, then returns A's committed
    value (not the one B's snapshot would have shown)."""
    a, b, t = setup(cell)
    pending: tuple[concurrent.futures.Future[Result], ...] = ()
    try:
        a.begin()
        a.execute(f"SELECT v FROM {t} WHERE id = 1 FOR UPDATE")
        a.execute(f"UPDATE {t} SET v = 11 WHERE id = 1")
        begin_bounded(cell, b)
        b.execute(f"SELECT v FROM {t} WHERE id = 2")  # B's snapshot (where there is one) starts before A commits
        future = b.submit(f"SELECT id, v FROM {t} WHERE id = 1 FOR UPDATE")
        pending = (future,)
        blocked = cell.observer().wait_until_blocked(b, future, WATCH_S)
        a.commit()
        result, err = finish(future, WATCH_S)
    finally:
        end(a, b, pending=pending)
    if err is not None and not blocked:
        cell.differs(f"B's locking read failed without waiting: {err.cls} [{err.code}]: {err.message}")
    elif err is not None:
        cell.differs(f"B's locking read failed after A committed: {err.cls} [{err.code}]: {err.message}")
    elif not blocked:
        cell.differs(f"B's SELECT ... FOR UPDATE did not wait for A's lock; it returned {result.rows!r}")
    elif diff := row_difference(result.rows, [(1, 11)]):
        cell.differs(f"after A committed, B read {diff} (A committed v = 11)")
    else:
        cell.supported("B waited for A's row lock, then read A's committed v = 11", mechanism="blocked")


@requires("for_update", "skip_locked")
def test_skip_locked(cell):
    """``FOR UPDATE SKIP LOCKED`` hands out the next unlocked row at once: A holds row 1, so B's
    ``ORDER BY id LIMIT 1`` gets row 2 and a third session C then gets row 3 (a work queue)."""
    a, b, t = setup(cell)
    c = cell.connect()
    pick = f"SELECT id, v FROM {t} ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED"
    picked: dict[str, Result | None] = {}
    errors: dict[str, DriverError] = {}
    futures: list[concurrent.futures.Future[Result]] = []
    try:
        a.begin()
        picked["A"] = a.execute(pick)
        for name, s in (("B", b), ("C", c)):
            begin_bounded(cell, s)
            futures.append(s.submit(pick))
            picked[name], err = unblocked(cell, s, futures[-1])
            if err is not None:
                errors[name] = err
    finally:
        end(a, b, c, pending=tuple(futures))
    waited = [n for n, r in picked.items() if r is None and n not in errors]
    got = {n: r.rows for n, r in picked.items() if r is not None}
    want = {"A": [(1, 10)], "B": [(2, 20)], "C": [(3, 30)]}
    problems = [f"{n}: {e.cls} [{e.code}]: {e.message}" for n, e in errors.items()]
    problems += [f"{n} waited for a row lock instead of skipping the locked rows" for n in waited]
    problems += [f"{n}: {d}" for n in want if n in got and (d := row_difference(got[n], want[n]))]
    if problems:
        cell.differs("; ".join(problems))
    else:
        cell.supported("A got row 1, B row 2, C row 3, none waited", mechanism="skip")


@requires("for_update", "nowait")
def test_nowait(cell):
    """``FOR UPDATE NOWAIT`` on a row another transaction has locked fails at once with the engine's
    lock-not-available error instead of waiting; the mechanism records the error code."""
    a, b, t = setup(cell)
    pending: tuple[concurrent.futures.Future[Result], ...] = ()
    try:
        a.begin()
        a.execute(f"SELECT v FROM {t} WHERE id = 1 FOR UPDATE")
        begin_bounded(cell, b)
        start = time.perf_counter()
        pending = (b.submit(f"SELECT id, v FROM {t} WHERE id = 1 FOR UPDATE NOWAIT"),)
        result, err = unblocked(cell, b, pending[0])
        elapsed_ms = round((time.perf_counter() - start) * 1000.0, 3)
    finally:
        end(a, b, pending=pending)
    metrics = {"nowait_ms": elapsed_ms}
    if err is not None:
        # MariaDB answers NOWAIT with its lock-wait-timeout errno: only the elapsed time tells the two apart
        same_errno = (" (on MariaDB 1205 is also the lock-wait-timeout errno: only nowait_ms tells NOWAIT from a "
                      "timeout)") if cell.engine == "mariadb" and err.code == "1205" else ""
        cell.supported(
            f"failed without waiting for the lock: {err.cls} [{err.code}]: {err.message}{same_errno}",
            mechanism=f"error:{err.code}",
            metrics=metrics,
        )
    elif result is None:
        cell.differs("NOWAIT waited: the engine reported B waiting for A's row lock", mechanism="blocked",
                     metrics=metrics)
    else:
        cell.differs(f"NOWAIT returned {result.rows!r} although A held the row lock", metrics=metrics)
