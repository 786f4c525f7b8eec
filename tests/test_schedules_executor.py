"""The schedule executor on live servers: a waiting step is seen waiting (the observer, not a timer), the next
steps go on, and the waiting one is recorded as completed after the step that released it; deadlocks and SQLite
busy are classified; every session ends outside a transaction."""

from __future__ import annotations

import uuid

import pytest
from live import installed_adapter, mariadb_info, postgres_info, sqlite_info

from dbmatrix.engines import engine_for
from dbmatrix.schedules.executor import ScheduleExecutor
from dbmatrix.schedules.model import BUSY, DEADLOCK, OK, SKIPPED, Schedule, step

SETUP = ["create table {t} (k integer primary key, v integer)", "insert into {t} values (1, 10), (2, 20)"]
LOST_UPDATE = Schedule(
    setup=SETUP,
    sessions={"s1": ["b1: begin", "r1: select v from {t} where k = 1", "w1: update {t} set v = {r1} + 1 where k = 1",
                     "c1: commit"],
              "s2": ["b2: begin", "r2: select v from {t} where k = 1", "w2: update {t} set v = {r2} + 1 where k = 1",
                     "c2: commit"]},
    permutation="b1 b2 r1 r2 w1 w2 c1 c2",
    final_sql="select k, v from {t} order by k",
)
DEADLOCK_SCHEDULE = Schedule(
    setup=SETUP,
    sessions={"s1": ["b1: begin", "x1: update {t} set v = 11 where k = 1", "y1: update {t} set v = 21 where k = 2",
                     "c1: commit"],
              "s2": ["b2: begin", "y2: update {t} set v = 22 where k = 2", "x2: update {t} set v = 12 where k = 1",
                     "c2: commit"]},
    permutation="b1 b2 x1 y2 y1 x2 c1 c2",
    final_sql="select k, v from {t} order by k",
)


def executor(driver: str, info, isolation: str):
    adapter = installed_adapter(driver)
    sessions = {"s1": adapter.connect(info), "s2": adapter.connect(info)}
    observer = engine_for(info.kind, info.engine).observer(info.url)
    table = f"sched_{uuid.uuid4().hex[:8]}"
    return ScheduleExecutor(sessions, observer, isolation, table), sessions, observer, table


def finish(sessions, observer, table) -> None:
    try:
        sessions["s1"].execute(f"drop table if exists {table}")
    finally:
        for s in sessions.values():
            s.close()
        observer.close()


@pytest.mark.parametrize("driver, info", [("psycopg", postgres_info()), ("pymysql", mariadb_info())])
def test_waiting_step_is_observed_and_resumes_after_the_commit(driver, info):
    ex, sessions, observer, table = executor(driver, info, "read committed")
    try:
        run = ex.run(LOST_UPDATE)
    finally:
        finish(sessions, observer, table)
    by = run.by_step()
    assert by["w2"].blocked and by["w2"].resumed_after == "c1" and by["w2"].status == OK
    assert [r.step for r in run.results].index("c1") < [r.step for r in run.results].index("w2")
    assert run.final == [(1, 11), (2, 20)]  # the lost update, visible in the data
    assert run.mechanism() == "blocked"
    assert not any(s.in_transaction for s in sessions.values())


@pytest.mark.parametrize("driver, info, code", [("psycopg", postgres_info(), "40P01"),
                                                ("pymysql", mariadb_info(), "1213")])
def test_deadlock_is_classified_and_the_victim_rolled_back(driver, info, code):
    ex, sessions, observer, table = executor(driver, info, "read committed")
    try:
        run = ex.run(DEADLOCK_SCHEDULE)
    finally:
        finish(sessions, observer, table)
    deadlocks = [r for r in run.results if r.status == DEADLOCK]
    assert len(deadlocks) == 1 and deadlocks[0].code == code
    victim = deadlocks[0].session
    commit = next(r for r in run.results if r.step == f"c{victim[-1]}")
    assert commit.status == SKIPPED and not run.committed(victim)
    assert run.mechanism() == f"abort:{code}"


def test_sqlite_deferred_writer_on_a_stale_snapshot_is_busy(tmp_path):
    info = sqlite_info(str(tmp_path / "sched.db"))
    import sqlite3

    sqlite3.connect(info.url.database).execute("PRAGMA journal_mode=WAL").close()
    ex, sessions, observer, table = executor("sqlite3", info, "deferred")
    try:
        run = ex.run(LOST_UPDATE)
    finally:
        finish(sessions, observer, table)
    by = run.by_step()
    assert by["w2"].status == BUSY and str(by["w2"].code).startswith("SQLITE_BUSY")
    assert run.final == [(1, 11), (2, 20)] and run.committed("s1") and not run.committed("s2")


# A spec in the isolation tester's style: per-session setup, a bound parameter of a non-integer type, SQL per
# engine for one step, expected outcomes and an observer question.
LOCK_SPEC = Schedule(
    setup=SETUP,
    sessions={"s1": ["b1: begin", "x1: update {t} set v = 11 where k = 1",
                     step("who1", "select 1", observe="waiting"), "c1: commit"],
              "s2": ["b2: begin",
                     step("x2", {"postgresql": "select k, v from {t} where k = 1 and :tag = 'x' for update",
                                 "mysql": "select k, v from {t} where k = 1 and :tag = 'x' for update"},
                          expect=("blocked", "ok", [(1, 11)])),
                     step("x3", "select k from {t} where k = :missing_key", expect="error:NO_SUCH_CODE"),
                     "c2: commit"]},
    permutation="b1 x1 b2 x2 who1 c1 x3 c2",
    final_sql=None,
    params={"tag": "x", "missing_key": 2},
    session_setup={"s2": [{"postgresql": "set application_name = 'dbm_spec_s2'", "*": None}]},
    questions={"waiting": {  # the server ids of the sessions running a statement on this table (the observer aside)
        "postgresql": "select pid from pg_stat_activity where wait_event_type = 'Lock' and query like '%%{t}%%'",
        "mysql": "select id from information_schema.processlist where command = 'Query'"
                 " and info like '%%{t}%%' and id <> connection_id()"}},
)


@pytest.mark.parametrize("driver, info", [("psycopg", postgres_info()), ("pymysql", mariadb_info())])
def test_a_spec_checks_each_steps_expectation_on_a_live_engine(driver, info):
    ex, sessions, observer, table = executor(driver, info, "read committed")
    try:
        run = ex.run(LOCK_SPEC)
    finally:
        finish(sessions, observer, table)
    by = run.by_step()
    assert by["x2"].blocked and by["x2"].rows == [(1, 11)] and by["x2"].resumed_after == "c1"
    assert by["who1"].observed == (sessions["s2"].server_id,)  # asked while x2 waited: the observer saw s2 at it
    assert by["x3"].rows == [(2,)] and by["x3"].elapsed_s is not None
    problems = run.mismatches()  # x3 was expected to fail and did not: exactly one finding
    assert len(problems) == 1 and problems[0].startswith("x3 (s2) expected error:NO_SUCH_CODE")
    assert "succeeded" in problems[0]
    assert run.unexpected_failure() is None
