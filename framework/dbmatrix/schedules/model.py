"""A schedule is data, in the spirit of PostgreSQL's isolation tester specs.

Sessions hold named steps (``"r1: select v from {t} where k = 1"``), a permutation string orders them
(``"r1 r2 w1 w2 c1 c2"``). A step's SQL may use ``{t}`` (the cell's table) and ``{<step>}`` (the first value
an earlier step read), so writes are computed by the client from what it read: ``value = {r1} + 1``. A lost
update then shows in the data, not in an inference.

Steps whose SQL is ``begin``, ``commit``, ``rollback`` (``abort``) are transaction control: the executor
opens the transaction through the session at the schedule's isolation level, so the same schedule runs at
every level the engine offers.

Specs of lock behaviour (the isolation tester's ``.spec`` files) need more, and a step can say it with ``step()``
instead of a string: SQL per engine (``{"postgresql": ..., "mysql": ..., "*": ...}``, looked up by the engine's
name, then its parents', then ``*``; ``None`` means "nothing to run on this engine"), named parameters bound by
the driver (``:lock``, any type, from ``Schedule.params``), an expected outcome (``"blocked"``, ``"not
blocked"``, ``"ok"``, ``"error"``, ``"error:55P03|3572"``, rows with ``ANY`` for a value that may be anything, or
a tuple of these), and a question for the lock observer afterwards (``observe="holders"``: who holds the lock,
asked on the observer's own connection; ``observed`` is the answer expected). ``session_setup`` runs per session
before the permutation, ``session_teardown`` after it (errors there ignored: it is cleanup). A step with no
expectation must succeed: its failure is the executor's caller's to raise, never a finding.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import engines  # noqa: F401  (loads every engine class, so every_engine_codes sees them all)
from ..engines.base import every_engine_codes

CONTROL = {"begin": "begin", "commit": "commit", "rollback": "rollback", "abort": "rollback"}
_STEP = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*:\s*(.+?)\s*$", re.S)
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


_BIND = re.compile(r"(?<![:\w]):([A-Za-z_][A-Za-z0-9_]*)")  # :name, not a ::cast or a time literal's 10:30


class _Any:
    def __repr__(self) -> str:
        return "*"


ANY = _Any()  # in expected rows: any value (a server connection's id, a timestamp)
EngineSQL = Mapping[str, str | None]  # engine name (or "*") -> SQL, None: nothing to run there


@dataclass(frozen=True)
class Expect:
    """What a step must do: wait for a lock or not, succeed or fail (with one of ``codes``), return ``rows``.
    ``None`` fields are not checked. A failure is a finding only when ``error`` is stated (``"ok"`` or
    ``"error"``); otherwise the step is one whose failure the caller raises (``unexpected_failure``)."""

    blocked: bool | None = None
    error: bool | None = None  # True: must fail; False: must succeed
    codes: tuple[str, ...] = ()  # with error: the codes allowed (empty: any)
    rows: tuple[tuple[Any, ...], ...] | None = None

    @classmethod
    def parse(cls, spec: Any) -> Expect:
        if isinstance(spec, Expect):
            return spec
        parts = spec if isinstance(spec, tuple) else (spec,)
        fields: dict[str, Any] = {}
        for part in parts:
            if isinstance(part, list):
                fields["rows"] = tuple(tuple(r) for r in part)
            elif part in ("blocked", "not blocked"):
                fields["blocked"] = part == "blocked"
            elif part == "ok":
                fields["error"] = False
            elif isinstance(part, str) and (part == "error" or part.startswith("error:")):
                codes = part.partition(":")[2]
                fields.update(error=True, codes=tuple(c for c in codes.split("|") if c))
            else:
                raise ValueError(f"unknown step expectation {part!r}: blocked, not blocked, ok, error[:code|...], "
                                 "or a list of rows")
        return cls(**fields)

    def __str__(self) -> str:
        parts = [] if self.blocked is None else ["blocked" if self.blocked else "not blocked"]
        if self.error:
            parts.append("error" + (":" + "|".join(self.codes) if self.codes else ""))
        elif self.rows is not None:
            parts.append(repr([tuple(v for v in r) for r in self.rows]))
        if self.error is False and self.rows is None:
            parts.append("ok")
        return ", ".join(parts)


@dataclass(frozen=True)
class StepSpec:
    """A step given as data rather than ``"name: sql"`` (see ``step``); the session is the list it is in."""

    name: str
    sql: str | EngineSQL
    expect: Expect | None = None
    observe: str | None = None
    observed: tuple[Any, ...] | None = None


def step(name: str, sql: str | EngineSQL, expect: Any = None, observe: str | None = None,
         observed: tuple[Any, ...] | list[Any] | None = None) -> StepSpec:
    """A step with SQL per engine, an expected outcome and an observer question (see the module's doc)."""
    return StepSpec(name, sql if isinstance(sql, str) else dict(sql),
                    None if expect is None else Expect.parse(expect), observe,
                    None if observed is None else tuple(observed))


def binds(sql: str, params: Mapping[str, Any]) -> dict[str, Any] | None:
    """The parameters ``sql`` names (``:lock``), from ``params``; None when it names none."""
    names = _BIND.findall(sql)
    missing = [n for n in names if n not in params]
    if missing:
        raise ValueError(f"{sql!r} binds :{missing[0]}, which the schedule's params do not hold")
    return {n: params[n] for n in names} or None


def same_value(want: Any, got: Any) -> bool:
    """Equal and of the same type (``1`` is not ``True``, nor ``1.0``); ``ANY`` matches everything."""
    return want is ANY or (type(want) is type(got) and want == got)


def engine_sql(sql: str | EngineSQL, names: tuple[str, ...]) -> str | None:
    """The SQL for an engine known by ``names`` (its own, then its parents'), else the ``*`` entry."""
    if isinstance(sql, str):
        return sql
    for name in (*names, "*"):
        if name in sql:
            return sql[name]
    raise ValueError(f"a step has no SQL for {names[0] if names else 'this engine'} and no '*' entry")


@dataclass(frozen=True)
class Step:
    """One statement of one session; ``control`` is begin/commit/rollback for transaction control."""

    name: str
    session: str
    sql: str | EngineSQL
    expect: Expect | None = None
    observe: str | None = None  # a question (Schedule.questions) for the lock observer once the step is done
    observed: tuple[Any, ...] | None = None  # the answer expected

    @property
    def control(self) -> str | None:
        return CONTROL.get(self.sql.strip().lower()) if isinstance(self.sql, str) else None

    def sql_for(self, engine_names: tuple[str, ...]) -> str | None:
        return engine_sql(self.sql, engine_names)


    @property
    def needs(self) -> list[str]:
        """Names of earlier steps whose values this step's SQL uses (``{r1}``), ``t`` excluded."""
        texts = [self.sql] if isinstance(self.sql, str) else [t for t in self.sql.values() if t]
        return [n for text in texts for n in _PLACEHOLDER.findall(text) if n != "t"]

    def render(self, table: str, values: dict[str, Any], sql: str | None = None) -> str:
        """The SQL (``sql``, default the step's own; for per-engine SQL the first engine's) with ``{t}`` and
        ``{step}`` filled in; a missing value is SQL NULL (a read of no row)."""
        if sql is None:
            sql = self.sql if isinstance(self.sql, str) else next((t for t in self.sql.values() if t), "")

        def fill(m: re.Match[str]) -> str:
            name = m.group(1)
            if name == "t":
                return table
            value = values.get(name)
            return "NULL" if value is None else str(int(value))

        return _PLACEHOLDER.sub(fill, sql)


@dataclass
class Schedule:
    """Setup, sessions of named steps, one permutation, and the final state the schedule must leave.

    ``final`` names the rows a serializable execution leaves (``[(1, 12), (2, 20)]``) when the case asserts on
    data; the executor reads ``final_sql`` after every session has ended (``None``: nothing to read).
    A session's steps are ``"name: sql"`` strings or ``step(...)`` specs.
    """

    setup: list[str]
    sessions: dict[str, list[str | StepSpec]]
    permutation: str
    final_sql: str | None = "select k, v from {t} order by k"
    teardown: list[str] = field(default_factory=lambda: ["drop table if exists {t}"])
    params: dict[str, Any] = field(default_factory=dict)  # bound by name (``:lock``), any type
    session_setup: dict[str, list[str | EngineSQL]] = field(default_factory=dict)
    session_teardown: dict[str, list[str | EngineSQL]] = field(default_factory=dict)
    questions: dict[str, EngineSQL] = field(default_factory=dict)  # observer questions, DBAPI %(name)s params

    def __post_init__(self) -> None:
        self.steps: dict[str, Step] = {}
        for session, texts in self.sessions.items():
            for text in texts:
                if isinstance(text, StepSpec):
                    name = text.name
                    made = Step(name, session, text.sql, text.expect, text.observe, text.observed)
                else:
                    m = _STEP.match(text)
                    if not m:
                        raise ValueError(f"step {text!r} of session {session} is not 'name: sql'")
                    name, sql = m.groups()
                    made = Step(name, session, sql)
                if name in self.steps:
                    raise ValueError(f"step name {name!r} is used twice")
                if made.observe is not None and made.observe not in self.questions:
                    raise ValueError(f"step {name} asks {made.observe!r}, which is no question of the schedule")
                self.steps[name] = made
        unknown = (set(self.session_setup) | set(self.session_teardown)) - set(self.sessions)
        if unknown:
            raise ValueError(f"session setup for unknown sessions: {', '.join(sorted(unknown))}")
        order = self.order
        missing = [n for n in order if n not in self.steps]
        if missing:
            raise ValueError(f"permutation names unknown steps: {', '.join(missing)}")
        if len(set(order)) != len(order):
            raise ValueError("permutation issues a step twice")
        for name in order:
            for need in self.steps[name].needs:
                if need not in self.steps:
                    raise ValueError(f"step {name} uses {{{need}}}, which is no step")

    @property
    def order(self) -> list[str]:
        return self.permutation.split()

    def session_of(self, step: str) -> str:
        return self.steps[step].session

    def session_steps(self, session: str) -> list[Step]:
        """The steps of ``session`` in the order the permutation issues them."""
        return [self.steps[n] for n in self.order if self.steps[n].session == session]

    def with_permutation(self, permutation: str) -> Schedule:
        return Schedule(list(self.setup), dict(self.sessions), permutation, self.final_sql, list(self.teardown),
                        dict(self.params), dict(self.session_setup), dict(self.session_teardown),
                        dict(self.questions))


# --- what running a schedule produced ---------------------------------------------------------------------
OK = "ok"
ABORT = "abort"  # the engine refused the step (SQLSTATE / errno in ``code``); the transaction is rolled back
DEADLOCK = "deadlock"  # an abort the engine calls a deadlock (40P01, 1213)
BUSY = "busy"  # SQLite: the database is locked (SQLITE_BUSY*)
SKIPPED = "skipped"  # not issued: its transaction had already aborted
STATUSES = (OK, ABORT, DEADLOCK, BUSY, SKIPPED)
# Refusals by which an engine keeps transactions isolated (each engine names its own: serialization failure,
# deadlock, lock timeout, MariaDB's snapshot write conflict); other failed steps (a duplicate key) are the
# program's own business. An execution does not know its engine, so it counts any engine's.
ISOLATION_CODES = every_engine_codes("isolation_codes")


@dataclass
class StepResult:
    """What one step did. ``blocked`` is True when the engine reported it waiting on a lock; it then completed
    while ``resumed_after`` (the step issued just before it finished) was running, as isolationtester's
    ``<waiting ...>`` / ``<... completed>``."""

    step: str
    session: str
    sql: str
    status: str = OK
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    code: str | None = None
    message: str | None = None
    blocked: bool = False
    resumed_after: str | None = None
    elapsed_s: float | None = None  # from issue to completion (None: not issued)
    error: Exception | None = field(default=None, repr=False, compare=False)  # the driver's error, when failed
    observed: tuple[Any, ...] | None = None  # the observer's answer to the step's question

    @property
    def value(self) -> Any:
        """The first column of the first row, the value ``{step}`` stands for in later steps."""
        return self.rows[0][0] if self.rows and self.rows[0] else None

    @property
    def failed(self) -> bool:
        return self.status in (ABORT, DEADLOCK, BUSY)

    def mismatch(self, step: Step) -> str | None:
        """How this result breaks the step's expectation, in words (None: it meets it, or there is none)."""
        got = self.describe()
        e = step.expect
        problems = []
        if e is not None:
            if e.blocked is not None and e.blocked != self.blocked:
                problems.append("waited for a lock" if self.blocked else "did not wait for a lock")
            if self.status == SKIPPED and e.error is not None:
                problems.append("was not run: " + (self.message or "skipped"))
            elif e.error is True and not self.failed:
                problems.append("succeeded")
            elif e.error is True and e.codes and str(self.code) not in e.codes:
                problems.append(f"failed with another code ({self.code})")
            elif e.error is False and self.failed:
                problems.append(f"failed: {self.status}:{self.code}: {self.message}")
            elif e.rows is not None and not self.failed and not _rows_match(e.rows, self.rows):
                problems.append(f"returned {self.rows!r}")
        if step.observed is not None and not _rows_match(tuple((v,) for v in step.observed),
                                                         tuple((v,) for v in self.observed or ())):
            held = ", ".join(map(str, self.observed or ())) or "nobody"
            want = ", ".join(map(str, step.observed)) or "nobody"
            problems.append(f"then {step.observe} was {held}, expected {want}")
        if not problems:
            return None
        return f"{self.step} ({self.session}) expected {e or 'ok'}, got {got}: {'; '.join(problems)}"

    def describe(self) -> str:
        text = {OK: "ok", SKIPPED: "skipped"}.get(self.status, f"{self.status}:{self.code}")
        if self.status == OK and self.rows:
            text = f"{self.rows!r}" if len(self.rows) != 1 or len(self.rows[0]) != 1 else repr(self.value)
        return f"<waiting> ... {text}" if self.blocked else text


def _rows_match(want: tuple[tuple[Any, ...], ...], got: Any) -> bool:
    got = [tuple(r) for r in got]
    return len(want) == len(got) and all(
        len(w) == len(g) and all(same_value(a, b) for a, b in zip(w, g, strict=True))
        for w, g in zip(want, got, strict=True))


@dataclass
class Execution:
    """The results of one schedule run: every step's result in completion order, and the final rows."""

    schedule: Schedule
    isolation: str | None
    results: list[StepResult] = field(default_factory=list)
    final: list[tuple[Any, ...]] = field(default_factory=list)

    def by_step(self) -> dict[str, StepResult]:
        return {r.step: r for r in self.results}

    def committed(self, session: str) -> bool:
        """The session's commit step ran and succeeded."""
        return any(r.session == session and self.schedule.steps[r.step].control == "commit" and r.status == OK
                   for r in self.results)

    def mismatches(self) -> list[str]:
        """Every step that broke its expectation, in words, in completion order."""
        return [m for r in self.results if (m := r.mismatch(self.schedule.steps[r.step])) is not None]

    def unexpected_failure(self) -> StepResult | None:
        """The first step that failed although its expectation does not speak of errors (a setup step the engine
        refused, e.g. a clause it does not have): the caller raises ``error``, it is no finding."""
        return next((r for r in self.results if r.failed and r.error is not None
                     and (self.schedule.steps[r.step].expect or Expect()).error is None), None)

    def transcript(self) -> str:
        """One line: each step, what it did and what the observer said after it."""
        out = []
        for r in self.results:
            seen = "" if r.observed is None else f" ({self.schedule.steps[r.step].observe}: " \
                f"{', '.join(map(str, r.observed)) or 'nobody'})"
            out.append(f"{r.step} {r.describe()}{seen}")
        return "; ".join(out)

    def first_failure(self, session: str) -> StepResult | None:
        return next((r for r in self.results if r.session == session and r.failed), None)

    def mechanism(self) -> str | None:
        """How the engine stopped an anomaly, in the results vocabulary: ``abort:<code>``, ``busy``, ``blocked``.
        Only refusals that serve isolation count (``ISOLATION_CODES``, SQLite busy)."""
        failures = [r for r in self.results if r.status == BUSY or (r.failed and str(r.code) in ISOLATION_CODES)]
        if failures:
            f = failures[0]
            return "busy" if f.status == BUSY else f"abort:{f.code}"
        if any(r.blocked for r in self.results):
            return "blocked"
        return None
