"""The per-session SQL transcript of an executed schedule: issue order rebuilt from completion order, waits shown
where they were issued and where they came back, values as run, aborted transactions ended by a rollback."""

from __future__ import annotations

from dbmatrix.schedules.model import ABORT, DEADLOCK, SKIPPED, Execution, Schedule, StepResult
from dbmatrix.schedules.transcript import ISSUE, RETURN, outcome_text, session_transcript, timeline

SETUP = ["create table {t} (id integer primary key, value integer)",
         "insert into {t} (id, value) values (1, 10), (2, 20)"]
P4 = Schedule(SETUP, {"s1": ["b1: begin", "r1: select value from {t} where id = 1",
                             "w1: update {t} set value = {r1} + 1 where id = 1", "c1: commit"],
                      "s2": ["b2: begin", "r2: select value from {t} where id = 1",
                             "w2: update {t} set value = {r2} + 1 where id = 1", "c2: commit"]},
              "b1 b2 r1 r2 w1 w2 c1 c2", final_sql="select id, value from {t} order by id")
PG_RR = {"s1": ["BEGIN ISOLATION LEVEL REPEATABLE READ"], "s2": ["BEGIN ISOLATION LEVEL REPEATABLE READ"]}


def step(schedule: Schedule, name: str, rows=(), status: str = "ok", code: str | None = None, message: str = "",
         blocked: bool = False, resumed_after: str | None = None) -> StepResult:
    s = schedule.steps[name]
    return StepResult(name, s.session, s.sql, status=status, rows=list(rows), code=code, message=message or None,
                      blocked=blocked, resumed_after=resumed_after)


def execution(schedule: Schedule, results: list[StepResult], final, isolation="repeatable read") -> Execution:
    return Execution(schedule, isolation, results=results, final=final)


def lost_update_prevented() -> Execution:
    """PostgreSQL repeatable read: w2 waits on w1's row lock, c1 releases it, w2 fails with 40001."""
    return execution(P4, [
        step(P4, "b1"), step(P4, "b2"), step(P4, "r1", [(10,)]), step(P4, "r2", [(10,)]), step(P4, "w1"),
        step(P4, "c1"),
        step(P4, "w2", status=ABORT, code="40001", message="could not serialize access due to concurrent update\nX",
             blocked=True, resumed_after="c1"),
        step(P4, "c2", status=SKIPPED, message="transaction aborted at w2"),
    ], final=[(1, 11), (2, 20)])


def test_waiting_step_is_written_where_issued_and_its_result_where_it_returned():
    text = session_transcript(lost_update_prevented(), table="test", begin=PG_RR,
                              header=["isolation.lost_update on postgres at repeatable read"])
    body = text.split("-- setup (any session)\n")[1].splitlines()
    assert body[:3] == ["create table test (id integer primary key, value integer);",
                        "insert into test (id, value) values (1, 10), (2, 20);", ""]
    assert body[3:12] == [
        "BEGIN ISOLATION LEVEL REPEATABLE READ;  -- s1 b1: ok",
        "BEGIN ISOLATION LEVEL REPEATABLE READ;  -- s2 b2: ok",
        "select value from test where id = 1;  -- s1 r1: 10",
        "select value from test where id = 1;  -- s2 r2: 10",
        "update test set value = 10 + 1 where id = 1;  -- s1 w1: ok",
        "update test set value = 10 + 1 where id = 1;  -- s2 w2: BLOCKS",
        "commit;  -- s1 c1: ok",
        "--> s2 w2 returns: ERROR 40001 could not serialize access due to concurrent update",
        "rollback;  -- s2 c2: in place of commit (transaction aborted at w2)",
    ]
    assert text.startswith("-- isolation.lost_update on postgres at repeatable read\n-- Open one client per session "
                           "(s1, s2)")
    assert text.endswith("select id, value from test order by id;  -- any session, at the end: (1, 11), (2, 20)\n"
                         "drop table if exists test;  -- teardown\n")


CROSSED = Schedule(SETUP, {"s1": ["b1: begin", "x1: update {t} set value = 11 where id = 1",
                                   "y1: update {t} set value = 21 where id = 2", "c1: commit"],
                            "s2": ["b2: begin", "y2: update {t} set value = 22 where id = 2",
                                   "x2: update {t} set value = 12 where id = 1", "c2: commit"]},
                    "b1 b2 x1 y2 y1 x2 c1 c2")


def test_a_wait_the_engine_ends_itself_returns_where_every_session_waited():
    """Both updates wait on each other; the deadlock detector fails y1 (no step of ours released it), the skipped
    commit's rollback then releases x2: held-back steps (c1, c2) come after the returns that free their session."""
    ex = execution(CROSSED, [
        step(CROSSED, "b1"), step(CROSSED, "b2"), step(CROSSED, "x1"), step(CROSSED, "y2"),
        step(CROSSED, "y1", status=DEADLOCK, code="40P01", message="deadlock detected", blocked=True),
        step(CROSSED, "c1", status=SKIPPED, message="transaction aborted at y1"),
        step(CROSSED, "x2", blocked=True, resumed_after="c1"),
        step(CROSSED, "c2"),
    ], final=[(1, 12), (2, 22)])
    order = [(e.kind, e.result.step) for e in timeline(ex)]
    assert order == [(ISSUE, "b1"), (ISSUE, "b2"), (ISSUE, "x1"), (ISSUE, "y2"), (ISSUE, "y1"), (ISSUE, "x2"),
                     (RETURN, "y1"), (ISSUE, "c1"), (RETURN, "x2"), (ISSUE, "c2")]
    text = session_transcript(ex, table="t", begin={})
    assert "begin;  -- s1 b1: ok" in text
    assert ("update t set value = 12 where id = 1;  -- s2 x2: BLOCKS\n"
            "--> s1 y1 returns: ERROR 40P01 deadlock detected\n"
            "rollback;  -- s1 c1: in place of commit (transaction aborted at y1)\n"
            "--> s2 x2 returns: ok\n"
            "commit;  -- s2 c2: ok\n") in text


WRITE_2 = Schedule(SETUP, {"s1": ["b1: begin", "r1: select value from {t} where id = 1",
                                  "d1: delete from {t} where value = 20", "c1: commit"],
                           "s2": ["b2: begin", "r2: select id, value from {t} order by id",
                                  "w2x: update {t} set value = 12 where id = 1",
                                  "w2y: update {t} set value = 18 where id = 2", "c2: commit"]},
                   "b1 b2 r1 r2 w2x d1 w2y c1 c2")


def test_a_session_that_waits_issues_nothing_until_its_step_returns():
    """d1 waits on w2x's row lock: c1 is held back, c2 goes first and releases d1, then c1 is issued."""
    ex = execution(WRITE_2, [
        step(WRITE_2, "b1"), step(WRITE_2, "b2"), step(WRITE_2, "r1", [(10,)]),
        step(WRITE_2, "r2", [(1, 10), (2, 20)]), step(WRITE_2, "w2x"), step(WRITE_2, "w2y"), step(WRITE_2, "c2"),
        step(WRITE_2, "d1", blocked=True, resumed_after="c2"), step(WRITE_2, "c1"),
    ], final=[(1, 12), (2, 18)], isolation="repeatable read")
    assert [(e.kind, e.result.step) for e in timeline(ex)][4:] == [
        (ISSUE, "w2x"), (ISSUE, "d1"), (ISSUE, "w2y"), (ISSUE, "c2"), (RETURN, "d1"), (ISSUE, "c1")]
    text = session_transcript(ex, table="t", begin={"s1": ["SET SESSION tx_isolation = 'REPEATABLE-READ'",
                                                           "START TRANSACTION"]})
    assert "SET SESSION tx_isolation = 'REPEATABLE-READ'; START TRANSACTION;  -- s1 b1: ok" in text
    assert "select id, value from t order by id;  -- s2 r2: (1, 10), (2, 20)" in text
    assert "delete from t where value = 20;  -- s1 d1: BLOCKS\n" in text
    assert "commit;  -- s2 c2: ok\n--> s1 d1 returns: ok\ncommit;  -- s1 c1: ok\n" in text


def test_a_wait_that_ended_at_once_returns_before_the_next_step():
    """Seen waiting, then released by nothing of ours before the next step was issued (completion order says so)."""
    ex = execution(P4, [
        step(P4, "b1"), step(P4, "b2"), step(P4, "r1", [(10,)]), step(P4, "r2", [(10,)]), step(P4, "w1"),
        step(P4, "w2", status=ABORT, code="55P03", message="lock timeout", blocked=True),
        step(P4, "c1"), step(P4, "c2", status=SKIPPED, message="transaction aborted at w2"),
    ], final=[(1, 11), (2, 20)])
    assert [(e.kind, e.result.step) for e in timeline(ex)][5:] == [
        (ISSUE, "w2"), (RETURN, "w2"), (ISSUE, "c1"), (ISSUE, "c2")]


def test_outcomes_name_rows_values_and_errors():
    r = step(P4, "r1", [(10,)])
    assert outcome_text(r) == "10"
    assert outcome_text(step(P4, "r1")) == "no rows"
    assert outcome_text(step(P4, "w1")) == "ok"
    assert outcome_text(step(WRITE_2, "r2", [(1, None), (2, 20)])) == "(1, NULL), (2, 20)"
    assert outcome_text(step(P4, "w1", status=DEADLOCK, code="1213", message="Deadlock found")) == (
        "ERROR 1213 Deadlock found")


def test_a_step_skipped_after_an_abort_is_commented_out_with_the_value_it_would_have_used():
    ex = execution(P4, [
        step(P4, "b1"), step(P4, "b2"), step(P4, "r1", status=ABORT, code="40001", message="no"),
        step(P4, "r2", [(10,)]), step(P4, "w1", status=SKIPPED, message="transaction aborted at r1"),
        step(P4, "w2"), step(P4, "c1", status=SKIPPED, message="transaction aborted at r1"), step(P4, "c2"),
    ], final=[(1, 11), (2, 20)])
    text = session_transcript(ex, table="t", begin={}, notes=["sqlite3: run .timeout 10000 in each shell"])
    assert "-- (not run) update t set value = NULL + 1 where id = 1;  -- s1 w1: transaction aborted at r1" in text
    assert "-- sqlite3: run .timeout 10000 in each shell\n" in text
