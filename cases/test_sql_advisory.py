"""sql.advisory_*: advisory locks give mutual exclusion between two sessions.

Session-level locks (``pg_try_advisory_lock`` / ``GET_LOCK``) belong to the *server* connection. Behind a
transaction pooler (PgBouncer in transaction mode) a client's autocommit statements run on whichever server
connection is free, so a lock taken by A can be "held" by a server connection that B's next statement runs
on: the cases record, per step, which server connection answered (``pg_backend_pid()`` / ``CONNECTION_ID()``)
and which one holds the lock afterwards, so a broken exclusion is explained, not just detected.
Transaction-level locks (``pg_advisory_xact_lock``) live inside one transaction and survive pooling.

Whether a lock request waits is what the cell's lock observer reports (the engine's own view: a lock wait in
PostgreSQL, the ``User lock`` state in MySQL/MariaDB), and who holds a lock is asked on the observer's admin
connection, never on the driver under test: no timer decides "blocked".
"""

from __future__ import annotations

import concurrent.futures
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dbmatrix.casekit import requires
from dbmatrix.cell import Cell
from dbmatrix.drivers.base import Result, Session
from dbmatrix.errors import DriverError

LOCK_WAIT_S = 5  # bound of every blocking lock request below
WATCH_S = LOCK_WAIT_S + 10  # bounds the observer's watch: the request's own bound ends first

# Each statement returns (the function's answer, the server connection that ran it).
SESSION_LOCK_SQL: dict[str, dict[str, str]] = {
    "postgresql": {
        "try": "SELECT pg_try_advisory_lock(CAST(:lock AS BIGINT)), pg_backend_pid()",
        # pg_advisory_lock returns void: selecting from it gives one row once the lock is granted
        "wait": "SELECT true, pg_backend_pid() FROM pg_advisory_lock(CAST(:lock AS BIGINT))",
        "unlock": "SELECT pg_advisory_unlock(CAST(:lock AS BIGINT)), pg_backend_pid()",
        # asked on the observer's admin connection (DBAPI pyformat), which may sit in another database
        "holders": "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1"
        " AND classid = 0 AND CAST(objid AS BIGINT) = CAST(%(lock)s AS BIGINT)"
        " AND database = (SELECT oid FROM pg_database WHERE datname = %(database)s) ORDER BY pid",
        "release_all": "SELECT pg_advisory_unlock_all()",
    },
    "mysql": {
        "try": "SELECT GET_LOCK(:lock, 0), CONNECTION_ID()",
        "wait": f"SELECT GET_LOCK(:lock, {LOCK_WAIT_S}), CONNECTION_ID()",
        "unlock": "SELECT RELEASE_LOCK(:lock), CONNECTION_ID()",
        "holders": "SELECT IS_USED_LOCK(%(lock)s)",
        "release_all": "SELECT RELEASE_ALL_LOCKS()",
    },
}
# Bounds B's wait for the current transaction (PostgreSQL; GET_LOCK carries its own timeout).
WAIT_BOUND = {"postgresql": [f"SET LOCAL lock_timeout = '{LOCK_WAIT_S}s'"], "mysql": []}


def lock_id(cell: Cell) -> int | str:
    """The lock this cell uses: a bigint key (PostgreSQL, scoped to a database) or a name (MySQL: server-wide).
    Both include the run's scratch name, so two runs sharing a database (scratch schemas) cannot collide."""
    table = cell.table("advisory")
    scratch = cell.target.scratch_name or str(cell.target.connect_info().url.database)
    if cell.kind == "mysql":
        return f"{table}_{zlib.crc32(scratch.encode()):08x}"
    return zlib.crc32(f"{table}|{scratch}".encode())


@dataclass(eq=False)  # steps compare by identity: explain() finds a step by position
class Step:
    session: str
    op: str
    want: bool
    got: Any = None
    server: Any = None
    holders: tuple[Any, ...] = ()
    error: DriverError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.got is not None and bool(self.got) == self.want

    def __str__(self) -> str:
        answer = f"{self.error.cls} [{self.error.code}]" if self.error else repr(self.got)
        held = ", ".join(map(str, self.holders)) or "nobody"
        return f"{self.session} {self.op} -> {answer} on server conn {self.server} (held by {held})"


class LockTranscript:
    """Runs the lock statements of one cell and keeps the transcript."""

    def __init__(self, cell: Cell, sessions: Mapping[str, Session]):
        self.sql = SESSION_LOCK_SQL.get(cell.kind, SESSION_LOCK_SQL["postgresql"])
        self.params = {"lock": lock_id(cell)}
        self.sessions = sessions
        if cell.kind not in SESSION_LOCK_SQL:
            # an engine without advisory locks (the profile predicts it): PostgreSQL's request, refused by name
            next(iter(sessions.values())).execute(self.sql["try"], self.params)
        self.observer = cell.observer()  # asks who holds the lock: an admin connection, not the driver under test
        self.database = cell.target.connect_info().url.database
        self.steps: list[Step] = []

    def run(self, session: str, op: str, want: bool) -> Step:
        step = Step(session, op, want)
        try:
            step.got, step.server = self.sessions[session].execute(self.sql[op], self.params).rows[0]
        except DriverError as exc:
            step.error = exc
        return self.observe(step)

    def submit(self, session: str, op: str) -> concurrent.futures.Future[Result]:
        return self.sessions[session].submit(self.sql[op], self.params)

    def observe(self, step: Step) -> Step:
        step.holders = self.holders()
        self.steps.append(step)
        return step

    def holders(self) -> tuple[Any, ...]:
        """The server connections holding the lock now."""
        rows = self.observer.query(self.sql["holders"], {**self.params, "database": self.database})
        return tuple(r[0] for r in rows if r[0] is not None)

    def release_all(self) -> None:
        """Best effort: behind a pooler this may run on a server connection other than the one holding a lock."""
        for s in self.sessions.values():
            if s.in_transaction:
                s.rollback()
            try:
                s.execute(self.sql["release_all"])
            except DriverError:
                pass

    def verdict(self, cell: Cell, ok_detail: str, extra: list[str] | None = None) -> None:
        """Call after ``release_all``: ``differs`` naming every wrong answer and any lock left behind."""
        problems = [explain(s, self.steps) for s in self.steps if not s.ok] + (extra or [])
        if self.steps and self.steps[-1].holders:
            problems.append(
                f"After the last unlock the lock was still held by server conn {self.steps[-1].holders[0]}"
                " (a leaked session lock)."
            )
        still = self.holders()
        if still:
            problems.append(f"Even after pg_advisory_unlock_all()/RELEASE_ALL_LOCKS() it is held by {still}.")
        transcript = "; ".join(str(s) for s in self.steps)
        if problems:
            cell.differs(f"{' '.join(problems)} Transcript: {transcript}")
        else:
            cell.supported(f"{ok_detail}. Transcript: {transcript}")


def explain(step: Step, steps: list[Step]) -> str:
    """Why a step's answer is wrong, naming the server connections involved."""
    if step.error is not None:
        return f"{step.session} {step.op} failed: {step.error.cls} [{step.error.code}]: {step.error.message}."
    before = steps[steps.index(step) - 1].holders if steps.index(step) > 0 else ()
    if step.op in ("try", "wait") and not step.want:
        same = step.server in before
        why = (
            f" — it ran on server conn {step.server}, the one holding A's lock: the lock belongs to the server"
            " connection, and the pooler gave that connection to B"
            if same
            else ""
        )
        return f"{step.session} got the lock ({step.got!r}) while A held it{why}."
    if step.op == "unlock":
        where = f" on server conn {step.server} while the lock was held by {', '.join(map(str, before)) or 'nobody'}"
        return f"{step.session} unlock returned {step.got!r}{where}."
    return f"{step.session} {step.op} returned {step.got!r}, expected {step.want}."


@requires("advisory_locks")
def test_advisory_session_lock(cell):
    """A session-level advisory lock excludes other sessions: while A holds it, B's try-lock answers false;
    once A unlocks, B gets it. Each unlock answers true (the session did hold the lock)."""
    a, b = cell.connect(), cell.connect()
    locks = LockTranscript(cell, {"A": a, "B": b})
    try:
        locks.run("A", "try", True)
        locks.run("B", "try", False)
        locks.run("A", "unlock", True)
        locks.run("B", "try", True)
        locks.run("B", "unlock", True)
    finally:
        locks.release_all()
    locks.verdict(cell, "B was refused while A held the lock and got it after A's unlock")


@requires("advisory_locks")
def test_advisory_session_lock_wait(cell):
    """A blocking session-level lock request (``pg_advisory_lock`` / ``GET_LOCK(name, timeout)``) from B waits
    while A holds the lock and is granted as soon as A unlocks."""
    a, b = cell.connect(), cell.connect()
    locks = LockTranscript(cell, {"A": a, "B": b})
    extra: list[str] = []
    future = None
    try:
        held_by = locks.run("A", "try", True).holders
        b.begin()  # only to bound the wait (SET LOCAL); the lock itself is session-level and outlives COMMIT
        for stmt in WAIT_BOUND[cell.kind]:
            b.execute(stmt)
        future = locks.submit("B", "wait")
        waited = cell.observer().wait_until_blocked(b, future, WATCH_S)
        locks.run("A", "unlock", True)
        wait = Step("B", "wait", True)
        try:
            wait.got, wait.server = future.result(WATCH_S).rows[0]
        except DriverError as exc:
            wait.error = exc
        locks.observe(wait)
        if not waited:
            same = ", the one holding A's lock" if wait.server in held_by else ""
            extra.append(f"B's blocking lock request did not wait: it ran on server conn {wait.server}{same}.")
        b.commit()
        locks.run("B", "unlock", True)
    finally:
        if future is not None and not future.done():
            concurrent.futures.wait([future], timeout=WATCH_S)
        locks.release_all()
    locks.verdict(cell, "B waited while A held the lock and was granted it after A's unlock", extra)


@requires("advisory_xact_locks")
def test_advisory_xact_lock(cell):
    """A transaction-level advisory lock (``pg_advisory_xact_lock``) excludes other transactions until the
    holder commits, then is released by the COMMIT itself (no unlock call)."""
    key = {"lock": lock_id(cell)}
    a, b = cell.connect(), cell.connect()
    lock = "SELECT pg_backend_pid() FROM pg_advisory_xact_lock(CAST(:lock AS BIGINT))"
    try_lock = "SELECT pg_try_advisory_xact_lock(CAST(:lock AS BIGINT))"
    notes: list[str] = []
    future = None
    try:
        a.begin()
        a.execute(lock, key)
        b.begin()
        refused = b.execute(try_lock, key).scalar()
        b.rollback()
        if refused is not False:
            notes.append(f"B's try-lock answered {refused!r} while A's transaction held the lock")
        b.begin()
        b.execute(WAIT_BOUND["postgresql"][0])
        future = b.submit(lock, key)
        if not cell.observer().wait_until_blocked(b, future, WATCH_S):
            notes.append("B's pg_advisory_xact_lock did not wait for A's transaction")
        a.commit()
        try:
            future.result(WATCH_S)
        except DriverError as exc:
            notes.append(f"B's lock request failed after A committed: {exc.cls} [{exc.code}]: {exc.message}")
        b.commit()
        a.begin()
        free = a.execute(try_lock, key).scalar()
        a.commit()
        if free is not True:
            notes.append(f"after B's COMMIT the lock was not free: A's try-lock answered {free!r}")
    finally:
        if future is not None and not future.done():
            concurrent.futures.wait([future], timeout=WATCH_S)
        for s in (a, b):
            if s.in_transaction:
                s.rollback()
    if notes:
        cell.differs("; ".join(notes))
    else:
        cell.supported("B was refused, then waited for A's COMMIT; B's COMMIT released the lock", mechanism="blocked")
