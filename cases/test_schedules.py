"""schedules.*: hypothesis draws transaction programs and interleavings nobody wrote down, runs each one step by
step on the engine, and checks the committed history: serializable (brute force over the orders of the committed
transactions), no lost increment, the sum conserved.

A counterexample is shrunk by hypothesis (fewest transactions, operations and steps) and written into the run's
folder as a replayable SQL script with one column per session, plus every executed history in Elle's JSON form
(rw-register) so Jepsen's checker can verify it independently. ``DBMATRIX_HYPOTHESIS_PROFILE=deep`` searches
much longer than the bounded, derandomised ``ci`` profile, and keeps counterexamples in hypothesis's example
database so that the next run replays them first.
"""

from __future__ import annotations

import collections
import os

import pytest
from schedule_cells import level_refusal, skip_transaction_pooled

from dbmatrix.casekit import axes, expect
from dbmatrix.engines import IsolationUnsupported, engine_for
from dbmatrix.results import ALLOWED, PREVENTED
from dbmatrix.schedules.artifact import hermitage_sql
from dbmatrix.schedules.executor import ScheduleExecutor
from dbmatrix.schedules.explore import compile_program, explore
from dbmatrix.schedules.history import elle_json
from dbmatrix.schedules.programs import TABLE_DDL, Program

LEVELS = ["read uncommitted", "read committed", "repeatable read", "serializable", "deferred", "immediate"]
SCHEDULE_DRIVERS = {"psycopg", "mysqlclient", "sqlite3"}  # one raw driver per kind; --driver adds others
pytestmark = axes("target", "driver", drivers=tuple(sorted(SCHEDULE_DRIVERS)))
MAX_SESSIONS = 4
PROFILE = os.environ.get("DBMATRIX_HYPOTHESIS_PROFILE", "ci")
SHRINK_BUDGET_S = {"ci": 6.0, "deep": 300.0}


def kind_of_anomaly(problems: list[str], serializable: bool) -> str:
    if any(p.startswith("lost increment") for p in problems):
        return "lost update"
    if problems:
        return "broken invariant"
    return "non-serializable history" if not serializable else "none"


def main_mechanism(mechanisms: collections.Counter[str]) -> str:
    """The mechanism a prevented cell names: the refusal seen most (``abort:<code>``, ``busy``), else the most
    common other one (``blocked``). Refusals first, so that a level which both blocks and aborts (InnoDB
    serializable: shared-lock waits and 1213 deadlocks, in about equal numbers) names the same one every run."""
    refusals = [m for m, _ in mechanisms.most_common() if m.startswith("abort:") or m == "busy"]
    others = [m for m, _ in mechanisms.most_common() if m != "snapshot"]
    return (refusals or others or ["snapshot"])[0]


@expect(PREVENTED)
@pytest.mark.parametrize("isolation", LEVELS)
def test_serializable_history(cell, isolation):
    """Every committed history hypothesis can provoke in the budget is serializable and keeps its invariants;
    otherwise the smallest counterexample found is the finding (``allowed``)."""
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
        found = explore(run, profile=PROFILE, shrink_budget_s=SHRINK_BUDGET_S[PROFILE])
    finally:
        admin.execute(f"drop table if exists {table}")
    histories = cell.artifact_path(f"elle-{isolation.replace(' ', '_')}.json")
    histories.write_text(elle_json(found.histories), encoding="utf-8")
    metrics = {"schedules": found.tried, "schedules_per_s": round(found.per_second, 1),
               "search_s": round(found.seconds, 2), "counterexamples": found.counterexamples,
               "mechanisms": dict(mechanisms)}
    if found.smallest is None:
        top = main_mechanism(mechanisms)
        cell.record(PREVENTED, f"{found.tried} schedules ({PROFILE} profile), every committed history serializable "
                               f"with its invariants; mechanisms seen: {dict(mechanisms)}", mechanism=top,
                    metrics=metrics)
        return
    smallest = found.smallest
    committed = sum(smallest.execution.committed(s) for s in smallest.execution.schedule.sessions)
    anomaly = kind_of_anomaly(smallest.verdict.problems, smallest.verdict.serializable)
    opening = engine_for(cell.kind, cell.engine).begin_statements(isolation)
    text = hermitage_sql(smallest.execution, table="t",
                         begin={s: opening for s in smallest.execution.schedule.sessions},
                         title=f"{anomaly} on {cell.target.name} ({cell.engine}) at {isolation}")
    cell.artifact_path(f"counterexample-{isolation.replace(' ', '_')}.sql").write_text(text, encoding="utf-8")
    metrics.update(first_counterexample_s=round(found.first_counterexample_s or 0.0, 3),
                   shrunk_transactions=len(smallest.program.sessions), shrunk_committed=committed)
    problems = "; ".join(smallest.verdict.problems) or "no serial order of the committed transactions explains it"
    cell.record(ALLOWED, f"{anomaly} after {found.first_counterexample_s:.2f}s, shrunk to "
                         f"{len(smallest.program.sessions)} transactions: {smallest.program} | {problems}",
                metrics=metrics,
                findings=[{"anomaly": anomaly, "program": str(smallest.program),
                           "transactions": len(smallest.program.sessions), "permutation":
                           smallest.execution.schedule.permutation, "problems": smallest.verdict.problems,
                           "script": text}])
