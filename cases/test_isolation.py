"""isolation.*: the classic anomalies of Adya / Hermitage, each a schedule run step by step at every level, then
Hermitage's variants beyond its ten columns (PMP-write, G-single-dependencies, G-single-write-1/-2, and Fekete et
al.'s read-only transaction anomaly).

Every case is a schedule in the spirit of PostgreSQL's isolation tester: sessions with tiny named steps and one
permutation. The table is Hermitage's (``id``, ``value``; rows (1, 10), (2, 20)). Writes that depend on a read
are computed by the client from the value it read (``{r1} + 1``), so an anomaly shows in the data. A step that
waits on a lock is seen waiting by the engine's lock observer, and the next step goes on (``<waiting ...>``).

Outcome: ``allowed`` when the anomaly happened, else ``prevented`` with how: ``blocked`` (a step waited on a lock),
``abort:<code>`` (the engine refused a step: 40001, 40P01, 1213, ...), ``busy`` (SQLite), or ``snapshot`` (the
reads simply did not see the other transaction). An error outside those (a bug of ours) is ``error``.

Every cell that ran writes its schedule as run into the run folder (``transcript.sql``, listed in the cell's
``artifacts``): one line per statement in issue order, with the session that runs it and what it returned,
that it blocked, or the code it failed with, so it can be replayed by hand in two psql / mariadb shells.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from schedule_cells import level_refusal, skip_transaction_pooled

from dbmatrix.casekit import axes, expect
from dbmatrix.cell import Cell
from dbmatrix.engines import IsolationUnsupported, engine_for
from dbmatrix.results import ALLOWED, PREVENTED
from dbmatrix.schedules.executor import ScheduleExecutor
from dbmatrix.schedules.model import ISOLATION_CODES, Execution, Schedule
from dbmatrix.schedules.transcript import session_transcript

LEVELS = ["read uncommitted", "read committed", "repeatable read", "serializable", "deferred", "immediate"]
SETUP = ["create table {t} (id integer primary key, value integer)",
         "insert into {t} (id, value) values (1, 10), (2, 20)"]
FINAL = "select id, value from {t} order by id"
TRANSCRIPT_TABLE = "hermitage_test"  # the table's name in the replayable transcripts (the cell's own is random)
# The engines decide the anomalies; the driver only opens the transaction. So by default the anomaly cases run
# through one raw driver and one SQLAlchemy layer per kind (isolation.effective_level checks every driver's way of
# asking for a level); --driver runs them through any other.
ANOMALY_DRIVERS = {"psycopg", "sa-orm+asyncpg", "mysqlclient", "sa-core+pymysql", "sqlite3", "sa-orm+sqlite3"}
pytestmark = axes("target", "driver", drivers=tuple(sorted(ANOMALY_DRIVERS)))

Detector = Callable[[Execution], str | None]


def spec(sessions: dict[str, list[str]], permutation: str) -> Schedule:
    return Schedule(setup=SETUP, sessions=sessions, permutation=permutation, final_sql=FINAL)


def values(ex: Execution) -> dict[str, object]:
    return {r.step: (r.value if r.status == "ok" else None) for r in ex.results}


def rows(ex: Execution, step: str) -> list[tuple]:
    r = ex.by_step().get(step)
    return [tuple(x) for x in r.rows] if r is not None and r.status == "ok" else []


def both_committed(ex: Execution, *sessions: str) -> bool:
    return all(ex.committed(s) for s in sessions)


def evidence(ex: Execution) -> str:
    """``step=result`` in completion order, then the final rows: the evidence behind the outcome, in one line."""
    parts = []
    for r in ex.results:
        text = f"{r.step}={r.describe()}"
        if r.blocked:
            text += f"(after {r.resumed_after})" if r.resumed_after else ""
        parts.append(text)
    return " ".join(parts) + f"; final {ex.final}"


def run_anomaly(cell: Cell, isolation: str, schedule: Schedule, detect: Detector, anomaly: str) -> None:
    """Run ``schedule`` at ``isolation`` and record whether ``anomaly`` happened, and how it was prevented."""
    skip_transaction_pooled(cell)
    try:
        engine_for(cell.kind, cell.engine).check_isolation(isolation)
    except IsolationUnsupported as exc:
        cell.unsupported(exc)
        return
    table = cell.table("iso")
    sessions = {name: cell.connect() for name in schedule.sessions}
    admin = next(iter(sessions.values()))
    refused = level_refusal(admin, isolation)
    if refused is not None:
        cell.unsupported(refused)
        return
    admin.execute(f"drop table if exists {table}")
    try:
        execution = ScheduleExecutor(sessions, cell.observer(), isolation, table).run(schedule)
    finally:
        admin.execute(f"drop table if exists {table}")
    odd = [r for r in execution.results if r.failed and r.status != "busy" and str(r.code) not in ISOLATION_CODES]
    summary = evidence(execution)
    if odd:
        r = odd[0]
        why = f"step {r.step} failed with [{r.code}] {r.message}, which prevents nothing"
        write_transcript(cell, isolation, execution, f"error: {why}", anomaly)
        raise AssertionError(f"{why}: {summary}")
    seen = detect(execution)
    metrics = {"blocked_steps": sum(r.blocked for r in execution.results),
               "aborted_steps": sum(r.failed for r in execution.results)}
    mechanism = None if seen else execution.mechanism() or "snapshot"
    write_transcript(cell, isolation, execution, f"allowed: {seen}" if seen else f"prevented ({mechanism})", anomaly)
    if seen:
        cell.record(ALLOWED, f"{anomaly}: {seen} | {summary}", metrics=metrics)
    else:
        cell.record(PREVENTED, f"no {anomaly} | {summary}", mechanism=mechanism, metrics=metrics)


def write_transcript(cell: Cell, isolation: str, execution: Execution, outcome: str, anomaly: str) -> None:
    """The schedule as run, for one shell per session, as the cell's artifact ``transcript.sql``."""
    engine = engine_for(cell.kind, cell.engine)
    version = f" {cell.target.server_version}" if cell.target.server_version else ""
    header = [f"{cell.case}: {anomaly}",
              f"{cell.target.name} ({cell.engine or cell.kind}{version}) at {isolation}, run through "
              f"{cell.driver_id} by dbmatrix",
              f"outcome: {outcome}"]
    notes, setup = [], list(execution.schedule.setup)
    if cell.kind == "sqlite":  # the target's file is in WAL mode; the sqlite3 shell's default busy timeout is 0
        notes = ["sqlite3 shells: run .timeout 10000 in each first, so that a statement waits for a lock as "
                 "dbmatrix's sessions do"]
        setup.insert(0, "PRAGMA journal_mode = WAL")
    text = session_transcript(execution, table=TRANSCRIPT_TABLE, header=header, notes=notes, setup=setup,
                              begin={s: engine.begin_statements(isolation) for s in execution.schedule.sessions})
    cell.artifact_path("transcript.sql").write_text(text, encoding="utf-8")


level = pytest.mark.parametrize("isolation", LEVELS)


# --- G0: write cycles (dirty writes) ---------------------------------------------------------------------
G0 = spec({"s1": ["b1: begin", "w1x: update {t} set value = 11 where id = 1",
                  "w1y: update {t} set value = 21 where id = 2", "c1: commit"],
           "s2": ["b2: begin", "w2x: update {t} set value = 12 where id = 1",
                  "w2y: update {t} set value = 22 where id = 2", "c2: commit"]},
          "b1 b2 w1x w2x w2y w1y c1 c2")


def g0(ex: Execution) -> str | None:
    if ex.final == [(1, 12), (2, 21)]:
        return "T2 overwrote T1's uncommitted x and T1 overwrote T2's uncommitted y: final x=12 (T2), y=21 (T1)"
    return None


@expect(PREVENTED)
@level
def test_dirty_write(cell, isolation):
    """G0: no write cycle — T1 and T2 each write x and y; the final state is all of one or all of the other."""
    run_anomaly(cell, isolation, G0, g0, "G0 dirty write")


# --- G1a: aborted reads ----------------------------------------------------------------------------------
G1A = spec({"s1": ["b1: begin", "w1: update {t} set value = 101 where id = 1", "a1: rollback"],
            "s2": ["b2: begin", "r2a: select value from {t} where id = 1", "r2b: select value from {t} where id = 1",
                   "c2: commit"]},
           "b1 b2 w1 r2a a1 r2b c2")


def g1a(ex: Execution) -> str | None:
    v = values(ex)
    return "T2 read 101, written by T1 which then rolled back" if 101 in (v.get("r2a"), v.get("r2b")) else None


@expect(PREVENTED)
@level
def test_aborted_read(cell, isolation):
    """G1a: a transaction never reads a value written by a transaction that aborts."""
    run_anomaly(cell, isolation, G1A, g1a, "G1a aborted read")


# --- G1b: intermediate reads ---------------------------------------------------------------------------------
G1B = spec({"s1": ["b1: begin", "w1a: update {t} set value = 101 where id = 1",
                   "w1b: update {t} set value = 11 where id = 1", "c1: commit"],
            "s2": ["b2: begin", "r2a: select value from {t} where id = 1", "r2b: select value from {t} where id = 1",
                   "c2: commit"]},
           "b1 b2 w1a r2a w1b c1 r2b c2")


def g1b(ex: Execution) -> str | None:
    v = values(ex)
    return "T2 read 101, T1's intermediate value (T1 committed 11)" if 101 in (v.get("r2a"), v.get("r2b")) else None


@expect(PREVENTED)
@level
def test_intermediate_read(cell, isolation):
    """G1b: a transaction never reads a value another transaction later overwrote before committing."""
    run_anomaly(cell, isolation, G1B, g1b, "G1b intermediate read")


# --- G1c: circular information flow ------------------------------------------------------------------------------
G1C = spec({"s1": ["b1: begin", "w1: update {t} set value = 11 where id = 1",
                   "r1: select value from {t} where id = 2", "c1: commit"],
            "s2": ["b2: begin", "w2: update {t} set value = 22 where id = 2",
                   "r2: select value from {t} where id = 1", "c2: commit"]},
           "b1 b2 w1 w2 r1 r2 c1 c2")


def g1c(ex: Execution) -> str | None:
    v = values(ex)
    if v.get("r1") == 22 and v.get("r2") == 11:
        return "T1 read T2's write (22) and T2 read T1's write (11): each depends on the other"
    return None


@expect(PREVENTED)
@level
def test_circular_information_flow(cell, isolation):
    """G1c: no cycle of write-read dependencies: T1 and T2 do not each see the other's uncommitted write."""
    run_anomaly(cell, isolation, G1C, g1c, "G1c circular information flow")


# --- OTV: observed transaction vanishes ------------------------------------------------------------------------
OTV = spec({"s1": ["b1: begin", "w1x: update {t} set value = 11 where id = 1",
                   "w1y: update {t} set value = 19 where id = 2", "c1: commit"],
            "s2": ["b2: begin", "w2x: update {t} set value = 12 where id = 1",
                   "w2y: update {t} set value = 18 where id = 2", "c2: commit"],
            "s3": ["b3: begin", "r3x: select value from {t} where id = 1", "r3y: select value from {t} where id = 2",
                   "r3y2: select value from {t} where id = 2", "r3x2: select value from {t} where id = 1",
                   "c3: commit"]},
           "b1 b2 b3 w1x w1y w2x c1 r3x r3y w2y c2 r3y2 r3x2 c3")


def otv(ex: Execution) -> str | None:
    v = values(ex)
    seen = [("x", v.get("r3x")), ("y", v.get("r3y")), ("y", v.get("r3y2")), ("x", v.get("r3x2"))]
    t2 = {("x", 12), ("y", 18)}
    t1_overwritten = {("x", 11), ("y", 19)}
    for i, read in enumerate(seen):
        if read in t2:
            later = [r for r in seen[i + 1:] if r in t1_overwritten]
            if later:
                return f"T3 saw T2's write {read[0]}={read[1]}, then T1's {later[0][0]}={later[0][1]} that T2 overwrote"
    return None


@expect(PREVENTED)
@level
def test_observed_transaction_vanishes(cell, isolation):
    """OTV: once T3 has seen one of T2's writes, T2 does not vanish: T3 then reads no value T2 overwrote
    (Hermitage's schedule, with T3's read of y before T2 writes it, where a dirty read shows the anomaly)."""
    run_anomaly(cell, isolation, OTV, otv, "OTV observed transaction vanishes")


# --- PMP: predicate-many-preceders ---------------------------------------------------------------------------
PMP = spec({"s1": ["b1: begin", "p1a: select id, value from {t} where value = 30",
                   "p1b: select id, value from {t} where mod(value, 3) = 0", "c1: commit"],
            "s2": ["b2: begin", "i2: insert into {t} (id, value) values (3, 30)", "c2: commit"]},
           "b1 b2 p1a i2 c2 p1b c1")


def pmp(ex: Execution) -> str | None:
    if not rows(ex, "p1a") and (3, 30) in rows(ex, "p1b"):
        return "T1's first predicate read saw no row with value 30, its second saw T2's committed (3, 30)"
    return None


@expect(PREVENTED)
@level
def test_predicate_many_preceders(cell, isolation):
    """PMP: two predicate reads of one transaction see the same set of rows, whatever commits in between."""
    run_anomaly(cell, isolation, PMP, pmp, "PMP predicate-many-preceders")


# --- P4: lost update ---------------------------------------------------------------------------------------
P4 = spec({"s1": ["b1: begin", "r1: select value from {t} where id = 1",
                  "w1: update {t} set value = {r1} + 1 where id = 1", "c1: commit"],
           "s2": ["b2: begin", "r2: select value from {t} where id = 1",
                  "w2: update {t} set value = {r2} + 1 where id = 1", "c2: commit"]},
          "b1 b2 r1 r2 w1 w2 c1 c2")


def p4(ex: Execution) -> str | None:
    if both_committed(ex, "s1", "s2") and (1, 11) in ex.final:
        return "both increments of 10 committed, the table holds 11"
    return None


@expect(PREVENTED)
@level
def test_lost_update(cell, isolation):
    """P4: two read-modify-write increments of the same row both commit only if the row ends up +2."""
    run_anomaly(cell, isolation, P4, p4, "P4 lost update")


# --- G-single: read skew -----------------------------------------------------------------------------------
GSINGLE = spec({"s1": ["b1: begin", "r1x: select value from {t} where id = 1",
                       "r1y: select value from {t} where id = 2", "c1: commit"],
                "s2": ["b2: begin", "r2x: select value from {t} where id = 1",
                       "r2y: select value from {t} where id = 2",
                       "w2x: update {t} set value = {r2x} + 2 where id = 1",
                       "w2y: update {t} set value = {r2y} - 2 where id = 2", "c2: commit"]},
               "b1 b2 r1x r2x r2y w2x w2y c2 r1y c1")


def read_skew(ex: Execution) -> str | None:
    v = values(ex)
    x, y = v.get("r1x"), v.get("r1y")
    if ex.committed("s1") and x is not None and y is not None and x + y != 30:
        return f"T1 read x={x} before and y={y} after T2's transfer: the total it saw is {x + y}, not 30"
    return None


@expect(PREVENTED)
@level
def test_read_skew(cell, isolation):
    """G-single: a transaction sees a consistent state — T2 moves 2 from y to x; T1 never sees a total != 30."""
    run_anomaly(cell, isolation, GSINGLE, read_skew, "G-single read skew")


# --- G2-item: write skew -------------------------------------------------------------------------------------
G2ITEM = spec({"s1": ["b1: begin", "r1x: select value from {t} where id = 1",
                      "r1y: select value from {t} where id = 2",
                      "w1: update {t} set value = {r1x} + 1 where id = 1", "c1: commit"],
               "s2": ["b2: begin", "r2x: select value from {t} where id = 1",
                      "r2y: select value from {t} where id = 2",
                      "w2: update {t} set value = {r2y} + 1 where id = 2", "c2: commit"]},
              "b1 b2 r1x r1y r2x r2y w1 w2 c1 c2")


def write_skew(ex: Execution) -> str | None:
    v = values(ex)
    if both_committed(ex, "s1", "s2") and v.get("r1y") == 20 and v.get("r2x") == 10:
        return "both committed, each having read the row the other wrote before that write (no serial order)"
    return None


@expect(PREVENTED)
@level
def test_write_skew(cell, isolation):
    """G2-item: T1 reads x, y and writes x; T2 reads x, y and writes y: both cannot commit unseen."""
    run_anomaly(cell, isolation, G2ITEM, write_skew, "G2-item write skew")


# --- G2: anti-dependency cycles over a predicate ----------------------------------------------------------------
G2 = spec({"s1": ["b1: begin", "p1: select id, value from {t} where mod(value, 3) = 0",
                  "i1: insert into {t} (id, value) values (3, 30)", "c1: commit"],
           "s2": ["b2: begin", "p2: select id, value from {t} where mod(value, 3) = 0",
                  "i2: insert into {t} (id, value) values (4, 42)", "c2: commit"]},
          "b1 b2 p1 p2 i1 i2 c1 c2")


def predicate_skew(ex: Execution) -> str | None:
    if both_committed(ex, "s1", "s2") and not rows(ex, "p1") and not rows(ex, "p2"):
        return "both inserted a row matching the predicate the other had read as empty, and both committed"
    return None


@expect(PREVENTED)
@level
def test_predicate_write_skew(cell, isolation):
    """G2: T1 and T2 each read 'rows with value divisible by 3' (none) and insert one: both cannot commit."""
    run_anomaly(cell, isolation, G2, predicate_skew, "G2 anti-dependency cycle")


# --- Hermitage's variants beyond the basic ten ----------------------------------------------------------------
# Hermitage (github.com/ept/hermitage) runs more schedules than its table has columns: PMP with a write predicate
# (pmp-write), three more ways to provoke G-single (g-single-dependencies, g-single-write-1, g-single-write-2) and
# Fekete et al.'s read-only transaction anomaly (g2-two-edges). Their anomaly is judged by the serial orders: the
# committed transactions saw and left something no serial order of them gives.
Serial = dict[str, dict[str, list[tuple]]]  # "T1 then T2" -> {step: rows it reads, "final": rows left}


def no_serial_order(ex: Execution, orders: Serial) -> str | None:
    """What the committed transactions saw, when every session committed and no serial order explains it."""
    if not all(ex.committed(s) for s in ex.schedule.sessions):
        return None
    steps = [k for k in next(iter(orders.values())) if k != "final"]
    seen: dict[str, list[tuple]] = {k: rows(ex, k) for k in steps}
    seen["final"] = [tuple(r) for r in ex.final]
    if any(all(seen[k] == want for k, want in order.items()) for order in orders.values()):
        return None
    shown = ", ".join(f"{k} saw {seen[k] or 'no rows'}" for k in steps)
    return f"both committed; {shown}, final {seen['final']}: neither {' nor '.join(orders)} gives that"


# --- PMP for write predicates (Hermitage pmp-write; the example of PostgreSQL's documentation) ---------------
PMP_WRITE = spec({"s1": ["b1: begin", "w1: update {t} set value = value + 10", "c1: commit"],
                  "s2": ["b2: begin", "r2: select id, value from {t} order by id",
                         "d2: delete from {t} where value = 20", "r2b: select id, value from {t} order by id",
                         "c2: commit"]},
                 "b1 b2 w1 r2 d2 c1 r2b c2")


def pmp_write(ex: Execution) -> str | None:
    return no_serial_order(ex, {
        "T1 then T2": {"r2": [(1, 20), (2, 30)], "r2b": [(2, 30)], "final": [(2, 30)]},
        "T2 then T1": {"r2": [(1, 10), (2, 20)], "r2b": [(1, 10)], "final": [(1, 20)]},
    })


@expect(PREVENTED)
@level
def test_predicate_many_preceders_write(cell, isolation):
    """PMP with a write predicate: T2's ``delete ... where value = 20`` and its reads around it see one state —
    T1 adds 10 to every row meanwhile, so the delete removes the row that has 20 in the state T2 reads.
    (T2's first read, from Hermitage's MySQL schedule, fixes InnoDB's snapshot before T1 commits.)"""
    run_anomaly(cell, isolation, PMP_WRITE, pmp_write, "PMP for write predicates")


# --- G-single with predicate dependencies (Hermitage g-single-dependencies) -----------------------------------
GSINGLE_DEPENDENCIES = spec({"s1": ["b1: begin", "p1a: select id, value from {t} where mod(value, 5) = 0 order by id",
                                    "p1b: select id, value from {t} where mod(value, 3) = 0 order by id",
                                    "c1: commit"],
                             "s2": ["b2: begin", "w2: update {t} set value = 12 where value = 10", "c2: commit"]},
                            "b1 b2 p1a w2 c2 p1b c1")


def read_skew_dependencies(ex: Execution) -> str | None:
    return no_serial_order(ex, {
        "T1 then T2": {"p1a": [(1, 10), (2, 20)], "p1b": [], "final": [(1, 12), (2, 20)]},
        "T2 then T1": {"p1a": [(2, 20)], "p1b": [(1, 12)], "final": [(1, 12), (2, 20)]},
    })


@expect(PREVENTED)
@level
def test_read_skew_dependencies(cell, isolation):
    """G-single on predicate reads: T1's two predicate reads both see the state before T2's update (10 is a
    multiple of 5) or both after it (12 is a multiple of 3), never one of each."""
    run_anomaly(cell, isolation, GSINGLE_DEPENDENCIES, read_skew_dependencies, "G-single on predicate dependencies")


# --- G-single with a write predicate (Hermitage g-single-write-1, g-single-write-2) ----------------------------
T2_MOVES = ["b2: begin", "r2: select id, value from {t} order by id", "w2x: update {t} set value = 12 where id = 1",
            "w2y: update {t} set value = 18 where id = 2", "c2: commit"]  # T2 of both: x 10 -> 12, y 20 -> 18
GSINGLE_WRITE_1 = spec({"s1": ["b1: begin", "r1x: select value from {t} where id = 1",
                               "d1: delete from {t} where value = 20", "r1y: select value from {t} where id = 2",
                               "c1: commit"], "s2": T2_MOVES},
                       "b1 b2 r1x r2 w2x w2y c2 d1 r1y c1")


def read_skew_write_1(ex: Execution) -> str | None:
    return no_serial_order(ex, {
        "T1 then T2": {"r1x": [(10,)], "r1y": [], "r2": [(1, 10)], "final": [(1, 12)]},
        "T2 then T1": {"r1x": [(12,)], "r1y": [(18,)], "r2": [(1, 10), (2, 20)], "final": [(1, 12), (2, 18)]},
    })


@expect(PREVENTED)
@level
def test_read_skew_write_1(cell, isolation):
    """G-single on a write predicate: T1 read x before T2 moved x and y (10 -> 12, 20 -> 18) and committed; T1's
    ``delete ... where value = 20`` then acts on the state T1 read (it deletes y), or T1 cannot commit."""
    run_anomaly(cell, isolation, GSINGLE_WRITE_1, read_skew_write_1, "G-single on a write predicate")


GSINGLE_WRITE_2 = spec({"s1": ["b1: begin", "r1x: select value from {t} where id = 1",
                               "d1: delete from {t} where value = 20", "c1: commit"], "s2": T2_MOVES},
                       "b1 b2 r1x r2 w2x d1 w2y c1 c2")


def read_skew_write_2(ex: Execution) -> str | None:
    return no_serial_order(ex, {
        "T1 then T2": {"r1x": [(10,)], "r2": [(1, 10)], "final": [(1, 12)]},
        "T2 then T1": {"r1x": [(12,)], "r2": [(1, 10), (2, 20)], "final": [(1, 12), (2, 18)]},
    })


@expect(PREVENTED)
@level
def test_read_skew_write_2(cell, isolation):
    """G-single on a write predicate, interleaved: T1's delete comes between T2's two updates (x written, y not
    yet), and T1 commits first; the history still has a serial order, or one transaction does not commit."""
    run_anomaly(cell, isolation, GSINGLE_WRITE_2, read_skew_write_2, "G-single on a write predicate, interleaved")


# --- Fekete et al.'s read-only transaction anomaly (Hermitage g2-two-edges) -------------------------------------
READ_ONLY = spec({"s1": ["b1: begin", "r1: select id, value from {t} order by id",
                         "w1: update {t} set value = 0 where id = 1", "c1: commit"],
                  "s2": ["b2: begin", "w2: update {t} set value = value + 5 where id = 2", "c2: commit"],
                  "s3": ["b3: begin", "r3: select id, value from {t} order by id", "c3: commit"]},
                 "b1 r1 b2 w2 c2 b3 r3 c3 w1 c1")


def read_only_anomaly(ex: Execution) -> str | None:
    if (all(ex.committed(s) for s in ("s1", "s2", "s3")) and rows(ex, "r1") == [(1, 10), (2, 20)]
            and rows(ex, "r3") == [(1, 10), (2, 25)]):
        return ("read-only T3 saw T2's deposit (y=25) but not T1's write (x=10), and T1 committed x=0 having read "
                "y=20 before the deposit: T1 before T2 before T3 before T1")
    return None


@expect(PREVENTED)
@level
def test_read_only_anomaly(cell, isolation):
    """Fekete, O'Neil & O'Neil's read-only transaction anomaly (two anti-dependency edges): T1 reads x and y, T2
    adds 5 to y and commits, read-only T3 reads both and commits, then T1 writes x from what it read. All three
    commit only if T3's view fits one serial order with T1's; snapshot isolation lets all three commit."""
    run_anomaly(cell, isolation, READ_ONLY, read_only_anomaly, "read-only transaction anomaly (G2, two edges)")
