"""``dbmatrix migrate``: run a user's migration project on every target's scratch databases; one results document.

Each target gets two scratch databases created (and dropped) by dbmatrix: one for the walk (upgrade / downgrade /
re-upgrade per revision, offline SQL, model drift), one for the seeded run (duration, locks, rewrites).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..redaction import scrub
from ..results import ERROR, FAIL, CellResult
from ..targets.model import OK, Target
from ..targets.scratch import ScratchSpace, create_scratch
from .checks import CheckResult, cross_engine, judge
from .guard import ForeignDatabase
from .runner import MigrateOptions
from .walk import Walk


@dataclass
class MigrateSource:
    """What to migrate: ``tool`` is ``alembic`` (path to alembic.ini) or ``yoyo`` (a migrations directory)."""

    tool: str
    path: Path

    def load(self) -> Any:
        if self.tool == "alembic":
            from .alembic_project import AlembicProject

            return AlembicProject(self.path)
        from .yoyo_chain import YoyoProject

        return YoyoProject(self.path)


def migrate_target(project: Any, target: Target, run_id: str, opts: MigrateOptions,
                   progress: Callable[[str], None] = lambda m: None) -> Walk:
    """Walk and seeded run on fresh scratch databases of ``target``; both are dropped before returning."""
    with _scratch(target, f"{run_id}_w") as url:
        progress(f"{target.name}: walking the chain (upgrade / downgrade / re-upgrade per revision)")
        walk = project.walk(url, target.name, opts)
    if walk.records and not any(r.up_error for r in walk.records) and opts.seed_rows >= 0:
        with _scratch(target, f"{run_id}_s") as url:
            progress(f"{target.name}: seeded run ({opts.seed_rows} rows per table)")
            walk.extra["seeded"] = project.seeded(url, opts)
    if target.kind == "postgresql":
        from .lint import lint_sql

        if hasattr(project, "sql_by_revision"):
            sql = project.sql_by_revision()
        else:
            sql = {rev: text for rev, text in (walk.extra.get("offline") or {}).items() if isinstance(text, str)}
        if sql:
            walk.extra["lint"] = lint_sql(sql, ".".join(str(v) for v in target.version[:2]) or None)
    return walk


class _scratch:
    """A scratch database of ``target`` for one phase; its SQLAlchemy URL on entry, dropped on exit."""

    def __init__(self, target: Target, run_id: str):
        self.target, self.run_id = target, run_id
        self.space: ScratchSpace | None = None

    def __enter__(self) -> Any:
        self.space = create_scratch(self.target, self.run_id)
        assert self.target.scratch_url is not None
        if self.space.kind == "schema":
            raise UsageError(f"target {self.target.name}: cannot create a scratch database (no CREATE DATABASE "
                             "privilege); migrations need a database of their own")
        return self.target.scratch_url

    def __exit__(self, *exc: Any) -> None:
        if self.space is not None:
            self.space.drop()


def results_of(walks: list[Walk]) -> list[CellResult]:
    """Every check's results as matrix cells (``migrate.<check>``, revision in ``params.revision``)."""
    cells = []
    for w in walks:
        cells += [_cell(w.target, w.tool, r) for r in judge(w)]
    by_tool: dict[str, list[Walk]] = {}
    for w in walks:
        by_tool.setdefault(w.tool, []).append(w)
    for tool, group in by_tool.items():
        for r, w in zip(cross_engine(group), [w for w in group if w.head is not None][1:], strict=False):
            cells.append(_cell(w.target, tool, r))
    return cells


def _cell(target: str, tool: str, r: CheckResult) -> CellResult:
    params = {"revision": r.revision} if r.revision else {}
    cell = CellResult(case=r.case, target=target, driver=tool, outcome=r.outcome, params=params, detail=r.detail,
                      metrics={k: v for k, v in r.metrics.items() if v is not None})
    if hasattr(cell, "findings"):
        cell.findings = r.findings  # type: ignore[attr-defined]
    return cell


def run_migrate(source: MigrateSource, target_opts: list[str], require_opts: list[str], out: str | Path,
                opts_models: str | None, seed_rows: int, lock_budget_ms: float,
                progress: Callable[[str], None] = print) -> tuple[list[CellResult], Any]:
    """Validate everything first (exit 2 material), then migrate on each target; returns cells and the run."""
    from ..matrix import MatrixRun

    if seed_rows < 0:
        raise UsageError("--seed-rows must be 0 or more")
    project = source.load()
    models = project.load_models(opts_models) if opts_models else None
    run = MatrixRun.from_options(target_opts, [], [], require_opts, out)
    named = {t.name for t in run.targets} if target_opts else set()
    opts = MigrateOptions(models=models, seed_rows=seed_rows, lock_budget_ms=lock_budget_ms)
    try:
        run.prepare(progress, scratch=False)
        down = [t for t in run.targets if t.name in named and t.status != OK]
        if down:
            raise UsageError("; ".join(f"target {t.name} {t.reason}" for t in down))
        walks = []
        for t in run.targets:
            if t.status != OK:
                continue
            try:
                walks.append(migrate_target(project, t, run.doc.run_id, opts, progress))
            except ForeignDatabase:
                raise
            except UsageError:
                raise
            except Exception as exc:  # noqa: BLE001 - dbmatrix's own failure on one target: an error cell
                run.add(CellResult("migrate.upgrade", t.name, source.tool, ERROR,
                                   detail=f"dbmatrix could not run the chain: {type(exc).__name__}: {scrub(exc)}"))
        for cell in results_of(walks):
            run.add(cell)
        for cell in run.doc.results:
            cell.expected = "pass" if cell.case != "migrate.duration" else "measured"
            cell.verdict = "as-expected" if cell.outcome in ("pass", "measured", "skipped") else "deviation"
    finally:
        run.cleanup()
    return run.doc.results, run


def failed(cells: list[CellResult]) -> bool:
    return any(c.outcome in (FAIL, ERROR) for c in cells)
