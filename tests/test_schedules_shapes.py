"""The biased search on a toy snapshot-isolation engine: within the ci profile it finds the anomalies snapshot
isolation allows (write skew, predicate write skew) and, as it must, none of those it prevents; every shape draws
programs of its own shape. Live engines are exercised by cases/test_schedules.py."""

from __future__ import annotations

import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st
from test_schedules_logic import DirtyEngine
from toy_sql import GONE, interpret, store

from dbmatrix.schedules.explore import explore
from dbmatrix.schedules.model import ABORT, OK, Execution, StepResult
from dbmatrix.schedules.programs import Program, compile_schedule, step_counts
from dbmatrix.schedules.strategies import SHAPES, exposing_order, programs


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
            elif step.control == "rollback":
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


# Each reads a key the other writes: under snapshot isolation "circular information flow" is write skew too.
SNAPSHOT_ALLOWS = {"write skew", "predicate write skew", "circular information flow"}


@pytest.mark.parametrize("shape, allowed", [(shape, shape in SNAPSHOT_ALLOWS) for shape in SHAPES])
def test_each_shape_is_found_exactly_where_snapshot_isolation_allows_it(shape, allowed):
    found = explore(SnapshotEngine().run, profile="ci", shrink_budget_s=0.0, max_examples=1, shape=shape)
    assert (found.smallest is not None) is allowed, found.smallest and str(found.smallest.program)
    if allowed:
        assert set(found.first_by_shape) == {shape} and found.smallest.program.shape == shape
    else:
        assert found.tried == 6  # one program in six interleavings (the ci budget per shape), for nothing


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_every_shape_is_found_without_isolation(shape):
    """On an engine without any isolation (every write visible at once, a rollback undoes nothing) every shape
    is an anomaly, and one program of it (six interleavings, as in the ci profile) is enough to show it."""
    found = explore(DirtyEngine().run, profile="ci", shrink_budget_s=0.0, max_examples=1, shape=shape)
    assert found.smallest is not None and found.smallest.program.shape == shape


def test_general_search_finds_write_skew_on_snapshot_isolation():
    """The search the cell runs last (half general, half shapes) finds a counterexample in the ci profile too."""
    found = explore(SnapshotEngine().run, profile="ci", shrink_budget_s=5.0)
    assert found.smallest is not None and not found.smallest.verdict.serializable


@settings(max_examples=30, deadline=None, database=None)
@given(st.sampled_from(sorted(SHAPES)), st.data())
def test_a_shape_draws_two_transactions_of_its_shape(shape, data):
    program = data.draw(programs(shape=shape))
    assert program.shape == shape and len(program.sessions) == (3 if shape == "observed transaction vanishes" else 2)
    compile_schedule(program)  # the interleaving issues every step exactly once
    if shape in ("write skew", "read skew"):
        keys = {op.key for ops in program.sessions for op in ops}
        assert len(keys) == 2  # two distinct keys, else it is no skew


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_the_simplest_interleaving_of_a_shape_is_the_one_that_exposes_it(shape):
    program = find(programs(shape=shape), lambda p: True, settings=settings(database=None))
    counts = step_counts(program.sessions)
    assert program.interleaving == exposing_order(shape, counts)
    if shape == "read skew":  # the writer runs whole between the reader's two reads
        assert program.interleaving == (0, 0) + (1,) * counts[1] + (0, 0)
