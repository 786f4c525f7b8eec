"""Migration checks as matrix cases: each target walks a chain once (per process), then one cell per check and
revision reports from that walk. Used by ``cases/test_migrate.py`` (the reference chains) and by the pytest
entry ``pytest --dbm-alembic path/alembic.ini`` (a user's chain)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ..casekit import axes, case_id, expect
from ..results import FAIL, MEASURED, PASS, SKIPPED, UNSUPPORTED
from .checks import CheckResult, judge
from .command import migrate_target
from .waivers import Waiver, waive, waived_by
from .walk import MigrateOptions, Walk

# check -> (per revision?, default expected outcome, the target kinds it applies to (None: every kind))
CASE_CHECKS: dict[str, tuple[bool, str, tuple[str, ...] | None]] = {
    "single_head": (False, PASS, None),
    "single_leaf": (False, PASS, None),
    "upgrade": (True, PASS, None),
    "downgrade_restores": (True, PASS, None),
    "reupgrade": (True, PASS, None),
    "offline_sql": (True, PASS, None),
    "duration": (True, MEASURED, None),
    "locks": (True, PASS, ("postgresql", "mysql")),  # pg_locks / MariaDB's METADATA_LOCK_INFO, table identity
    "lint": (True, PASS, ("postgresql",)),  # squawk reads PostgreSQL's SQL dialect only
    "partial_failure": (False, PASS, None),
    "model_drift": (False, PASS, None),
    "bookkeeping": (False, PASS, None),
    "outside_scratch": (False, PASS, None),  # catalogs, users and database files outside scratch: unchanged
}
# the checks that exist for some tools only (Django's heads are per app: single_leaf)
TOOLS_OF = {"offline_sql": ("alembic", "django"), "bookkeeping": ("yoyo",), "single_head": ("alembic", "yoyo"),
            "single_leaf": ("django",)}

_walks: dict[tuple[str, str, str], Walk | BaseException] = {}


def walked(cell: Any, key: str, make_project: Callable[[Any], Any], models: str | None, seed_rows: int,
           tool_log: bool = False) -> Walk:
    """The walk of the chain ``key`` on this cell's target, made once per process on scratch databases of its own.
    ``make_project(cell)`` may raise LookupError when the chain does not exist for this target."""
    k = (key, cell.target.name, cell.place.run_id)
    if k not in _walks:
        try:
            project = make_project(cell)
            opts = MigrateOptions(models=project.load_models(models) if models else None, seed_rows=seed_rows,
                                  tool_log=tool_log)
            _walks[k] = migrate_target(project, cell.target, cell.place.run_id, opts, lambda m: None,
                                       *cell.place.name_parts, key)
        except BaseException as exc:  # noqa: BLE001 - every cell of this target reports it, none retries
            _walks[k] = exc
    got = _walks[k]
    if isinstance(got, BaseException):
        raise got
    return got


def record(cell: Any, r: CheckResult) -> None:
    cell.record(r.outcome, r.detail, metrics={k: v for k, v in r.metrics.items() if v is not None},
                findings=r.findings)


WalkOf = Callable[[Any, pytest.Config], Walk]  # (cell, pytest config) -> the walk of that cell's target
WaiversOf = Callable[[pytest.Config], list[Waiver]]  # the project's accepted findings ([tool.dbmatrix.migrate])


def report(cell: Any, walk: Callable[[], Walk], check: str, revision: str | None = None) -> None:
    """Record the check's result for ``revision`` (or for the whole chain) as this cell's one outcome."""
    try:
        walk = walk()
    except LookupError as exc:
        cell.record(UNSUPPORTED, str(exc))
        return
    found = [r for r in judge(walk) if r.check == check and r.revision == revision]
    if not found and check == "model_drift":  # a head not reached with models given is a result (skipped)
        cell.record(SKIPPED, "no models given to compare with (--dbm-models MODULE:ATTR)")
        return
    if not found:
        reached = [r.step.id for r in walk.records]
        cell.record(FAIL, f"{check} has no result for {revision or 'the chain'}: the walk reached {reached}"
                    + (f" ({walk.chain_error})" if walk.chain_error else ""))
        return
    record(cell, found[0])


def accept_waived(cell: Any, request: pytest.FixtureRequest, waivers_of: WaiversOf | None) -> None:
    """A failure the project accepts (waivers.py): reason in the cell, and the test expects that outcome (a marker
    in front of the case's own ``expect``), so it is counted but not red."""
    r = cell.result
    if waivers_of is None or r is None:
        return
    hits = waived_by(waivers_of(request.config), r.case.removeprefix("migrate."), r.params.get("revision"),
                     r.target, r.outcome, r.findings)
    if hits:
        waive(r, hits)
        request.node.add_marker(expect(r.outcome), append=False)


def define_cases(namespace: dict[str, Any], tool: str, walk_of: WalkOf,
                 revisions: list[str] | None, expected: dict[tuple[str, str], str] | None = None,
                 waivers_of: WaiversOf | None = None) -> None:
    """Put one case function per check into ``namespace`` (a test module's globals), named
    ``test_<tool>_<check>``, case id ``migrate.<check>``, one cell per target (the result's driver is ``tool``).

    Per-revision checks are parametrized by ``revisions``; with None, by the module's own
    ``pytest_generate_tests`` (the chain is known only once options are parsed). ``expected`` overrides the
    expected outcome of (check, revision) cells, e.g. a lint finding that is real.
    """
    for check, (per_revision, default, kinds) in CASE_CHECKS.items():
        if tool not in TOOLS_OF.get(check, (tool,)):
            continue
        # a check that means nothing on an engine (squawk lints PostgreSQL SQL) gives it no cell at all
        marks = [case_id(f"migrate.{check}"), axes("target", tool=tool, kinds=kinds or ())]
        if per_revision:
            fn = _revision_case(walk_of, check, waivers_of)
            if revisions is not None:
                # per parameter: a function-level expect() would win over a parameter's (pytest lists it first)
                params = [pytest.param(rev, marks=expect((expected or {}).get((check, rev), default)))
                          for rev in revisions]
                marks.append(pytest.mark.parametrize("revision", params))
            else:
                marks.append(expect(default))
        else:
            fn = _chain_case(walk_of, check, waivers_of)
            marks.append(expect(default))
        for mark in marks:
            fn = mark(fn)
        fn.__name__ = fn.__qualname__ = f"test_{tool}_{check}"
        namespace[fn.__name__] = fn


def _revision_case(walk_of: WalkOf, check: str, waivers_of: WaiversOf | None) -> Callable[..., None]:
    def case(cell: Any, revision: str, request: pytest.FixtureRequest) -> None:
        report(cell, lambda: walk_of(cell, request.config), check, revision)
        accept_waived(cell, request, waivers_of)

    case.__doc__ = f"migrate.{check} for one revision (invariant: dbmatrix.migrate.checks.{check})."
    return case


def _chain_case(walk_of: WalkOf, check: str, waivers_of: WaiversOf | None) -> Callable[..., None]:
    def case(cell: Any, request: pytest.FixtureRequest) -> None:
        report(cell, lambda: walk_of(cell, request.config), check)
        accept_waived(cell, request, waivers_of)

    case.__doc__ = f"migrate.{check} for the chain (invariant: dbmatrix.migrate.checks.{check})."
    return case
