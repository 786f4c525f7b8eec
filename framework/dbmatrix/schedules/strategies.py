"""Hypothesis strategies for transaction programs and their interleavings, and the settings profiles.

Programs: 2-4 sessions, 1-4 operations each over 2-3 keys (read, write = read + delta, insert, delete,
predicate read). Interleavings: a session index per step, each session's steps in their own order. Both
shrink well: fewer sessions, fewer operations, plain reads and writes, then the interleaving towards
"one session after the other".
"""

from __future__ import annotations

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

from .programs import Op, Program, step_counts

CI = "dbmatrix-ci"
DEEP = "dbmatrix-deep"
PROFILES = {"ci": CI, "deep": DEEP}

# ci: bounded and derandomised, so a CI run is repeatable and its time is known; deep: for users hunting.
settings.register_profile(
    CI, max_examples=30, derandomize=True, deadline=None, database=None, print_blob=False,
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


def ops(keys: list[int], inserts: bool = True) -> st.SearchStrategy[Op]:
    key = st.sampled_from(keys)
    choices = [
        st.builds(Op, st.just("read"), key),
        st.builds(Op, st.just("write"), key, st.sampled_from([1, 2, -1, 10])),
        st.builds(Op, st.just("pred"), st.just(0), st.sampled_from([0, 15])),
    ]
    if inserts:
        choices += [st.builds(Op, st.just("insert"), st.sampled_from(keys + [max(keys) + 1]), st.just(5)),
                    st.builds(Op, st.just("delete"), key)]
    # Writes first: hypothesis shrinks towards the first alternative, and a write is the richest operation.
    return st.one_of(choices[1], choices[0], *choices[2:])


@st.composite
def interleavings(draw: st.DrawFn, counts: list[int]) -> tuple[int, ...]:
    """A session index per step: each session issues its steps in order, sessions interleave freely.
    Shrinks towards running sessions one after the other (lowest index first)."""
    left = list(counts)
    order: list[int] = []
    while any(left):
        live = [i for i, n in enumerate(left) if n]
        i = live[draw(st.integers(0, len(live) - 1))]
        order.append(i)
        left[i] -= 1
    return tuple(order)


@st.composite
def programs(draw: st.DrawFn, min_sessions: int = 2, max_sessions: int = 4, max_ops: int = 4,
             inserts: bool = True) -> Program:
    """A program over 2-3 keys (all present at first, value 10 each) and one interleaving of it."""
    nkeys = draw(st.integers(2, 3))
    keys = list(range(1, nkeys + 1))
    # A list of sessions (not a count, then sessions) so that shrinking can delete any one of them.
    program = st.lists(ops(keys, inserts), min_size=1, max_size=max_ops).map(tuple)
    sessions = tuple(draw(st.lists(program, min_size=min_sessions, max_size=max_sessions)))
    order = draw(interleavings(step_counts(sessions)))
    return Program(initial=tuple((k, 10) for k in keys), sessions=sessions, interleaving=order)
