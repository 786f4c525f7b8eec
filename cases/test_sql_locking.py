"""sql.for_update*, sql.skip_locked, sql.nowait: row locks taken by SELECT ... FOR UPDATE, seen from a second session.

Each case is a schedule spec in the style of PostgreSQL's isolation tester: sessions of named steps, one
permutation, and what each step must do (``blocked``, its rows, an error). Session A locks a row inside a
transaction; whether B's locking read waits is what the cell's lock observer says (an admin connection asking
the engine: ``pg_blocking_pids``, InnoDB's lock wait), never a timer. B's lock wait is bounded per transaction,
so nothing here waits long even if an engine ignores a clause; every session ends its transaction, so B is
always released.
"""

from __future__ import annotations

from schedule_cells import lock_wait_bound, run_spec

from dbmatrix.casekit import requires
from dbmatrix.schedules.model import Schedule, step

B_LOCK_WAIT_S = 5
# bounds the whole schedule: B's own lock wait ends first, so a run always ends with an answer
WATCH_S = B_LOCK_WAIT_S + 10
SETUP = ["CREATE TABLE {t} (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)",
         "INSERT INTO {t} (id, v) VALUES (1, 10), (2, 20), (3, 30)"]
BOUND = lock_wait_bound(B_LOCK_WAIT_S)  # SET LOCAL where it exists: it also holds through a transaction pooler

# B's SELECT ... FOR UPDATE of a row A has locked waits until A commits, then returns A's committed value (not
# the one B's snapshot, taken by b_snapshot before A commits, would show).
FOR_UPDATE = Schedule(
    setup=SETUP,
    sessions={
        "A": ["a_begin: begin", "a_lock: SELECT v FROM {t} WHERE id = 1 FOR UPDATE",
              "a_write: UPDATE {t} SET v = 11 WHERE id = 1", "a_commit: commit"],
        "B": ["b_begin: begin", step("b_bound", BOUND), "b_snapshot: SELECT v FROM {t} WHERE id = 2",
              step("b_lock", "SELECT id, v FROM {t} WHERE id = 1 FOR UPDATE", expect=("blocked", "ok", [(1, 11)])),
              "b_commit: commit"],
    },
    permutation="a_begin a_lock a_write b_begin b_bound b_snapshot b_lock a_commit b_commit",
    final_sql=None,
)

# A work queue: A holds row 1, so B's ORDER BY id LIMIT 1 gets row 2 at once and C then gets row 3.
PICK = "SELECT id, v FROM {t} ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED"
SKIP_LOCKED = Schedule(
    setup=SETUP,
    sessions={
        "A": ["a_begin: begin", step("a_pick", PICK, expect=[(1, 10)]), "a_rollback: rollback"],
        "B": ["b_begin: begin", step("b_bound", BOUND),
              step("b_pick", PICK, expect=("not blocked", "ok", [(2, 20)])), "b_rollback: rollback"],
        "C": ["c_begin: begin", step("c_bound", BOUND),
              step("c_pick", PICK, expect=("not blocked", "ok", [(3, 30)])), "c_rollback: rollback"],
    },
    permutation="a_begin a_pick b_begin b_bound b_pick c_begin c_bound c_pick a_rollback b_rollback c_rollback",
    final_sql=None,
)

# FOR UPDATE NOWAIT on a row A has locked fails at once with the engine's lock-not-available error.
NOWAIT = Schedule(
    setup=SETUP,
    sessions={
        "A": ["a_begin: begin", "a_lock: SELECT v FROM {t} WHERE id = 1 FOR UPDATE", "a_rollback: rollback"],
        "B": ["b_begin: begin", step("b_bound", BOUND),
              step("b_nowait", "SELECT id, v FROM {t} WHERE id = 1 FOR UPDATE NOWAIT", expect=("not blocked", "error")),
              "b_rollback: rollback"],
    },
    permutation="a_begin a_lock b_begin b_bound b_nowait a_rollback b_rollback",
    final_sql=None,
)


def verdict(cell, execution, ok: str, mechanism: str | None = None) -> None:
    """``differs`` naming every step that broke its expectation, else ``supported``; the transcript either way."""
    problems = execution.mismatches()
    transcript = execution.transcript()
    if problems:
        cell.differs(f"{'; '.join(problems)}. Transcript: {transcript}")
    else:
        cell.supported(f"{ok}. Transcript: {transcript}", mechanism=mechanism)


@requires("for_update")
def test_for_update_blocks(cell):
    """B's ``SELECT ... FOR UPDATE`` of a row A has locked waits until A commits, then returns A's committed
    value (not the one B's snapshot would have shown)."""
    execution = run_spec(cell, FOR_UPDATE, cell.table("locked"), WATCH_S)
    verdict(cell, execution, "B waited for A's row lock, then read A's committed v = 11", mechanism="blocked")


@requires("for_update", "skip_locked")
def test_skip_locked(cell):
    """``FOR UPDATE SKIP LOCKED`` hands out the next unlocked row at once: A holds row 1, so B's
    ``ORDER BY id LIMIT 1`` gets row 2 and a third session C then gets row 3 (a work queue)."""
    execution = run_spec(cell, SKIP_LOCKED, cell.table("locked"), WATCH_S)
    verdict(cell, execution, "A got row 1, B row 2, C row 3, none waited", mechanism="skip")


@requires("for_update", "nowait")
def test_nowait(cell):
    """``FOR UPDATE NOWAIT`` on a row another transaction has locked fails at once with the engine's
    lock-not-available error instead of waiting; the mechanism records the error code."""
    execution = run_spec(cell, NOWAIT, cell.table("locked"), WATCH_S)
    b = execution.by_step()["b_nowait"]
    metrics = {"nowait_ms": round((b.elapsed_s or 0.0) * 1000.0, 3)}
    if b.blocked:
        cell.differs("NOWAIT waited: the engine reported B waiting for A's row lock", mechanism="blocked",
                     metrics=metrics)
    elif not b.failed:
        cell.differs(f"NOWAIT returned {b.rows!r} although A held the row lock", metrics=metrics)
    else:
        # MariaDB answers NOWAIT with its lock-wait-timeout errno: only the elapsed time tells the two apart
        same_errno = (" (on MariaDB 1205 is also the lock-wait-timeout errno: only nowait_ms tells NOWAIT from a "
                      "timeout)") if cell.engine == "mariadb" and b.code == "1205" else ""
        cls = type(b.error).__name__ if b.error is None else getattr(b.error, "cls", type(b.error).__name__)
        cell.supported(f"failed without waiting for the lock: {cls} [{b.code}]: {b.message}{same_errno}",
                       mechanism=f"error:{b.code or cls}", metrics=metrics)
