"""Pure logic of schedules: parsing, compiling programs, the serializability checker, invariants, exports."""

from __future__ import annotations

import json

import pytest
from toy_sql import interpret, store

from dbmatrix.schedules.artifact import hermitage_sql
from dbmatrix.schedules.explore import explore
from dbmatrix.schedules.history import check, elle_history, elle_json
from dbmatrix.schedules.model import ABORT, OK, Execution, Schedule, StepResult
from dbmatrix.schedules.programs import Op, Program, compile_schedule
from dbmatrix.schedules.strategies import timed_interleaving

P4 = Schedule(
    setup=["create table {t} (k int primary key, v int)", "insert into {t} values (1, 10)"],
    sessions={"s1": ["b1: begin", "r1: select v from {t} where k = 1", "w1: update {t} set v = {r1} + 1 where k = 1",
                     "c1: commit"],
              "s2": ["b2: begin", "r2: select v from {t} where k = 1", "w2: update {t} set v = {r2} + 1 where k = 1",
                     "c2: commit"]},
    permutation="b1 b2 r1 r2 w1 w2 c1 c2",
)


def test_schedule_parses_steps_and_renders_client_computed_writes():
    assert P4.order[:4] == ["b1", "b2", "r1", "r2"]
    assert P4.steps["w1"].needs == ["r1"]
    assert P4.steps["c2"].control == "commit"
    assert P4.steps["w1"].render("tt", {"r1": 10}) == "update tt set v = 10 + 1 where k = 1"
    assert P4.steps["w1"].render("tt", {}) == "update tt set v = NULL + 1 where k = 1"


@pytest.mark.parametrize("sessions, permutation, message", [
    ({"s1": ["x1 select 1"]}, "x1", "not 'name: sql'"),
    ({"s1": ["a: select 1"], "s2": ["a: select 2"]}, "a", "used twice"),
    ({"s1": ["a: select 1"]}, "a b", "unknown steps: b"),
    ({"s1": ["a: select 1"]}, "a a", "twice"),
    ({"s1": ["a: select {zz}"]}, "a", "no step"),
])
def test_schedule_refuses_bad_specs(sessions, permutation, message):
    with pytest.raises(ValueError, match=message):
        Schedule(setup=[], sessions=sessions, permutation=permutation)


LOST_UPDATE = Program(initial=((1, 10), (2, 10)),
                      sessions=((Op("write", 1, 1),), (Op("write", 1, 1),)),
                      interleaving=(0, 1, 0, 1, 0, 1, 0, 1))


def run_fake(program: Program, values: dict[str, object], final: list[tuple], failed: dict[str, str] | None = None
             ) -> Execution:
    """An Execution as an engine might have produced it: every step ok with ``values``, except ``failed``."""
    schedule = compile_schedule(program)
    ex = Execution(schedule, "read committed", final=final)
    for name in schedule.order:
        step = schedule.steps[name]
        r = StepResult(name, step.session, step.sql)
        if failed and name in failed:
            r.status, r.code = ABORT, failed[name]
        v = values.get(name)
        r.rows = v if isinstance(v, list) else ([(v,)] if v is not None else [])
        ex.results.append(r)
    return ex


def test_compile_follows_the_interleaving():
    s = compile_schedule(LOST_UPDATE)
    assert s.permutation == "b1 b2 o1_1r o2_1r o1_1w o2_1w c1 c2"
    with pytest.raises(ValueError, match="every step"):
        compile_schedule(Program(LOST_UPDATE.initial, LOST_UPDATE.sessions, (0, 1)))


def test_lost_update_is_not_serializable_and_loses_an_increment():
    ex = run_fake(LOST_UPDATE, {"o1_1r": 10, "o2_1r": 10}, final=[(1, 11), (2, 10)])
    verdict = check(LOST_UPDATE, ex)
    assert not verdict.serializable and verdict.anomaly
    assert any("lost increment on k=1" in p for p in verdict.problems)


def test_serial_history_passes_with_its_order():
    ex = run_fake(LOST_UPDATE, {"o1_1r": 11, "o2_1r": 10}, final=[(1, 12), (2, 10)])
    verdict = check(LOST_UPDATE, ex)
    assert verdict.serializable and verdict.order == ["T2", "T1"] and not verdict.problems


def test_aborted_transaction_is_left_out():
    ex = run_fake(LOST_UPDATE, {"o1_1r": 10, "o2_1r": 10}, final=[(1, 11), (2, 10)], failed={"o2_1w": "40001"})
    ex.results[-1].status = ABORT  # c2 did not commit
    verdict = check(LOST_UPDATE, ex)
    assert verdict.serializable and verdict.order == ["T1"]


def test_write_skew_fails_on_the_predicate_read():
    prog = Program(initial=((1, 10), (2, 10)),
                   sessions=((Op("pred", 0, 0), Op("write", 1, -10)), (Op("pred", 0, 0), Op("write", 2, -10))),
                   interleaving=(0, 1, 0, 1, 0, 0, 1, 1, 0, 1))
    rows = [(1, 10), (2, 10)]
    ex = run_fake(prog, {"o1_1p": rows, "o2_1p": rows, "o1_2r": 10, "o2_2r": 10}, final=[(1, 0), (2, 0)])
    verdict = check(prog, ex)
    assert not verdict.serializable
    assert not verdict.problems  # every increment landed: only the serializability check sees write skew


def test_insert_of_an_existing_key_cannot_be_serial():
    prog = Program(initial=((1, 10),), sessions=((Op("insert", 2, 5),), (Op("insert", 2, 5),)),
                   interleaving=(0, 1, 0, 1, 0, 1))
    ex = run_fake(prog, {}, final=[(1, 10), (2, 5)])
    assert not check(prog, ex).serializable


def test_elle_history_pairs_invoke_and_completion():
    ex = run_fake(LOST_UPDATE, {"o1_1r": 10, "o2_1r": 10}, final=[(1, 11), (2, 10)])
    hist = elle_history(LOST_UPDATE, ex)
    assert [op["type"] for op in hist] == ["invoke", "invoke", "ok", "ok"]
    assert hist[2]["value"] == [["r", 1, 10], ["w", 1, 11]]
    merged = json.loads(elle_json([hist, hist]))
    assert len(merged) == 8 and {op["process"] for op in merged} == {0, 1, 2, 3}
    assert merged[4]["value"][0][1] == 1001  # the second execution's keys are moved out of the first's way


def test_hermitage_script_puts_each_session_in_its_column():
    ex = run_fake(LOST_UPDATE, {"o1_1r": 10, "o2_1r": 10}, final=[(1, 11), (2, 10)])
    ex.results[5].blocked, ex.results[5].resumed_after = True, "c1"
    text = hermitage_sql(ex, table="t", title="lost update")
    lines = text.splitlines()
    w1 = next(ln for ln in lines if "-- o1_1w" in ln)
    w2 = next(ln for ln in lines if "-- o2_1w" in ln)
    assert w1.startswith("update t set v = 10 + 1") and w2.startswith(" " * 46 + "update t set v = 10 + 1")
    assert "completed after c1" in w2
    assert "-- final state: (1, 11), (2, 10)" in text


class DirtyEngine:
    """A toy engine with no isolation at all (every step applied at once, no locks) — enough to check that the
    search finds a lost update and shrinks it; live engines are exercised by cases/test_schedules.py."""

    def run(self, program: Program) -> Execution:
        schedule = compile_schedule(program)
        state = dict(program.initial)
        ex = Execution(schedule, None)
        values: dict[str, object] = {}
        for name in schedule.order:
            step = schedule.steps[name]
            r = StepResult(name, step.session, step.sql, status=OK)
            r.rows, code = interpret(step.render("t", values), state, lambda k, v: store(state, k, v))
            if code:
                r.status, r.code = ABORT, code
            values[name] = r.value
            ex.results.append(r)
        ex.final = sorted(state.items())
        return ex


def test_explore_finds_and_shrinks_a_counterexample():
    found = explore(DirtyEngine().run, profile="ci", inserts=False)
    assert found.smallest is not None and found.first_counterexample_s is not None
    assert found.tried >= 1 and found.histories
    assert len(found.smallest.program.sessions) == 2
    assert sum(len(ops) for ops in found.smallest.program.sessions) <= 3


def test_seeded_interleavings_are_complete_and_keep_order_when_a_transaction_goes():
    a, b, c = (Op("write", 1, 1),), (Op("read", 2), Op("write", 2, 1)), (Op("pred", 0, 0),)
    sessions = (a, b, a, c)
    full = timed_interleaving(sessions, "7/0")
    compile_schedule(Program(((1, 10), (2, 10)), sessions, full))  # every step issued exactly once
    assert full == timed_interleaving(sessions, "7/0") != timed_interleaving(sessions, "7/1")
    # shrinking deletes a transaction (here the second ``a``): the others keep their relative order
    assert timed_interleaving((a, b, c), "7/0") == tuple({0: 0, 1: 1, 3: 2}[i] for i in full if i != 2)
    assert timed_interleaving((b, c), "7/0") == tuple({1: 0, 3: 1}[i] for i in full if i in (1, 3))
