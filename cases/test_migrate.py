"""migrate.*: the reference chains (migrations/alembic, migrations/yoyo) checked on every target.

Each target walks each chain once (upgrade / downgrade / re-upgrade per revision, then a seeded run) on
scratch databases of its own; every cell then reports one check for one revision from that walk. The checks and
their invariants are in ``dbmatrix.migrate.checks``; ``dbmatrix migrate`` runs the same on a user's project.

Lint findings on three revisions are real and expected (``fail``): 0006 sets NOT NULL (a scan of users under
ACCESS EXCLUSIVE), 0008 renames and 0009 drops a column (clients still on the old code break). An expand/contract
rollout would split those; the reference chain keeps them to show the findings.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from dbmatrix.casekit import axes, case_id, expect, requires
from dbmatrix.migrate.alembic_project import AlembicProject
from dbmatrix.migrate.catalog import diff_catalogs
from dbmatrix.migrate.checks import CheckResult, head_matches, judge
from dbmatrix.migrate.command import migrate_target
from dbmatrix.migrate.runner import MigrateOptions
from dbmatrix.migrate.walk import Walk
from dbmatrix.migrate.yoyo_chain import YoyoProject
from dbmatrix.results import FAIL, MEASURED, PASS, UNSUPPORTED

REFERENCE = Path(__file__).resolve().parents[1] / "migrations"
ALEMBIC_INI = REFERENCE / "alembic" / "alembic.ini"
MODELS = f"{REFERENCE / 'alembic' / 'reference_models.py'}:metadata"
HEAD = json.loads((REFERENCE / "reference_head.json").read_text())  # the portable head every engine must reach
SEED_ROWS = 300  # enough for rewrites and locks to show on populated tables; small for CI
REVISIONS = [r.revision for r in AlembicProject(ALEMBIC_INI).revisions(make_url("sqlite://"))]
REAL_LINT_FINDINGS = {"0006_user_display_name", "0008_rename_postcode", "0009_drop_user_name"}

_walks: dict[tuple[str, str], Walk | BaseException] = {}


def walked(cell: Any, tool: str) -> Walk:
    """This target's walk of the reference chain in ``tool``, made once per process on the target's scratch."""
    key = (tool, cell.target.name)
    if key not in _walks:
        try:
            if tool == "alembic":
                project: Any = AlembicProject(ALEMBIC_INI)
            else:
                directory = REFERENCE / "yoyo" / cell.kind
                if not directory.is_dir():
                    raise LookupError(f"no reference yoyo chain for {cell.kind} (migrations/yoyo/{cell.kind})")
                project = YoyoProject(directory)
            opts = MigrateOptions(models=project.load_models(MODELS), seed_rows=SEED_ROWS)
            _walks[key] = migrate_target(project, cell.target, cell.place.run_id, opts, lambda m: None,
                                         *cell.place.name_parts, tool)
        except BaseException as exc:  # noqa: BLE001 - every cell of this target reports it, none retries
            _walks[key] = exc
    got = _walks[key]
    if isinstance(got, BaseException):
        raise got
    return got


def report(cell: Any, tool: str, check: str, revision: str | None = None) -> None:
    """Record the check's result for ``revision`` (or for the chain) as this cell's one outcome."""
    try:
        walk = walked(cell, tool)
    except LookupError as exc:
        cell.record(UNSUPPORTED, str(exc))
        return
    found = [r for r in judge(walk) if r.check == check and r.revision == revision]
    if not found:
        reached = [r.step.id for r in walk.records]
        cell.record(FAIL, f"{check} has no result for {revision or 'the chain'}: the walk reached {reached}")
        return
    _record(cell, found[0])


def _record(cell: Any, r: CheckResult) -> None:
    cell.record(r.outcome, r.detail, metrics={k: v for k, v in r.metrics.items() if v is not None},
                findings=r.findings)


def _lint_params() -> list[Any]:
    # per revision: a function-level expect() would win over a parameter's (pytest lists function marks first)
    return [pytest.param(rev, marks=expect(FAIL if rev in REAL_LINT_FINDINGS else PASS)) for rev in REVISIONS]


def _per_revision(check: str, tool: str, *marks: Any, revisions: list[Any] | None = None) -> Any:
    @case_id(f"migrate.{check}")
    @axes("target", tool=tool)
    @pytest.mark.parametrize("revision", revisions or REVISIONS)
    def case(cell: Any, revision: str) -> None:
        report(cell, tool, check, revision)

    case.__doc__ = f"migrate.{check} ({tool}) for one revision of the reference chain."
    for mark in marks:
        case = mark(case)
    return case


def _per_chain(check: str, tool: str, *marks: Any) -> Any:
    @case_id(f"migrate.{check}")
    @axes("target", tool=tool)
    def case(cell: Any) -> None:
        report(cell, tool, check)

    case.__doc__ = f"migrate.{check} ({tool}) for the reference chain."
    for mark in marks:
        case = mark(case)
    return case


for _tool in ("alembic", "yoyo"):
    for _check in ("upgrade", "downgrade_restores", "reupgrade"):
        globals()[f"test_{_tool}_{_check}"] = _per_revision(_check, _tool, expect(PASS))
    globals()[f"test_{_tool}_duration"] = _per_revision("duration", _tool, expect(MEASURED))
    globals()[f"test_{_tool}_locks"] = _per_revision("locks", _tool, expect(PASS), requires("lock_introspection"))
    globals()[f"test_{_tool}_lint"] = _per_revision("lint", _tool, requires("squawk_lint"),
                                                    revisions=_lint_params())
    for _check in ("single_head", "partial_failure", "model_drift"):
        globals()[f"test_{_tool}_{_check}"] = _per_chain(_check, _tool, expect(PASS))
test_alembic_offline_sql = _per_revision("offline_sql", "alembic", expect(PASS))
test_yoyo_bookkeeping = _per_chain("bookkeeping", "yoyo", expect(PASS))


@case_id("migrate.cross_engine")
@axes("target", tool="alembic")
@expect(PASS)
def test_cross_engine(cell: Any) -> None:
    """The head of the alembic chain on this engine, made portable, equals migrations/reference_head.json
    (so every engine's head agrees with every other's: types by family, keys, indexes, checks)."""
    _record(cell, head_matches(walked(cell, "alembic"), HEAD, "migrations/reference_head.json"))


@case_id("migrate.same_schema")
@axes("target", tool="alembic+yoyo")
@expect(PASS)
def test_same_schema(cell: Any) -> None:
    """Both chains reach the identical catalog on this engine (the exact snapshot, not the portable one)."""
    try:
        yoyo = walked(cell, "yoyo")
    except LookupError as exc:
        cell.record(UNSUPPORTED, str(exc))
        return
    alembic = walked(cell, "alembic")
    if alembic.head is None or yoyo.head is None:
        cell.record(FAIL, "a chain did not reach head: " + ", ".join(
            w.tool for w in (alembic, yoyo) if w.head is None))
        return
    diffs = diff_catalogs(alembic.head, yoyo.head)
    cell.record(FAIL if diffs else PASS, "; ".join(diffs[:12]) if diffs else
                f"alembic and yoyo heads are identical ({len(alembic.head['tables'])} tables)",
                findings=[{"difference": d} for d in diffs])
