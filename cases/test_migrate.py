"""migrate.*: the reference chains (migrations/alembic, migrations/yoyo) checked on every target.

Each target walks each chain once (upgrade / downgrade / re-upgrade per revision, then a seeded run) on
scratch databases of its own; every cell then reports one check for one revision from that walk. The checks and
their invariants are in ``dbmatrix.migrate.checks``; ``dbmatrix migrate`` runs the same on a user's project.

Lint findings on three revisions are real and expected (``fail``): 0006 sets NOT NULL (a scan of users under
ACCESS EXCLUSIVE), 0008 renames and 0009 drops a column (clients still on the old code break). An expand/contract
rollout would split those; the reference chain keeps them to show the findings. On MariaDB the same NOT NULL
rebuilds the InnoDB table, so 0006's ``migrate.locks`` cell there is a real ``fail`` too (cases/expectations).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from dbmatrix.casekit import axes, case_id, expect
from dbmatrix.migrate.alembic_project import AlembicProject
from dbmatrix.migrate.catalog import diff_catalogs
from dbmatrix.migrate.checks import head_matches
from dbmatrix.migrate.matrix_cases import define_cases, record, walked
from dbmatrix.migrate.walk import Walk
from dbmatrix.migrate.yoyo_chain import YoyoProject
from dbmatrix.results import FAIL, PASS, UNSUPPORTED

REFERENCE = Path(__file__).resolve().parents[1] / "migrations"
ALEMBIC_INI = REFERENCE / "alembic" / "alembic.ini"
MODELS = f"{REFERENCE / 'alembic' / 'reference_models.py'}:metadata"
HEAD = json.loads((REFERENCE / "reference_head.json").read_text())  # the portable head every engine must reach
SEED_ROWS = 300  # enough for rewrites and locks to show on populated tables; small for CI
REVISIONS = [s.id for s in AlembicProject(ALEMBIC_INI).steps(make_url("sqlite://"))]
REAL_LINT_FINDINGS = {("lint", rev): FAIL for rev in
                      ("0006_user_display_name", "0008_rename_postcode", "0009_drop_user_name")}


def _yoyo_project(cell: Any) -> YoyoProject:
    directory = REFERENCE / "yoyo" / cell.kind
    if not directory.is_dir():
        raise LookupError(f"no reference yoyo chain for {cell.kind} (migrations/yoyo/{cell.kind})")
    return YoyoProject(directory)


def alembic_walk(cell: Any, config: Any = None) -> Walk:
    return walked(cell, "alembic", lambda c: AlembicProject(ALEMBIC_INI), MODELS, SEED_ROWS)


def yoyo_walk(cell: Any, config: Any = None) -> Walk:
    return walked(cell, "yoyo", _yoyo_project, MODELS, SEED_ROWS)


define_cases(globals(), "alembic", alembic_walk, REVISIONS, REAL_LINT_FINDINGS)
define_cases(globals(), "yoyo", yoyo_walk, REVISIONS, REAL_LINT_FINDINGS)


@case_id("migrate.cross_engine")
@axes("target", tool="alembic")
@expect(PASS)
def test_cross_engine(cell: Any) -> None:
    """The head of the alembic chain on this engine, made portable, equals migrations/reference_head.json
    (so every engine's head agrees with every other's: types by family, keys, indexes, checks)."""
    record(cell, head_matches(alembic_walk(cell), HEAD, "migrations/reference_head.json"))


@case_id("migrate.same_schema")
@axes("target", tool="alembic+yoyo")
@expect(PASS)
def test_same_schema(cell: Any) -> None:
    """Both chains reach the identical catalog on this engine (the exact snapshot, not the portable one)."""
    try:
        yoyo = yoyo_walk(cell)
    except LookupError as exc:
        cell.record(UNSUPPORTED, str(exc))
        return
    alembic = alembic_walk(cell)
    if alembic.head is None or yoyo.head is None:
        cell.record(FAIL, "a chain did not reach head: " + ", ".join(
            w.tool for w in (alembic, yoyo) if w.head is None))
        return
    diffs = diff_catalogs(alembic.head, yoyo.head)
    cell.record(FAIL if diffs else PASS, "; ".join(diffs[:12]) if diffs else
                f"alembic and yoyo heads are identical ({len(alembic.head['tables'])} tables)",
                findings=[{"difference": d} for d in diffs])
