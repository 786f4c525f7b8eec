"""schedules.*: hypothesis draws transaction programs and interleavings nobody wrote down, runs each one step by
step on the engine, and checks the committed history: serializable (brute force over the orders of the committed
transactions), no lost increment, the sum conserved.

A counterexample is shrunk by hypothesis (fewest transactions, operations and steps) and written into the run's
folder as a replayable SQL script with one column per session, plus every executed history in Elle's JSON form
(rw-register) so Jepsen's checker can verify it independently. ``DBMATRIX_HYPOTHESIS_PROFILE=deep`` searches
much longer than the bounded, derandomised ``ci`` profile, and keeps counterexamples in hypothesis's example
database so that the next run replays them first.

The search runs in two passes. First each anomaly shape (``strategies.SHAPES``: Hermitage's lost update, read
skew, write skew, predicate write skew, phantom and dirty reads) gets a few programs of its own, unshrunk, so
the cell's metrics say how long programs of each shape took to give a counterexample (``first_by_shape``; the
shape of the program, not a classification of the anomaly: under snapshot isolation "circular information flow"
programs fail as write skew); then the general search (half general programs, half shapes) finds and
shrinks the counterexample the cell reports. A search that finds nothing is ``not-found`` with the number of
schedules and the budget: a bounded search is no proof that the engine prevents anything.
"""

from __future__ import annotations

import collections
import os

import pytest
from schedule_cells import level_refusal, skip_transaction_pooled

from dbmatrix.casekit import axes, expect
from dbmatrix.engines import IsolationUnsupported, engine_for
from dbmatrix.results import ALLOWED, NOT_FOUND
from dbmatrix.schedules.artifact import hermitage_sql
from dbmatrix.schedules.executor import ScheduleExecutor
from dbmatrix.schedules.explore import MAX_HISTORIES, VARIANTS, Exploration, compile_program, explore
from dbmatrix.schedules.history import elle_json
from dbmatrix.schedules.programs import TABLE_DDL, Program
from dbmatrix.schedules.strategies import SHAPES, profile_settings

LEVELS = ["read uncommitted", "read committed", "repeatable read", "serializable", "deferred", "immediate"]
SCHEDULE_DRIVERS = {"psycopg", "mysqlclient", "sqlite3"}  # one raw driver per kind; --driver adds others
pytestmark = axes("target", "driver", drivers=tuple(sorted(SCHEDULE_DRIVERS)))
MAX_SESSIONS = 4
PROFILE = os.environ.get("DBMATRIX_HYPOTHESIS_PROFILE", "ci")
SHRINK_BUDGET_S = {"ci": 6.0, "deep": 300.0}
# hypothesis examples per shape in the first pass, each run in 6 interleavings: the first example's takes turns
# step by step (hypothesis tries the simplest example first), the other 5 are drawn
SHAPE_EXAMPLES = {"ci": 1, "deep": 50}


def kind_of_anomaly(problems: list[str], serializable: bool) -> str:
    if any(p.startswith("lost increment") for p in problems):
        return "lost update"
    if problems:
        return "broken invariant"
    return "non-serializable history" if not serializable else "none"


def main_mechanism(mechanisms: collections.Counter[str]) -> str:
    """The mechanism a not-found cell names: the refusal seen most (``abort:<code>``, ``busy``), else the most
    common other one (``blocked``). Refusals first, so that a level which both blocks and aborts (InnoDB
    serializable: shared-lock waits and 1213 deadlocks, in about equal numbers) names the same one every run."""
    refusals = [m for m, _ in mechanisms.most_common() if m.startswith("abort:") or m == "busy"]
    others = [m for m, _ in mechanisms.most_common() if m != "snapshot"]
    return (refusals or others or ["snapshot"])[0]


def search(run, profile: str) -> tuple[Exploration, list[Exploration]]:
    """The shape pass (each shape alone, no shrinking), then the general search; both share ``run``."""
    by_shape = [explore(run, profile=profile, shrink_budget_s=0.0, max_examples=SHAPE_EXAMPLES[profile], shape=name)
                for name in SHAPES]
    return explore(run, profile=profile, shrink_budget_s=SHRINK_BUDGET_S[profile]), by_shape


def budget(profile: str) -> dict[str, int | str]:
    """What the search may spend, for the cell's metrics (a not-found cell is only as good as this)."""
    return {"profile": profile, "programs_per_shape": SHAPE_EXAMPLES[profile], "shapes": len(SHAPES),
            "programs": profile_settings(profile).max_examples, "interleavings_per_program": 1 + VARIANTS,
            "shrink_s": SHRINK_BUDGET_S[profile]}


@expect(NOT_FOUND)
@pytest.mark.parametrize("isolation", LEVELS)
def test_serializable_history(cell, isolation):
    """Every committed history hypothesis provokes in the budget is serializable and keeps its invariants
    (``not-found``: no counterexample, which proves nothing beyond the budget); otherwise the smallest
    counterexample found is the finding (``allowed``)."""
    skip_transaction_pooled(cell)
    if PROFILE not in SHRINK_BUDGET_S:
        raise ValueError(f"DBMATRIX_HYPOTHESIS_PROFILE must be ci or deep, not {PROFILE!r}")
    try:
        engine_for(cell.kind, cell.engine).check_isolation(isolation)
    except IsolationUnsupported as exc:
        cell.unsupported(exc)
        return
    table = cell.table("sched")
    sessions = {f"s{i}": cell.connect() for i in range(1, MAX_SESSIONS + 1)}
    admin = sessions["s1"]
    refused = level_refusal(admin, isolation)
    if refused is not None:
        cell.unsupported(refused)
        return
    admin.execute(f"drop table if exists {table}")
    admin.execute(TABLE_DDL.replace("{t}", table))
    executor = ScheduleExecutor(sessions, cell.observer(), isolation, table)
    mechanisms: collections.Counter[str] = collections.Counter()

    def run(program: Program):
        schedule, reset = compile_program(program)
        execution = executor.run(schedule, setup=reset)
        mechanisms[execution.mechanism() or "snapshot"] += 1
        return execution

    try:
        found, by_shape = search(run, PROFILE)
    finally:
        admin.execute(f"drop table if exists {table}")
    passes = [*by_shape, found]
    histories = cell.artifact_path(f"elle-{isolation.replace(' ', '_')}.json")
    histories.write_text(elle_json([h for p in passes for h in p.histories][:MAX_HISTORIES]), encoding="utf-8")
    tried = sum(p.tried for p in passes)
    seconds = sum(p.seconds for p in passes)
    # seconds from the start of the cell's search to each shape's (and the first) counterexample
    first_by_shape: dict[str, float] = {}
    elapsed = 0.0
    for p in passes:
        for shape, at in p.first_by_shape.items():
            first_by_shape.setdefault(shape, round(elapsed + at, 3))
        elapsed += p.seconds
    metrics = {"schedules": tried, "schedules_per_s": round(tried / seconds, 1) if seconds else 0.0,
               "search_s": round(seconds, 2), "counterexamples": sum(p.counterexamples for p in passes),
               "mechanisms": dict(mechanisms), "budget": budget(PROFILE), "first_by_shape": first_by_shape}
    smallest = found.smallest or next((p.smallest for p in by_shape if p.smallest is not None), None)
    if smallest is None:
        top = main_mechanism(mechanisms)
        b = budget(PROFILE)
        cell.record(NOT_FOUND, f"no counterexample in {tried} schedules ({PROFILE} profile: {b['programs_per_shape']} "
                               f"programs per shape, then {b['programs']} programs, each in "
                               f"{b['interleavings_per_program']} interleavings): every committed history was "
                               f"serializable with its invariants, which proves nothing beyond this budget; "
                               f"mechanisms seen: {dict(mechanisms)}",
                    mechanism=top, metrics=metrics)
        return
    first_s = min(first_by_shape.values())
    committed = sum(smallest.execution.committed(s) for s in smallest.execution.schedule.sessions)
    anomaly = kind_of_anomaly(smallest.verdict.problems, smallest.verdict.serializable)
    opening = engine_for(cell.kind, cell.engine).begin_statements(isolation)
    text = hermitage_sql(smallest.execution, table="t",
                         begin={s: opening for s in smallest.execution.schedule.sessions},
                         title=f"{anomaly} on {cell.target.name} ({cell.engine}) at {isolation}")
    cell.artifact_path(f"counterexample-{isolation.replace(' ', '_')}.sql").write_text(text, encoding="utf-8")
    metrics.update(first_counterexample_s=first_s, shrunk_transactions=len(smallest.program.sessions),
                   shrunk_committed=committed)
    problems = "; ".join(smallest.verdict.problems) or "no serial order of the committed transactions explains it"
    shapes = ", ".join(f"{k} {v:.2f}s" for k, v in sorted(first_by_shape.items(), key=lambda kv: kv[1]))
    cell.record(ALLOWED, f"{anomaly} after {first_s:.2f}s (first counterexample per shape: {shapes}), shrunk to "
                         f"{len(smallest.program.sessions)} transactions: {smallest.program} | {problems}",
                metrics=metrics,
                findings=[{"anomaly": anomaly, "shape": smallest.program.shape, "program": str(smallest.program),
                           "transactions": len(smallest.program.sessions), "permutation":
                           smallest.execution.schedule.permutation, "problems": smallest.verdict.problems,
                           "script": text}])
