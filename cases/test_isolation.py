"""isolation.*: the classic anomalies of Adya / Hermitage, each a schedule run step by step at every level.

Every case is a schedule in the spirit of PostgreSQL's isolation tester: sessions with tiny named steps and one
permutation. The table is Hermitage's (``id``, ``value``; rows (1, 10), (2, 20)). Writes that depend on a read
are computed by the client from the value it read (``{r1} + 1``), so an anomaly shows in the data. A step that
waits on a lock is seen waiting by the engine's lock observer, and the next step goes on (``<waiting ...>``).

Outcome: ``allowed`` when the anomaly happened, else ``prevented`` with how: ``blocked`` (a step waited on a lock),
``abort:<code>`` (the engine refused a step: 40001, 40P01, 1213, ...), ``busy`` (SQLite), or ``snapshot`` (the
reads simply did not see the other transaction). An error outside those (a bug of ours) is ``error``.
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

LEVELS = ["read uncommitted", "read committed", "repeatable read", "serializable", "deferred", "immediate"]
SETUP = ["create table {t} (id integer primary key, value integer)",
         "insert into {t} (id, value) values (1, 10), (2, 20)"]
FINAL = "select id, value from {t} order by id"
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


def transcript(ex: Execution) -> str:
    """``step=result`` in completion order, then the final rows: the evidence behind the outcome."""
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
    evidence = transcript(execution)
    if odd:
        r = odd[0]
        raise AssertionError(f"step {r.step} failed with [{r.code}] {r.message}, which prevents nothing: {evidence}")
    seen = detect(execution)
    metrics = {"blocked_steps": sum(r.blocked for r in execution.results),
               "aborted_steps": sum(r.failed for r in execution.results)}
    if seen:
        cell.record(ALLOWED, f"{anomaly}: {seen} | {evidence}", metrics=metrics)
    else:
        cell.record(PREVENTED, f"no {anomaly} | {evidence}", mechanism=execution.mechanism() or "snapshot",
                    metrics=metrics)


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
