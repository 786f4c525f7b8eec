"""Schedule specs as data (no database): step expectations, per-engine SQL, bound parameters, observer questions.
The live side (a spec run on PostgreSQL and MariaDB) is in test_schedules_executor.py."""

from __future__ import annotations

import pytest

from dbmatrix.schedules.model import (
    ABORT,
    ANY,
    Execution,
    Expect,
    Schedule,
    StepResult,
    binds,
    engine_sql,
    same_value,
    step,
)


def spec(*b_steps, **kwargs) -> Schedule:
    return Schedule(setup=[], sessions={"a": ["a1: select 1"], "b": list(b_steps)},
                    permutation=" ".join(["a1", *(s.name for s in b_steps)]), final_sql=None, **kwargs)


def ran(schedule: Schedule, **results: StepResult) -> Execution:
    ex = Execution(schedule, None)
    ex.results = [StepResult("a1", "a", "select 1", rows=[(1,)]), *results.values()]
    return ex


@pytest.mark.parametrize("text, want", [
    ("blocked", Expect(blocked=True)),
    (("not blocked", "error"), Expect(blocked=False, error=True)),
    ("error:55P03|3572", Expect(error=True, codes=("55P03", "3572"))),
    (("ok", [(1, ANY)]), Expect(error=False, rows=((1, ANY),))),
    ([(2,)], Expect(rows=((2,),))),  # rows alone: a failure is the caller's to raise, not a finding
])
def test_expectations_parse(text, want):
    assert Expect.parse(text) == want


def test_an_unknown_expectation_is_refused():
    with pytest.raises(ValueError, match="unknown step expectation 'waits'"):
        Expect.parse("waits")


def test_values_compare_with_their_type():
    assert same_value(1, 1) and same_value(ANY, "anything")
    assert not same_value(1, True) and not same_value(1, 1.0) and not same_value("1", 1)


def test_each_broken_expectation_is_named():
    s = spec(step("b1", "select 1", expect=("blocked", "ok", [(1, 11)])),
             step("b2", "select 2", expect="error:55P03"),
             step("b3", "select 3", expect=[(True,)]),
             step("b4", "select 4", expect=("not blocked", "error")))
    ex = ran(s, b1=StepResult("b1", "b", "", rows=[(1, 10)]),
             b2=StepResult("b2", "b", "", status=ABORT, code="40001"),
             b3=StepResult("b3", "b", "", rows=[(1,)]),
             b4=StepResult("b4", "b", "", status=ABORT, code="55P03"))
    problems = ex.mismatches()
    assert len(problems) == 3
    assert "did not wait for a lock" in problems[0] and "returned [(1, 10)]" in problems[0]
    assert "failed with another code (40001)" in problems[1]
    assert "b3" in problems[2]  # 1 is not True
    assert ex.unexpected_failure() is None


def test_a_refused_step_without_an_error_expectation_is_raised_not_judged():
    s = spec(step("b1", "select 1 for update", expect=[(1,)]))
    err = RuntimeError("near FOR: syntax error")
    ex = ran(s, b1=StepResult("b1", "b", "", status=ABORT, code="SQLITE_ERROR", error=err))
    assert ex.unexpected_failure().error is err and ex.mismatches() == []


def test_the_observers_answer_is_checked():
    s = spec(step("b1", "select 1", observe="holders", observed=()), questions={"holders": {"*": "select 1"}})
    ex = ran(s, b1=StepResult("b1", "b", "", rows=[(1,)], observed=(4242,)))
    assert ex.mismatches() == ["b1 (b) expected ok, got 1: then holders was 4242, expected nobody"]
    assert "b1 1 (holders: 4242)" in ex.transcript()


def test_per_engine_sql_is_looked_up_by_engine_then_its_parents_then_star():
    sql = {"mysql": "GET_LOCK", "*": "pg_advisory_lock", "sqlite": None}
    assert engine_sql(sql, ("mariadb", "mysql")) == "GET_LOCK"
    assert engine_sql(sql, ("cockroachdb", "postgresql")) == "pg_advisory_lock"
    assert engine_sql(sql, ("sqlite",)) is None  # nothing to run there
    with pytest.raises(ValueError, match="no SQL for oracle"):
        engine_sql({"mysql": "x"}, ("oracle",))


def test_named_parameters_of_any_type_are_bound_but_casts_and_times_are_not():
    params = {"lock": "name", "n": 2, "when": None}
    assert binds("select :lock, :n, '10:30'::time, x::text", params) == {"lock": "name", "n": 2}
    assert binds("select 1", params) is None
    with pytest.raises(ValueError, match=":other"):
        binds("select :other", params)


def test_a_spec_refuses_questions_and_sessions_it_does_not_have():
    with pytest.raises(ValueError, match="asks 'holders'"):
        spec(step("b1", "select 1", observe="holders"))
    with pytest.raises(ValueError, match="unknown sessions: c"):
        spec(step("b1", "select 1"), session_setup={"c": ["select 1"]})
