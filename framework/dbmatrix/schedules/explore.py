"""Let hypothesis draw programs and interleavings, run each one, and keep the smallest counterexample.

A counterexample is an execution whose committed history is not serializable or breaks an invariant
(lost increment, conservation). Hypothesis shrinks it; the shrink is bounded in time so a CI run is too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from .history import Verdict, check, committed_count, elle_history
from .model import Execution
from .programs import Program, compile_schedule
from .strategies import profile_settings, programs, variants

MAX_HISTORIES = 200  # executions kept for the Elle export
# More interleavings of each drawn program, from one drawn seed (see strategies.variants): hypothesis spends
# ~3 ms drawing a program, about what SQLite takes to run one, so one draw feeds several runs.
VARIANTS = 5


class Counterexample(Exception):
    """Raised inside the property so hypothesis shrinks; carries nothing hypothesis needs."""


class ShrinkBudgetSpent(BaseException):
    """Stops hypothesis once shrinking has taken its time budget (a BaseException, so hypothesis lets it
    through instead of treating it as a failure of the example)."""


@dataclass
class Found:
    program: Program
    execution: Execution
    verdict: Verdict

    @property
    def size(self) -> tuple[int, int, int]:
        return (committed_count(self.program, self.execution), sum(len(s) for s in self.program.sessions),
                len(self.program.interleaving))


@dataclass
class Exploration:
    tried: int = 0
    seconds: float = 0.0
    first_counterexample_s: float | None = None
    first_by_shape: dict[str, float] = field(default_factory=dict)  # shape -> seconds to its first counterexample
    counterexamples: int = 0
    smallest: Found | None = None
    histories: list[list[dict[str, Any]]] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        return self.tried / self.seconds if self.seconds else 0.0


@st.composite
def batches(draw: st.DrawFn, variant_count: int, **strategy: Any) -> list[Program]:
    """A program hypothesis draws, then ``variant_count`` more interleavings of its transactions."""
    program = draw(programs(**strategy))
    return [program, *draw(variants(program, variant_count))]


def explore(run: Callable[[Program], Execution], profile: str = "ci", shrink_budget_s: float = 20.0,
            max_examples: int | None = None, variant_count: int = VARIANTS, **strategy: Any) -> Exploration:
    """Run hypothesis over ``programs(**strategy)`` (each with ``variant_count`` more interleavings), with
    ``run`` executing one program; return what it found. ``max_examples`` counts hypothesis examples; every
    interleaving run counts in ``tried``.

    Once a run fails, every later example runs only as many of its interleavings as that first failing one
    needed: a shrink candidate that does not fail then costs a few runs, not all of them. The first failure
    still fails under that rule (variants do not depend on how many are run), so hypothesis's replay agrees."""
    out = Exploration()
    started = time.monotonic()
    shrink_started: list[float] = []
    runs_needed: list[int] = []

    def prop(batch: list[Program]) -> None:
        # the drawn interleaving first: when it fails, hypothesis shrinks it too
        for index, program in enumerate(batch[:runs_needed[0]] if runs_needed else batch):
            if shrink_started and time.monotonic() - shrink_started[0] > shrink_budget_s:
                raise ShrinkBudgetSpent()
            execution = run(program)
            out.tried += 1
            if len(out.histories) < MAX_HISTORIES:
                out.histories.append(elle_history(program, execution))
            verdict = check(program, execution)
            if not verdict.anomaly:
                continue
            out.counterexamples += 1
            out.first_by_shape.setdefault(program.shape, time.monotonic() - started)
            if out.first_counterexample_s is None:
                out.first_counterexample_s = time.monotonic() - started
                shrink_started.append(time.monotonic())
                runs_needed.append(index + 1)
            found = Found(program, execution, verdict)
            if out.smallest is None or found.size < out.smallest.size:
                out.smallest = found
            raise Counterexample(str(program))

    settings = profile_settings(profile)
    if max_examples is not None:
        settings = type(settings)(settings, max_examples=max_examples)
    test = settings(given(batches(variant_count, **strategy))(prop))
    try:
        test()
    except (Counterexample, ShrinkBudgetSpent):
        pass
    finally:
        out.seconds = time.monotonic() - started
    return out


def compile_program(program: Program) -> tuple[Any, list[str]]:
    """The schedule of ``program`` and the statements that reset the (already created) table to its start."""
    schedule = compile_schedule(program)
    reset = ["delete from {t}"] + [s for s in schedule.setup if s.startswith("insert")]
    return schedule, reset
