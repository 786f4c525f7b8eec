"""Hypothesis strategies for transaction programs and their interleavings, and the settings profiles.

Programs: 2-4 sessions, 1-4 operations each over 2-3 keys (read, write = read + delta, insert, delete,
predicate read). Interleavings: a session index per step, each session's steps in their own order. Both
shrink well: fewer sessions, fewer operations, plain reads and writes, then the interleaving towards
"one session after the other".

The general case rarely draws the few shapes that expose the anomalies snapshot isolation allows (two
transactions that each read two keys and write a different one), so half the programs are drawn from
``SHAPES`` instead: the two or three transactions of one of Hermitage's anomalies over drawn keys and deltas,
interleaved freely.
"""

from __future__ import annotations

import functools
import random

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

from .programs import Op, Program, step_counts

CI = "dbmatrix-ci"
DEEP = "dbmatrix-deep"
PROFILES = {"ci": CI, "deep": DEEP}

# ci: bounded and derandomised, so a CI run is repeatable and its time is known; deep: for users hunting.
settings.register_profile(
    CI, max_examples=10, derandomize=True, deadline=None, database=None, print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
)
settings.register_profile(
    DEEP, max_examples=2000, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def profile_settings(name: str) -> settings:
    """The registered settings for profile ``ci`` or ``deep``."""
    return settings.get_profile(PROFILES[name])


def op_choices(keys: tuple[int, ...], inserts: bool = True) -> tuple[Op, ...]:
    """Every operation over ``keys``, simplest first: writes (the richest operation), reads, predicate reads,
    then inserts and deletes; within each, lower keys and smaller deltas first. Hypothesis shrinks a choice
    towards the front of this list, so it prefers the same operations a ``one_of`` of ``builds`` would."""
    out = [Op("write", k, d) for k in keys for d in (1, 2, -1, 10)] + [Op("read", k) for k in keys]
    out += [Op("pred", 0, bound) for bound in (0, 15)]
    if inserts:
        out += [Op("insert", k, 5) for k in keys + (max(keys) + 1,)] + [Op("delete", k) for k in keys]
    return tuple(out)


def ops(keys: list[int], inserts: bool = True) -> st.SearchStrategy[Op]:
    """One operation over ``keys`` (one choice to draw: a draw costs hypothesis about 0.1 ms, so fewer is faster)."""
    return _ops(tuple(keys), inserts)


@functools.cache
def _ops(keys: tuple[int, ...], inserts: bool) -> st.SearchStrategy[Op]:
    return st.sampled_from(op_choices(keys, inserts))


@functools.cache
def _index_below(n: int) -> st.SearchStrategy[int]:
    return st.integers(0, n - 1)


@functools.cache
def _sessions(nkeys: int, inserts: bool, min_sessions: int, max_sessions: int, max_ops: int
              ) -> st.SearchStrategy[list[tuple[Op, ...]]]:
    # A list of sessions (not a count, then sessions) so that shrinking can delete any one of them.
    program = st.lists(_ops(tuple(range(1, nkeys + 1)), inserts), min_size=1, max_size=max_ops).map(tuple)
    return st.lists(program, min_size=min_sessions, max_size=max_sessions)


_NKEYS = st.integers(2, 3)


def _two_keys(draw: st.DrawFn, nkeys: int) -> tuple[int, int]:
    x = draw(_index_below(nkeys)) + 1
    return x, (x + draw(_index_below(nkeys - 1))) % nkeys + 1  # any other key


_DELTAS = st.sampled_from((1, 2, -1, 10))


def _lost_update(draw: st.DrawFn, nkeys: int) -> tuple[tuple[Op, ...], ...]:
    """P4: both read a key and write it back incremented."""
    x = draw(_index_below(nkeys)) + 1
    return (Op("write", x, draw(_DELTAS)),), (Op("write", x, draw(_DELTAS)),)


def _read_skew(draw: st.DrawFn, nkeys: int) -> tuple[tuple[Op, ...], ...]:
    """G-single: one reads two keys while the other moves an amount from one to the other."""
    x, y = _two_keys(draw, nkeys)
    d = draw(_DELTAS)
    return (Op("read", x), Op("read", y)), (Op("write", x, -d), Op("write", y, d))


def _write_skew(draw: st.DrawFn, nkeys: int) -> tuple[tuple[Op, ...], ...]:
    """G2-item: both read the same two keys, each writes a different one of them."""
    x, y = _two_keys(draw, nkeys)
    return ((Op("read", x), Op("read", y), Op("write", x, draw(_DELTAS))),
            (Op("read", x), Op("read", y), Op("write", y, draw(_DELTAS))))


def _predicate_write_skew(draw: st.DrawFn, nkeys: int) -> tuple[tuple[Op, ...], ...]:
    """G2: both read a predicate, each inserts a row (its own new key) that matches the other's predicate."""
    return ((Op("pred", 0, 0), Op("insert", nkeys + 1, 5)), (Op("pred", 0, 0), Op("insert", nkeys + 2, 5)))


def _phantom(draw: st.DrawFn, nkeys: int) -> tuple[tuple[Op, ...], ...]:
    """PMP: one reads a predicate twice while the other inserts a matching row."""
    return (Op("pred", 0, 0), Op("pred", 0, 0)), (Op("insert", nkeys + 1, 5),)


def _aborted_read(draw: st.DrawFn, nkeys: int) -> tuple[tuple[Op, ...], ...]:
    """G1a: one writes a key and rolls back; the other reads another key, then that one (taking turns, the
    second read falls between the write and the rollback)."""
    x, y = _two_keys(draw, nkeys)
    return (Op("write", x, draw(_DELTAS)), Op("rollback")), (Op("read", y), Op("read", x))


def _intermediate_read(draw: st.DrawFn, nkeys: int) -> tuple[tuple[Op, ...], ...]:
    """G1b: one writes a key twice; the other reads it (in between, the value no committed state had)."""
    x = draw(_index_below(nkeys)) + 1
    return (Op("write", x, draw(_DELTAS)), Op("write", x, draw(_DELTAS))), (Op("read", x),)


def _circular_information_flow(draw: st.DrawFn, nkeys: int) -> tuple[tuple[Op, ...], ...]:
    """G1c: each writes one key and reads the other's."""
    x, y = _two_keys(draw, nkeys)
    return (Op("write", x, draw(_DELTAS)), Op("read", y)), (Op("write", y, draw(_DELTAS)), Op("read", x))


def _observed_transaction_vanishes(draw: st.DrawFn, nkeys: int) -> tuple[tuple[Op, ...], ...]:
    """OTV: two write the same two keys; a third reads both (and may see one writer's x, the other's y)."""
    x, y = _two_keys(draw, nkeys)
    return ((Op("write", x, 1), Op("write", y, 1)), (Op("write", x, 2), Op("write", y, 2)),
            (Op("read", x), Op("read", y)))


# the order that exposes a shape (its steps: begin, each operation's, commit): taking turns unless named here
NESTED_AFTER = {"read skew": 2, "phantom": 2, "intermediate read": 3}  # session 0's steps before session 1


def exposing_order(shape: str, counts: list[int]) -> tuple[int, ...]:
    first = NESTED_AFTER.get(shape)
    return nested(counts, first) if first is not None else taking_turns(counts)


# name -> the operations of its transactions over ``nkeys`` keys (each key starts at 10): Hermitage's anomalies
SHAPES = {"lost update": _lost_update, "read skew": _read_skew, "write skew": _write_skew,
          "predicate write skew": _predicate_write_skew, "phantom": _phantom, "aborted read": _aborted_read,
          "intermediate read": _intermediate_read, "circular information flow": _circular_information_flow,
          "observed transaction vanishes": _observed_transaction_vanishes}
_SHAPE_NAMES = st.sampled_from(tuple(SHAPES))


@st.composite
def interleavings(draw: st.DrawFn, counts: list[int], prefer: tuple[int, ...] = ()) -> tuple[int, ...]:
    """A session index per step: each session issues its steps in order, sessions interleave freely.
    Shrinks towards running sessions one after the other (lowest index first), or towards ``prefer`` (a
    session index per step: the order that exposes an anomaly's shape); every draw other than the simplest
    departs from it."""
    left = list(counts)
    order: list[int] = []
    while any(left):
        live = [i for i, n in enumerate(left) if n]
        pick = draw(_index_below(len(live)))
        if len(order) < len(prefer) and prefer[len(order)] in live:  # counted from the preferred session
            pick = (live.index(prefer[len(order)]) + pick) % len(live)
        i = live[pick]
        order.append(i)
        left[i] -= 1
    return tuple(order)


def taking_turns(counts: list[int]) -> tuple[int, ...]:
    """Sessions take turns step by step (where symmetric transactions overlap most)."""
    left, order = list(counts), []
    while any(left):
        for i, n in enumerate(left):
            if n:
                order.append(i)
                left[i] -= 1
    return tuple(order)


def nested(counts: list[int], first: int) -> tuple[int, ...]:
    """Session 0 runs ``first`` steps, session 1 all of its own, then session 0 the rest (a transaction that
    begins, commits and is seen within another's)."""
    return (0,) * first + (1,) * counts[1] + (0,) * (counts[0] - first)


def timed_interleaving(sessions: tuple[tuple[Op, ...], ...], seed: str) -> tuple[int, ...]:
    """An interleaving from clocks instead of draws: each session's steps are spaced by exponential gaps from a
    generator of its own, and all steps run in time order. Equal rates make it the same distribution as
    ``interleavings`` (at each step every live session is equally likely to go next), and a session's clock
    depends on ``seed``, its operations and how many equal sessions come before it, not on its position: when
    shrinking deletes one transaction, the others keep their relative order and an anomaly between them stays."""
    times: list[tuple[float, int]] = []
    seen: dict[tuple[Op, ...], int] = {}
    for i, (ops, count) in enumerate(zip(sessions, step_counts(sessions), strict=True)):
        twin = seen[ops] = seen.get(ops, -1) + 1
        rng = random.Random(f"{seed}/{'.'.join(map(str, ops))}/{twin}")
        clock = 0.0
        for _ in range(count):
            clock += rng.expovariate(1.0)
            times.append((clock, i))
    return tuple(i for _, i in sorted(times))


@st.composite
def programs(draw: st.DrawFn, min_sessions: int = 2, max_sessions: int = 4, max_ops: int = 4,
             inserts: bool = True, shape: str | None = None) -> Program:
    """A program over 2-3 keys (all present at first, value 10 each) and one interleaving of it: of the
    ``shape`` named (a key of ``SHAPES``, or "general"), or, by default, general or any shape, half and half
    (the general case first, so that shrinking tends towards it). Shapes with inserts need ``inserts``.
    The strategies it draws from are built once (building them per draw cost more than the draw itself)."""
    nkeys = draw(_NKEYS)
    if shape is None:
        shape = draw(_SHAPE_NAMES) if draw(st.booleans()) else "general"
        if not inserts and shape in ("predicate write skew", "phantom"):
            shape = "general"
    if shape == "general":
        sessions = tuple(draw(_sessions(nkeys, inserts, min_sessions, max_sessions, max_ops)))
    else:
        sessions = SHAPES[shape](draw, nkeys)
    counts = step_counts(sessions)
    order = draw(interleavings(counts, exposing_order(shape, counts) if shape != "general" else ()))
    return Program(initial=tuple((k, 10) for k in range(1, nkeys + 1)), sessions=sessions, interleaving=order,
                   shape=shape)


@st.composite
def variants(draw: st.DrawFn, program: Program, count: int) -> list[Program]:
    """``count`` more interleavings of ``program``'s transactions from one draw (a seed) instead of one draw
    per step, so each program hypothesis draws runs several times for about the cost of one draw. Hypothesis
    still owns them: a failing variant is reproduced from its choices, and when shrinking deletes a transaction
    ``timed_interleaving`` keeps the order of the others."""
    if not count:
        return []
    seed = draw(_SEEDS)
    return [Program(program.initial, program.sessions, timed_interleaving(program.sessions, f"{seed}/{n}"),
                    program.shape) for n in range(count)]


_SEEDS = st.integers(0, 2**32 - 1)
