"""sql.advisory_*: advisory locks give mutual exclusion between two sessions.

Each case is a schedule spec (isolation-tester style): named steps per session with SQL per engine, the lock key
as a bound parameter (``:lock``), what each step must return, and after each step a question to the lock
observer: who holds the lock (``pg_locks`` / ``IS_USED_LOCK``, asked on the observer's admin connection, never on
the driver under test). Whether a lock request waits is what the observer reports (a lock wait in PostgreSQL, the
``User lock`` state in MySQL/MariaDB): no timer decides "blocked".

Session-level locks (``pg_try_advisory_lock`` / ``GET_LOCK``) belong to the *server* connection. Behind a
transaction pooler (PgBouncer in transaction mode) a client's autocommit statements run on whichever server
connection is free, so a lock taken by A can be "held" by a server connection that B's next statement runs on:
each lock statement also returns the server connection that ran it (``pg_backend_pid()`` / ``CONNECTION_ID()``),
so a broken exclusion is explained, not just detected. Transaction-level locks (``pg_advisory_xact_lock``) live
inside one transaction and survive pooling.
"""

from __future__ import annotations

import zlib

from schedule_cells import lock_wait_bound, run_spec

from dbmatrix.casekit import requires
from dbmatrix.cell import Cell
from dbmatrix.schedules.model import ANY, Execution, Schedule, StepResult, step

LOCK_WAIT_S = 5  # bound of every blocking lock request below
WATCH_S = LOCK_WAIT_S + 10  # bounds the whole schedule: the request's own bound ends first

# Each statement returns (the function's answer as an integer, the server connection that ran it). An engine
# without advisory locks runs PostgreSQL's ("*"), so its refusal is the engine's own (the profile predicts it).
PG_KEY = "CAST(:lock AS BIGINT)"
TRY = {"*": f"SELECT CAST(pg_try_advisory_lock({PG_KEY}) AS INTEGER), pg_backend_pid()",
       "mysql": "SELECT GET_LOCK(:lock, 0), CONNECTION_ID()"}
# pg_advisory_lock returns void: selecting from it gives one row once the lock is granted
WAIT = {"*": f"SELECT 1, pg_backend_pid() FROM pg_advisory_lock({PG_KEY})",
        "mysql": f"SELECT GET_LOCK(:lock, {LOCK_WAIT_S}), CONNECTION_ID()"}
UNLOCK = {"*": f"SELECT CAST(pg_advisory_unlock({PG_KEY}) AS INTEGER), pg_backend_pid()",
          "mysql": "SELECT RELEASE_LOCK(:lock), CONNECTION_ID()"}
# a row, not the function's void (which a driver may not decode: psqlpy), like WAIT
RELEASE_ALL = {"*": "SELECT 1 FROM pg_advisory_unlock_all()", "mysql": "SELECT RELEASE_ALL_LOCKS()"}
# asked on the observer's admin connection (DBAPI pyformat), which may sit in another database
QUESTIONS = {"holders": {
    "postgresql": "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1"
                  " AND classid = 0 AND CAST(objid AS BIGINT) = CAST(%(lock)s AS BIGINT)"
                  " AND database = (SELECT oid FROM pg_database WHERE datname = %(database)s) ORDER BY pid",
    "mysql": "SELECT IS_USED_LOCK(%(lock)s)",
    "*": None,  # an engine without advisory locks: nothing to ask (its lock statements fail first)
}}
# Bounds B's wait for the current transaction (PostgreSQL; GET_LOCK carries its own timeout).
WAIT_BOUND = lock_wait_bound(LOCK_WAIT_S, engines=("postgresql",))
GRANTED, REFUSED = [(1, ANY)], [(0, ANY)]


def lock_step(name: str, sql: dict[str, str], expect: object, last: bool = False):
    """A lock statement, followed by the question who holds the lock; ``last``: nobody may hold it then."""
    return step(name, sql, expect=expect, observe="holders", observed=() if last else None)


def release(session: str) -> object:
    """Best effort at the end (behind a pooler it may run on a server connection other than the holder's);
    whoever still holds the lock afterwards is a leak the last release's question reports."""
    return step(f"{session}_release", RELEASE_ALL, observe="holders")


# While A holds the lock B's try-lock is refused; once A unlocks, B gets it. Each unlock answers 1 (held).
SESSION_LOCK = dict(
    sessions={
        "a": [lock_step("a_try", TRY, GRANTED), lock_step("a_unlock", UNLOCK, ("ok", GRANTED)), release("a")],
        "b": [lock_step("b_try", TRY, ("ok", REFUSED)), lock_step("b_try_again", TRY, ("ok", GRANTED)),
              lock_step("b_unlock", UNLOCK, ("ok", GRANTED), last=True), release("b")],
    },
    permutation="a_try b_try a_unlock b_try_again b_unlock a_release b_release",
)

# B's blocking request waits while A holds the lock and is granted once A unlocks. B's transaction only bounds
# the wait (SET LOCAL); the lock itself is session-level and outlives its COMMIT.
SESSION_LOCK_WAIT = dict(
    sessions={
        "a": [lock_step("a_try", TRY, GRANTED), lock_step("a_unlock", UNLOCK, ("ok", GRANTED)), release("a")],
        "b": ["b_begin: begin", step("b_bound", WAIT_BOUND), lock_step("b_wait", WAIT, ("blocked", "ok", GRANTED)),
              "b_commit: commit", lock_step("b_unlock", UNLOCK, ("ok", GRANTED), last=True), release("b")],
    },
    permutation="a_try b_begin b_bound b_wait a_unlock b_commit b_unlock a_release b_release",
)

# A transaction-level lock excludes other transactions until the holder commits, and the COMMIT releases it.
XACT_LOCK_SQL = f"SELECT pg_backend_pid() FROM pg_advisory_xact_lock({PG_KEY})"
XACT_TRY = f"SELECT CAST(pg_try_advisory_xact_lock({PG_KEY}) AS INTEGER)"
XACT_LOCK = dict(
    sessions={
        "a": ["a_begin: begin", f"a_lock: {XACT_LOCK_SQL}", "a_commit: commit",
              "a_begin_again: begin", step("a_try", XACT_TRY, ("ok", [(1,)])), "a_commit_again: commit"],
        "b": ["b_begin: begin", step("b_try", XACT_TRY, ("ok", [(0,)])), "b_rollback: rollback",
              "b_begin_again: begin", step("b_bound", WAIT_BOUND), step("b_lock", XACT_LOCK_SQL, ("blocked", "ok")),
              "b_commit: commit"],
    },
    permutation="a_begin a_lock b_begin b_try b_rollback b_begin_again b_bound b_lock a_commit b_commit "
                "a_begin_again a_try a_commit_again",
)


def lock_id(cell: Cell) -> int | str:
    """The lock this cell uses: a bigint key (PostgreSQL, scoped to a database) or a name (MySQL: server-wide).
    Both include the run's scratch name, so two runs sharing a database (scratch schemas) cannot collide."""
    table = cell.table("advisory")
    scratch = cell.target.scratch_name or str(cell.target.connect_info().url.database)
    if cell.kind == "mysql":
        return f"{table}_{zlib.crc32(scratch.encode()):08x}"
    return zlib.crc32(f"{table}|{scratch}".encode())


def run_locks(cell: Cell, spec: dict) -> Execution:
    params = {"lock": lock_id(cell), "database": cell.target.connect_info().url.database}
    teardown = {s: [RELEASE_ALL] for s in spec["sessions"]}
    schedule = Schedule(setup=[], final_sql=None, params=params, questions=QUESTIONS, session_teardown=teardown,
                        **spec)
    return run_spec(cell, schedule, deadline=WATCH_S)


def pooled_note(execution: Execution, result: StepResult) -> str:
    """Why a lock request got a lock another session held: it ran on the holder's server connection."""
    if execution.schedule.steps[result.step].sql not in (TRY, WAIT):
        return ""
    results = execution.results
    index = results.index(result)
    before = next((r.observed for r in reversed(results[:index]) if r.observed is not None), ())
    server = result.rows[0][1] if result.rows and len(result.rows[0]) > 1 else None
    if server is None or server not in (before or ()):
        return ""
    return (f" — it ran on server conn {server}, the one holding the lock: the lock belongs to the server "
            "connection, and the pooler gave that connection to this session")


def verdict(cell: Cell, execution: Execution, ok: str, mechanism: str | None = None) -> None:
    """``differs`` naming every step that broke its expectation (and a lock left behind), else ``supported``."""
    problems = []
    for r in execution.results:
        text = r.mismatch(execution.schedule.steps[r.step])
        if text is not None:
            problems.append(text + pooled_note(execution, r))
    released = [r for r in execution.results if r.step.endswith("_release")]
    if released and released[-1].observed:
        problems.append(f"Even after pg_advisory_unlock_all()/RELEASE_ALL_LOCKS() the lock is held by server conn "
                        f"{', '.join(map(str, released[-1].observed))} (a leaked session lock).")
    transcript = execution.transcript()
    if problems:
        cell.differs(f"{' '.join(problems)} Transcript: {transcript}")
    else:
        cell.supported(f"{ok}. Transcript: {transcript}", mechanism=mechanism)


@requires("advisory_locks")
def test_advisory_session_lock(cell):
    """A session-level advisory lock excludes other sessions: while A holds it, B's try-lock answers false;
    once A unlocks, B gets it. Each unlock answers true (the session did hold the lock)."""
    verdict(cell, run_locks(cell, SESSION_LOCK), "B was refused while A held the lock and got it after A's unlock")


@requires("advisory_locks")
def test_advisory_session_lock_wait(cell):
    """A blocking session-level lock request (``pg_advisory_lock`` / ``GET_LOCK(name, timeout)``) from B waits
    while A holds the lock and is granted as soon as A unlocks."""
    verdict(cell, run_locks(cell, SESSION_LOCK_WAIT),
            "B waited while A held the lock and was granted it after A's unlock")


@requires("advisory_xact_locks")
def test_advisory_xact_lock(cell):
    """A transaction-level advisory lock (``pg_advisory_xact_lock``) excludes other transactions until the
    holder commits, then is released by the COMMIT itself (no unlock call)."""
    verdict(cell, run_locks(cell, XACT_LOCK), "B was refused, then waited for A's COMMIT; B's COMMIT released the lock",
            mechanism="blocked")
