"""``dbmatrix migrate``: run a user's migration project on every target's scratch databases; one results document.

Each target gets two scratch databases created (and dropped) by dbmatrix: one for the walk (upgrade / downgrade /
re-upgrade per revision, offline SQL, model drift), one for the seeded run (duration, locks, rewrites).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..matrix import MatrixRun
from ..redaction import scrub
from ..results import ERROR, FAIL, CellResult
from ..targets.model import OK, Target
from ..targets.sandbox import Sandbox, sandboxed
from ..targets.scratch import create_space, scratch_name
from .checks import CheckResult, cross_engine, judge
from .guard import ForeignDatabase
from .lint import lint_sql
from .outside import Snapshot, differences, snapshot
from .waivers import Waiver, is_waived, load_waivers, waive, waived_by
from .walk import MigrateOptions, Walk


@dataclass
class MigrateSource:
    """What to migrate: ``tool`` is ``alembic`` (path to alembic.ini), ``yoyo`` (a migrations directory) or
    ``django`` (a settings module or manage.py, with ``apps`` and ``pythonpath``)."""

    tool: str
    path: Path | str
    apps: list[str] | None = None
    pythonpath: list[Path] | None = None

    def load(self) -> Any:
        # imported here: each tool is an optional dependency, needed only when its chain is migrated
        if self.tool == "alembic":
            from .alembic_project import AlembicProject

            return AlembicProject(self.path)
        if self.tool == "django":
            from .django_project import DjangoProject

            return DjangoProject(str(self.path), self.apps, self.pythonpath)
        from .yoyo_chain import YoyoProject

        return YoyoProject(self.path)


def migrate_target(project: Any, target: Target, run_id: str, opts: MigrateOptions,
                   progress: Callable[[str], None] = lambda m: None, *name_parts: str) -> Walk:
    """Walk and seeded run on fresh scratch databases of ``target``; both are dropped before returning."""
    with tool_logging(opts.tool_log):
        return _migrate_target(project, target, run_id, opts, progress, *name_parts)


def _migrate_target(project: Any, target: Target, run_id: str, opts: MigrateOptions,
                    progress: Callable[[str], None], *name_parts: str) -> Walk:
    said: set[str] = set()

    def once(line: str) -> None:  # both phases meet the same refusal: the run says it once per target
        if line not in said:
            said.add(line)
            progress(line)

    dirs = project_dirs(project)
    before = _outside(target, dirs)
    with scratch_database(target, run_id, *name_parts, "mwalk", say=once) as box:
        progress(f"{target.name}: walking the chain (upgrade / downgrade / re-upgrade per revision)")
        walk = project.walk(box.url, target.name, opts)
    walk.extra["sandbox"] = {"guarded": box.guarded, "unguarded": box.unguarded}
    walk.extra["models_given"] = opts.models is not None  # a head not reached: model_drift says why it is missing
    if walk.records and not any(r.up_error for r in walk.records) and opts.seed_rows >= 0:
        with scratch_database(target, run_id, *name_parts, "mseed", say=once) as box:
            progress(f"{target.name}: seeded run ({opts.seed_rows} rows per table)")
            walk.extra["seeded"] = project.seeded(box.url, replace(opts, observer_url=box.observer_url))
    after = _outside(target, dirs)
    walk.extra["outside"] = (differences(before, after) if isinstance(before, dict) and isinstance(after, dict)
                             else next(x for x in (before, after) if isinstance(x, str)))
    if target.kind == "postgresql":
        if hasattr(project, "sql_by_revision"):
            sql = project.sql_by_revision()
        else:
            sql = {rev: text for rev, text in (walk.extra.get("offline") or {}).items() if isinstance(text, str)}
        if sql:
            walk.extra["lint"] = lint_sql(sql, ".".join(str(v) for v in target.version[:2]) or None)
    return walk


def project_dirs(project: Any) -> list[Path]:
    """Where a SQLite migration's own files would land: the working directory and the project's directory."""
    ini = getattr(project, "ini", None)
    return [Path.cwd(), *([ini.parent] if ini else []), *filter(None, [getattr(project, "directory", None)])]


def _outside(target: Target, dirs: list[Path]) -> Snapshot | str:
    """What the target shows outside scratch now, or why it could not be looked at."""
    try:
        return snapshot(target, dirs)
    except Exception as exc:  # noqa: BLE001 - not seeing is said (the check is skipped), never a pass
        return f"could not look outside scratch: {scrub(exc)}"


@contextmanager
def tool_logging(shown: bool) -> Iterator[None]:
    """alembic's stock env.py hands its INFO lines ("Context impl ...", "Running upgrade ...") to a stderr handler
    through ``fileConfig``, several per step: the console would be mostly that. Quiet unless asked for (``-v``);
    warnings still show. ``logging.disable`` holds across the ``fileConfig`` env.py runs for every command."""
    before = logging.root.manager.disable
    if not shown:
        logging.disable(max(before, logging.INFO))
    try:
        yield
    finally:
        logging.disable(before)


@contextmanager
def scratch_database(target: Target, run_id: str, *name_parts: str,
                     say: Callable[[str], None] = lambda m: None) -> Iterator[Sandbox]:
    """A database of ``target`` made for one phase (``dbmatrix_<run>_<target>_<parts>``) and the per-run login
    that reaches it alone (see targets/sandbox.py; ``say`` hears what could not be guarded); dropped on exit."""
    space = create_space(target, scratch_name(run_id, target.name, *name_parts))
    try:
        if space.kind == "schema":
            raise UsageError(f"target {target.name}: cannot create a scratch database (no CREATE DATABASE "
                             "privilege); migrations need a database of their own")
        with sandboxed(space, say) as box:
            yield box
    finally:
        space.drop()  # done already when the sandbox dropped it first (a PostgreSQL role owns its database)


def results_of(walks: list[Walk]) -> list[CellResult]:
    """Every check's results as matrix cells (``migrate.<check>``, revision in ``params.revision``)."""
    cells = []
    for w in walks:
        cells += [_cell(w.target, w.tool, r) for r in judge(w)]
    by_tool: dict[str, list[Walk]] = {}
    for w in walks:
        by_tool.setdefault(w.tool, []).append(w)
    for tool, group in by_tool.items():
        for w, r in cross_engine(group):
            cells.append(_cell(w.target, tool, r))
    return cells


def _cell(target: str, tool: str, r: CheckResult) -> CellResult:
    params = {"revision": r.revision} if r.revision else {}
    return CellResult(case=r.case, target=target, driver=tool, outcome=r.outcome, params=params, detail=r.detail,
                      metrics={k: v for k, v in r.metrics.items() if v is not None}, findings=r.findings)


def run_migrate(source: MigrateSource, target_opts: list[str], require_opts: list[str], out: str | Path,
                opts_models: str | None, seed_rows: int, lock_budget_ms: float | None,
                progress: Callable[[str], None] = print, tool_log: bool = False) -> tuple[list[CellResult], Any]:
    """Validate everything first (exit 2 material), then migrate on each target; returns cells and the run."""
    if seed_rows < 0:
        raise UsageError("--seed-rows must be 0 or more")
    project = source.load()
    models = project.load_models(opts_models) if opts_models else None
    run = MatrixRun.from_options(target_opts, [], [], require_opts, out)
    waivers = load_waivers(Path.cwd(), project.revision_ids())
    named = {t.name for t in run.targets} if target_opts else set()
    opts = MigrateOptions(models=models, seed_rows=seed_rows, lock_budget_ms=lock_budget_ms, tool_log=tool_log)
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
        used: set[Waiver] = set()
        for cell in run.doc.results:
            cell.expected = "pass" if cell.case != "migrate.duration" else "measured"
            cell.verdict = "as-expected" if cell.outcome in ("pass", "measured", "skipped") else "deviation"
            hits = waived_by(waivers, cell.case.removeprefix("migrate."), cell.params.get("revision"), cell.target,
                             cell.outcome, cell.findings)
            if hits:
                waive(cell, hits)
                used.update(hits)
        for w in waivers:
            if w not in used:  # stale: the finding is gone (or never was); the config should say so no longer
                progress(f"waiver of migrate.{'/'.join(w.checks)}{f' [{w.revision}]' if w.revision else ''} "
                         f"matched no failing result ({w.reason})")
    finally:
        run.cleanup()
    return run.doc.results, run


def failed(cells: list[CellResult]) -> bool:
    """An error, or a failure no waiver accepts."""
    return any(c.outcome == ERROR or (c.outcome == FAIL and not is_waived(c)) for c in cells)
