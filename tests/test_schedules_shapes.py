"""The biased search on a toy snapshot-isolation engine: within the ci profile it finds the anomalies snapshot
isolation allows (write skew, predicate write skew) and, as it must, none of those it prevents; every shape draws
programs of its own shape. Live engines are exercised by cases/test_schedules.py."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from toy_sql import GONE, interpret, store

from dbmatrix.schedules.explore import explore
from dbmatrix.schedules.model import ABORT, OK, Execution, StepResult
from dbmatrix.schedules.programs import Program, compile_schedule
from dbmatrix.schedules.strategies import SHAPES, programs


class SnapshotEngine:
    """Snapshot isolation as PostgreSQL's REPEATABLE READ has it: a transaction reads the state committed when
    it ran its first statement (plus its own writes), and the second of two concurrent writers of a key fails
    (first committer wins, checked here at commit). No locks, so nothing waits."""

    def run(self, program: Program) -> Execution:
        schedule = compile_schedule(program)
        state: dict[int, int | None] = dict(program.initial)
        version: dict[int, int] = {}  # key -> commit number that last wrote it
        commits = 0
        snap: dict[str, tuple[dict[int, int | None], int]] = {}
        writes: dict[str, dict[int, int | None | object]] = {}
        ex = Execution(schedule, "repeatable read")
        values: dict[str, object] = {}
        for name in schedule.order:
            step = schedule.steps[name]
            s = step.session
            r = StepResult(name, s, step.sql, status=OK)
            if step.control == "begin":
                writes[s] = {}
            elif step.control == "commit":
                _, since = snap.get(s, (state, commits))
                if any(version.get(k, 0) > since for k in writes[s]):
                    r.status, r.code = ABORT, "40001"
                else:
                    commits += 1
                    for k, v in writes[s].items():
                        store(state, k, v)
                        version[k] = commits
            else:
                if s not in snap:
                    snap[s] = (dict(state), commits)
                view = {**snap[s][0], **writes[s]}
                view = {k: v for k, v in view.items() if v is not GONE}
                r.rows, code = interpret(step.render("t", values), view, writes[s].__setitem__)
                if code:
                    r.status, r.code = ABORT, code
            values[name] = r.value
            ex.results.append(r)
        ex.final = sorted(state.items())
        return ex


@pytest.mark.parametrize("shape, allowed", [("write skew", True), ("predicate write skew", True),
                                            ("lost update", False), ("read skew", False), ("phantom", False)])
def test_each_shape_is_found_exactly_where_snapshot_isolation_allows_it(shape, allowed):
    found = explore(SnapshotEngine().run, profile="ci", shrink_budget_s=0.0, max_examples=2, shape=shape)
    assert (found.smallest is not None) is allowed, found.smallest and str(found.smallest.program)
    if allowed:
        assert set(found.first_by_shape) == {shape} and found.smallest.program.shape == shape
    else:
        assert found.tried == 12  # two programs, six interleavings each: the whole budget, for nothing


def test_general_search_finds_write_skew_on_snapshot_isolation():
    """The search the cell runs last (half general, half shapes) finds it in the ci profile too, and shrinks
    it to two transactions."""
    found = explore(SnapshotEngine().run, profile="ci", shrink_budget_s=5.0)
    assert found.smallest is not None and len(found.smallest.program.sessions) == 2
    assert not found.smallest.verdict.serializable


@settings(max_examples=30, deadline=None, database=None)
@given(st.sampled_from(sorted(SHAPES)), st.data())
def test_a_shape_draws_two_transactions_of_its_shape(shape, data):
    program = data.draw(programs(shape=shape))
    assert program.shape == shape and len(program.sessions) == 2
    compile_schedule(program)  # the interleaving issues every step exactly once
    if shape in ("write skew", "read skew"):
        keys = {op.key for ops in program.sessions for op in ops}
        assert len(keys) == 2  # two distinct keys, else it is no skew
