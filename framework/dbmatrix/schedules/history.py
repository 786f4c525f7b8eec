"""Check an executed program: serializability by brute force, conservation, no lost increments; Elle export.

Only committed transactions matter (an aborted one must leave no trace; if a committed one read its writes,
no serial order explains that read, which is how G1a shows up). Programs are tiny (2-4 transactions), so
trying every serial order (at most 24) is exact and fast.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from .model import Execution
from .programs import Op, Program, session_name, session_steps

ABSENT = object()


@dataclass
class Observed:
    """One committed transaction: its operations with what each one saw."""

    index: int  # session index
    ops: tuple[Op, ...]
    seen: list[Any]  # per op: the value read (read/write), the rows (pred), None (insert/delete)

    @property
    def name(self) -> str:
        return f"T{self.index + 1}"


@dataclass
class Verdict:
    serializable: bool
    order: list[str] | None  # a serial order explaining the history, when there is one
    problems: list[str] = field(default_factory=list)  # invariant violations, in words

    @property
    def anomaly(self) -> bool:
        return not self.serializable or bool(self.problems)


def observe(program: Program, execution: Execution) -> list[Observed]:
    """The committed transactions of ``execution`` with what each of their operations observed."""
    results = execution.by_step()
    out = []
    for i, ops in enumerate(program.sessions):
        if not execution.committed(session_name(i)):
            continue
        seen = []
        for j, op in enumerate(ops, start=1):
            prefix = f"o{i + 1}_{j}"
            if op.f in ("read", "write"):
                seen.append(results[f"{prefix}r"].value)
            elif op.f == "pred":
                seen.append([tuple(r) for r in results[f"{prefix}p"].rows])
            else:
                seen.append(None)
        out.append(Observed(i, ops, seen))
    return out


def replay(txn: Observed, state: dict[int, Any]) -> bool:
    """Run ``txn`` alone on ``state`` (in place); False when a serial run would have seen something else
    or could not have committed (an insert of a key that exists)."""
    for op, seen in zip(txn.ops, txn.seen, strict=True):
        current = state.get(op.key, ABSENT)
        if op.f in ("read", "write"):
            if (None if current is ABSENT else current) != seen:
                return False
            if op.f == "write" and current is not ABSENT:
                state[op.key] = None if current is None else current + op.value
        elif op.f == "insert":
            if current is not ABSENT:
                return False
            state[op.key] = op.value
        elif op.f == "delete":
            state.pop(op.key, None)
        elif op.f == "pred":
            rows = sorted((k, v) for k, v in state.items() if v is not None and v >= op.value)
            if rows != list(seen):
                return False
    return True


def serial_order(initial: dict[int, Any], txns: list[Observed], final: dict[int, Any]) -> list[str] | None:
    """A serial order of ``txns`` that explains every read and the final state, or None."""
    for order in itertools.permutations(txns):
        state = dict(initial)
        if all(replay(t, state) for t in order) and state == final:
            return [t.name for t in order]
    return None


def invariant_problems(initial: dict[int, Any], txns: list[Observed], final: dict[int, Any]) -> list[str]:
    """No lost increments per key, and conservation of the sum, over keys no committed insert/delete touched."""
    touched = {op.key for t in txns for op in t.ops if op.f in ("insert", "delete")}
    keys = [k for k in initial if k not in touched and initial[k] is not None]
    problems = []
    for k in keys:
        deltas = [op.value for t in txns for op in t.ops if op.f == "write" and op.key == k]
        want = initial[k] + sum(deltas)
        if final.get(k) != want:
            problems.append(f"lost increment on k={k}: committed deltas {deltas} on {initial[k]} should give "
                            f"{want}, the table holds {final.get(k)}")
    want_sum = sum(initial[k] for k in keys) + sum(
        op.value for t in txns for op in t.ops if op.f == "write" and op.key in keys)
    have_sum = sum(final.get(k) or 0 for k in keys)
    if keys and have_sum != want_sum:
        problems.append(f"sum over keys {keys} is {have_sum}, committed deltas make it {want_sum}")
    return problems


def check(program: Program, execution: Execution) -> Verdict:
    """Is the committed history of ``execution`` serializable, and do the invariants hold?"""
    initial = dict(program.initial)
    final = {row[0]: row[1] for row in execution.final}
    txns = observe(program, execution)
    order = serial_order(initial, txns, final)
    return Verdict(order is not None, order, invariant_problems(initial, txns, final))


def committed_count(program: Program, execution: Execution) -> int:
    return sum(execution.committed(session_name(i)) for i in range(len(program.sessions)))


def elle_history(program: Program, execution: Execution) -> list[dict[str, Any]]:
    """The execution as an Elle rw-register history (JSON form of Jepsen's ops): one ``invoke`` and one
    ``ok``/``fail`` op per transaction, micro-ops ``["r", k, v]`` and ``["w", k, v]``.

    A write is its read plus the written value; an insert is a write; a delete writes nil; predicate reads
    have no rw-register form and are left out. Values need not be unique per key here, which limits how much
    Elle can infer, not whether its verdict is sound.
    """
    results = execution.by_step()
    order = {r.step: n for n, r in enumerate(execution.results)}
    ops: list[tuple[int, dict[str, Any]]] = []
    for i, prog_ops in enumerate(program.sessions):
        name = session_name(i)
        steps = [s for s, _ in session_steps(i, prog_ops)]
        ran = [order[s] for s in steps if s in order]
        if not ran:
            continue
        ok = execution.committed(name)
        invoke, complete = [], []
        for j, op in enumerate(prog_ops, start=1):
            prefix = f"o{i + 1}_{j}"
            read = results.get(f"{prefix}r")
            if op.f == "read":
                invoke.append(["r", op.key, None])
                complete.append(["r", op.key, read.value if read else None])
            elif op.f == "write":
                seen = read.value if read else None
                written = None if seen is None else seen + op.value
                invoke += [["r", op.key, None], ["w", op.key, written]]
                complete += [["r", op.key, seen], ["w", op.key, written]]
            elif op.f in ("insert", "delete"):
                mop = ["w", op.key, op.value if op.f == "insert" else None]
                invoke.append(mop)
                complete.append(mop)
        ops.append((min(ran), {"type": "invoke", "f": "txn", "process": i, "value": invoke}))
        ops.append((max(ran), {"type": "ok" if ok else "fail", "f": "txn", "process": i,
                               "value": complete if ok else invoke}))
    ops.sort(key=lambda pair: pair[0])
    return [dict(op, index=n, time=t) for n, (t, op) in enumerate(ops)]


KEY_SPACE = 1000  # keys of execution n become n * KEY_SPACE + k in a merged history


def elle_json(histories: list[list[dict[str, Any]]]) -> str:
    """Several executions as one Elle history. Each execution starts from a fresh table, so its processes
    and keys are renumbered to be distinct from the others' (key k of execution n is ``n * 1000 + k``)."""
    merged, base = [], 0
    for n, history in enumerate(histories):
        for op in history:
            value = [[f, n * KEY_SPACE + k, v] for f, k, v in op["value"]]
            merged.append(dict(op, process=op["process"] + base, index=len(merged), value=value))
        base += 1 + max((op["process"] for op in history), default=0)
    return json.dumps(merged)
