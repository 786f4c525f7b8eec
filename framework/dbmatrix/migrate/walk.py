"""The walk: every revision of a chain, one at a time, as ``upgrade r; downgrade r; upgrade r`` on a scratch
database, with a catalog snapshot after each step. Checks (checks.py) judge what the walk observed.

A chain is anything with ``steps()``, ``up(step)``, ``down(step)`` and ``applied()`` (alembic_project.py,
yoyo_chain.py): the tools' own APIs do the migrating, the walk only orders and observes. Steps come in a
topological order of the revision graph (parents and dependencies first), so when a revision is upgraded every
revision it needs is applied and none that needs it is: its downgrade can undo that revision alone, whatever
other branches are applied beside it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .catalog import Catalog, diff_catalogs
from .guard import ForeignDatabase


@dataclass
class MigrateOptions:
    models: Any = None  # a MetaData, for migrate.model_drift
    seed_rows: int = 50_000
    lock_budget_ms: float | None = None  # off: lock hold times are reported, a rewrite fails the check
    offline: bool = True
    tool_log: bool = False  # show the tools' INFO log lines (alembic's stock env.py prints several per step)
    # the seeded run's scratch database as the target's own user: dbmatrix's lock and table-identity probes read
    # what a sandboxed login may not (MariaDB: PROCESS); None: through the migration's own URL
    observer_url: Any = None


@dataclass(frozen=True)
class Step:
    id: str
    parents: tuple[str, ...]  # the revisions it revises (two or more: a merge; none: a root)
    path: str
    needs: tuple[str, ...] = ()  # parents plus the revisions it depends on (alembic's depends_on)
    children: int = 1  # revisions that revise it (two or more: a branch point)

    @property
    def label(self) -> str:
        """``id``, with its place in the graph when that is not a plain link of a line."""
        roles = ([f"merge of {', '.join(self.parents)}"] if len(self.parents) > 1 else []) + (
            [f"branch point of {self.children} branches"] if self.children > 1 else []) + (
            [f"depends on {', '.join(n for n in self.needs if n not in self.parents)}"]
            if set(self.needs) - set(self.parents) else [])
        return f"{self.id} ({'; '.join(roles)})" if roles else self.id


class Chain(Protocol):
    tool: str  # "alembic" | "yoyo"
    version_table: str

    def steps(self) -> list[Step]: ...
    def up(self, step: Step) -> None: ...
    def down(self, step: Step) -> None: ...
    def applied(self) -> set[str]: ...
    def mark(self, step: Step) -> None: ...


@dataclass
class StepRecord:
    step: Step
    before: Catalog
    applied_before: set[str] = field(default_factory=set)  # what the version table said before the upgrade
    after: Catalog | None = None
    down: Catalog | None = None
    again: Catalog | None = None
    up_error: str | None = None
    down_error: str | None = None
    reup_error: str | None = None
    up_ms: float | None = None
    statements: list[str] = field(default_factory=list)
    leftover: list[str] = field(default_factory=list)  # schema changes left behind by a failed upgrade
    stamped: bool = False  # the walk marked the revision applied to go on past a broken downgrade


@dataclass
class Walk:
    target: str
    engine: str
    tool: str
    records: list[StepRecord] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)  # every revision of the chain, walked or not
    chain_error: str | None = None  # the chain could not be read (syntax error, several heads, bad env.py)
    heads: list[str] = field(default_factory=list)
    branches: dict[str, list[str]] = field(default_factory=dict)  # head -> its branch's revisions (several heads)
    head: Catalog | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # drift, offline SQL, seeded run, tool tables


def describe(exc: BaseException) -> str:
    """The engine's own error, one line (driver class, code, message) — a user's finding, not a traceback."""
    orig = getattr(exc, "orig", None)
    statement = getattr(exc, "statement", None)
    if orig is not None:
        code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
        if code is None and getattr(orig, "args", None) and isinstance(orig.args[0], int):
            code = orig.args[0]
        text = str(orig.args[1]) if isinstance(getattr(orig, "args", (None,))[0], int) else str(orig)
        msg = f"{type(orig).__name__}" + (f" [{code}]" if code else "") + f": {text.strip().splitlines()[0]}"
        if statement:
            msg += f" (statement: {' '.join(statement.split())[:160]})"
        return msg
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def walk_chain(chain: Chain, snap: Callable[[], Catalog], take: Callable[[], list[str]],
               walk: Walk, *, verify_first: Callable[[Step], None]) -> None:
    """Fill ``walk.records``. Stops at the first upgrade that fails (later revisions depend on it)."""
    try:
        steps = chain.steps()
    except ForeignDatabase:
        raise
    except Exception as exc:  # noqa: BLE001 - a broken chain is the user's finding
        walk.chain_error = describe(exc)
        return
    walk.steps = steps
    before = snap()
    for i, step in enumerate(steps):
        rec = StepRecord(step, before, chain.applied())
        walk.records.append(rec)
        take()
        t0 = time.perf_counter()
        try:
            chain.up(step)
        except ForeignDatabase:
            raise
        except Exception as exc:  # noqa: BLE001
            rec.up_error = describe(exc)
            rec.statements = take()
            rec.leftover = diff_catalogs(before, snap())
            return
        rec.up_ms = round((time.perf_counter() - t0) * 1000, 2)
        rec.statements = take()
        if i == 0:
            verify_first(step)
        rec.after = snap()
        try:
            chain.down(step)
        except ForeignDatabase:
            raise
        except Exception as exc:  # noqa: BLE001
            rec.down_error = describe(exc)
            rec.down = snap()
            if step.id not in chain.applied() or rec.down != rec.after:
                return  # half-downgraded: what follows would judge a state no chain produced
            before = rec.after
            continue
        rec.down = snap()
        left = chain.applied()
        if left != rec.applied_before:
            # the tool undid more (or less) than this revision: its catalog would be judged against the wrong state
            rec.down_error = (f"the downgrade of {step.id} left the version table at {sorted(left) or ['base']}, "
                              f"not at {sorted(rec.applied_before) or ['base']}")
            return
        try:
            chain.up(step)
        except ForeignDatabase:
            raise
        except Exception as exc:  # noqa: BLE001
            rec.reup_error = describe(exc)
            now = snap()
            if now != rec.after:
                return
            # the downgrade did nothing, so the schema is r's: record r as applied and judge the revisions after it
            chain.mark(step)
            rec.stamped = True
            before = now
            continue
        rec.again = snap()
        before = rec.again
    walk.head = before
