"""Transaction programs over a tiny key/value table, compiled to a ``Schedule``.

A program is a list of operations per session (read, write = read + delta, insert, delete, predicate read);
an interleaving is the order in which sessions issue their next step. ``compile_schedule`` turns both into
the step data the executor runs, and ``History`` (history.py) replays the results against the programs.
"""

from __future__ import annotations

from dataclasses import dataclass

from .model import Schedule

TABLE_DDL = "create table {t} (k integer primary key, v integer)"


@dataclass(frozen=True)
class Op:
    """One operation: ``read k``, ``write k delta`` (two steps: read, then update to read + delta),
    ``insert k value``, ``delete k``, ``pred v_min`` (the rows with v >= v_min); ``rollback`` ends the transaction
    with ROLLBACK instead of COMMIT (only as a session's last operation)."""

    f: str  # read | write | insert | delete | pred | rollback
    key: int = 0
    value: int = 0  # the delta of a write, the value of an insert, the bound of a predicate read

    def __str__(self) -> str:
        return {"read": f"r({self.key})", "write": f"w({self.key},{self.value:+d})",
                "insert": f"i({self.key},{self.value})", "delete": f"d({self.key})",
                "pred": f"p(v>={self.value})", "rollback": "abort"}[self.f]


@dataclass(frozen=True)
class Program:
    """Initial rows, one list of operations per session, and the interleaving (a session name per step)."""

    initial: tuple[tuple[int, int], ...]
    sessions: tuple[tuple[Op, ...], ...]
    interleaving: tuple[int, ...]  # session index for each step, in issue order
    shape: str = "general"  # the shape it was drawn from (strategies.SHAPES), for the report

    def __str__(self) -> str:
        txns = "; ".join(f"T{i + 1}: " + " ".join(map(str, ops)) for i, ops in enumerate(self.sessions))
        return f"initial {dict(self.initial)}; {txns}"


def session_name(i: int) -> str:
    return f"s{i + 1}"


def op_steps(op: Op, prefix: str) -> list[tuple[str, str]]:
    """(step name, SQL) for one operation; a write is a read step plus an update computed from it."""
    if op.f == "read":
        return [(f"{prefix}r", f"select v from {{t}} where k = {op.key}")]
    if op.f == "write":
        read = f"{prefix}r"
        return [(read, f"select v from {{t}} where k = {op.key}"),
                (f"{prefix}w", f"update {{t}} set v = {{{read}}} + {op.value} where k = {op.key}")]
    if op.f == "insert":
        return [(f"{prefix}i", f"insert into {{t}} (k, v) values ({op.key}, {op.value})")]
    if op.f == "delete":
        return [(f"{prefix}d", f"delete from {{t}} where k = {op.key}")]
    if op.f == "pred":
        return [(f"{prefix}p", f"select k, v from {{t}} where v >= {op.value} order by k")]
    if op.f == "rollback":
        return []  # the session's end (session_steps)
    raise ValueError(f"unknown operation {op.f!r}")


def session_steps(i: int, ops: tuple[Op, ...]) -> list[tuple[str, str]]:
    """begin, each operation's steps, commit: step names ``b1``, ``o1_2r`` (session 1, op 2, read), ``c1``
    (``a1``, rollback, when the last operation is ``rollback``)."""
    n = i + 1
    steps = [(f"b{n}", "begin")]
    for j, op in enumerate(ops, start=1):
        steps += op_steps(op, f"o{n}_{j}")
    steps.append((f"a{n}", "rollback") if ops and ops[-1].f == "rollback" else (f"c{n}", "commit"))
    return steps


def step_counts(sessions: tuple[tuple[Op, ...], ...]) -> list[int]:
    return [len(session_steps(i, ops)) for i, ops in enumerate(sessions)]


def compile_schedule(program: Program) -> Schedule:
    """The program as a Schedule: setup creates and fills the table, the permutation follows the interleaving."""
    setup = [TABLE_DDL]
    if program.initial:
        rows = ", ".join(f"({k}, {v})" for k, v in program.initial)
        setup.append(f"insert into {{t}} (k, v) values {rows}")
    per_session = [session_steps(i, ops) for i, ops in enumerate(program.sessions)]
    sessions = {session_name(i): [f"{name}: {sql}" for name, sql in steps] for i, steps in enumerate(per_session)}
    cursors = [0] * len(per_session)
    order = []
    for i in program.interleaving:
        order.append(per_session[i][cursors[i]][0])
        cursors[i] += 1
    if cursors != [len(s) for s in per_session]:
        raise ValueError("the interleaving does not issue every step exactly once")
    return Schedule(setup=setup, sessions=sessions, permutation=" ".join(order))
