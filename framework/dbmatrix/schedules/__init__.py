"""Schedules: transactions as data, run step by step, checked for isolation anomalies.

``model`` (sessions, steps, permutations, step results; specs: per-engine SQL, parameters, expected outcomes,
observer questions), ``programs`` (transaction programs compiled to
schedules), ``strategies`` (hypothesis), ``executor`` (runs a schedule, lock waits seen by the observer),
``history`` (serializability and invariants, Elle export), ``explore`` (hypothesis search and shrinking),
``artifact`` (replayable Hermitage-style SQL, one column per session), ``transcript`` (an executed schedule as one
line per statement in issue order, each naming its session and what it returned, for isolation.* cells).
"""

from .model import ANY, Execution, Expect, Schedule, Step, StepResult, step

__all__ = ["ANY", "Execution", "Expect", "Schedule", "Step", "StepResult", "step"]
