"""The ``cell`` a case works in: one case on one target with one driver (see ``casekit.axes`` for the others:
one target with no driver, or a primary and its replica).

A case opens sessions with ``cell.connect()`` (or reaches the database through ``cell.url()``) and ends by
recording exactly one outcome (``cell.supported()``, ``cell.differs(...)``, ``cell.unsupported(...)``, or
``cell.record(...)``). ``cell.scratch_database()`` gives the cell a database of its own, dropped after it.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL

from .drivers.base import ConnectInfo, DriverAdapter, Session
from .engines import CapabilityMissing, IsolationUnsupported, engine_for
from .engines.observer import LockObserver
from .errors import DriverError
from .results import DIFFERS, ERROR, NO_DRIVER, SUPPORTED, UNSUPPORTED, WALL_MS, CellResult
from .targets.admin import admin_drivername
from .targets.model import Target
from .targets.scratch import ScratchSpace, create_space, replica_url, scratch_name, wait_for_replay

PRIMARY, REPLICA = "primary", "replica"


@dataclass
class CellPlace:
    """Where a cell runs: the run's id and output folder, its scratch spaces, and the process's name parts."""

    run_id: str
    run_dir: Path
    spaces: dict[str, ScratchSpace] = field(default_factory=dict)  # target name -> the run's scratch space
    name_parts: tuple[str, ...] = ()  # e.g. the pytest-xdist worker id, so scratch names never collide
    cell_spaces: list[ScratchSpace] = field(default_factory=list)  # per-cell spaces not yet dropped


class Cell:
    def __init__(self, case: str, target: Target, driver: DriverAdapter | None, params: dict[str, Any] | None = None,
                 *, place: CellPlace | None = None, tool: str | None = None, replica: Target | None = None):
        self.case = case
        self.target = target  # where writes go (the primary of a pair)
        self.driver = driver  # None for a case with no driver axis
        self.replica = replica  # the replica of a pair cell
        self.tool = tool
        self.params = dict(params or {})
        self.place = place
        self.result: CellResult | None = None
        self.sessions: list[Session] = []
        self.scratch: ScratchSpace | None = None  # this cell's own database, once asked for
        self._identity = f"{case}|{self.target_name}|{self.driver_id}|{sorted(self.params.items())}"
        self._artifacts: list[Path] = []
        self._observer: LockObserver | None = None
        self._started = time.perf_counter()

    @property
    def driver_id(self) -> str:
        """The result's ``driver``: the adapter id, else the tool a driverless case declared, else ``-``."""
        return self.driver.id if self.driver is not None else (self.tool or NO_DRIVER)

    @property
    def target_name(self) -> str:
        """The result's ``target``: the replica's name for a pair cell."""
        return (self.replica or self.target).name

    @property
    def kind(self) -> str:
        return self.target.kind

    @property
    def engine(self) -> str:
        return self.target.engine

    def has(self, capability: str) -> bool:
        return self.target.missing(capability) is None

    def table(self, base: str) -> str:
        """A table name unique to this cell, so cells never share state even when run in parallel."""
        return f"{base}_{self._hash()}"

    def _hash(self) -> str:
        return f"{zlib.crc32(self._identity.encode()):08x}"

    # --- where the cell's data lives ---------------------------------------------------------------------
    def _role_target(self, role: str) -> Target:
        if role == PRIMARY:
            return self.target
        if role == REPLICA and self.replica is not None:
            return self.replica
        raise ValueError(f"role {role!r}: this cell has " + ("a primary and a replica" if self.replica else
                                                               "only a primary (declare @axes('pair'))"))

    def _connect_info(self, role: str) -> ConnectInfo:
        target = self._role_target(role)
        if self.scratch is None:
            return target.connect_info()  # a replica's points at its primary's run scratch (see MatrixRun)
        url = self.scratch.url if role == PRIMARY else replica_url(self.scratch, target)
        # a schema is selected by init_sql for our adapters (the URL's libpq options are for cell.url() users)
        url = url.difference_update_query(["options"]) if self.scratch.kind == "schema" else url
        # everything else (engine, pooler, ...) as for the target's own scratch space
        return dataclasses.replace(target.connect_info(), url=url, init_sql=self.scratch.init_sql)

    def url(self, role: str = PRIMARY, drivername: str | None = None) -> URL:
        """SQLAlchemy URL of this cell's scratch space (its own database once ``scratch_database()`` ran).

        The password is kept so the URL connects, but SQLAlchemy prints URLs with ``***``. ``drivername``
        defaults to the installed synchronous DBAPI dbmatrix administers the target with.
        """
        target = self._role_target(role)
        space = self.scratch or (self.place.spaces.get(self.target.name) if self.place else None)
        if space is None:
            url = target.connect_info().url
        else:
            url = space.url if role == PRIMARY else replica_url(space, target)
        return url.set(drivername=drivername or admin_drivername(target.kind))

    def connect(self, options: dict[str, Any] | None = None, role: str = PRIMARY) -> Session:
        """A new session on the cell's scratch space, closed automatically when the cell ends.

        ``options`` go to the driver's own connect call (e.g. asyncpg ``statement_cache_size=0``) and are
        recorded in the result's ``params["options"]``; ``role="replica"`` reads from a pair cell's replica.
        """
        if self.driver is None:
            raise RuntimeError(f"{self.case} has no driver axis: reach the database through cell.url()")
        if options:
            recorded = dict(self.params.get("options") or {})
            recorded.update({k: _jsonable(v) for k, v in options.items()})
            self.params["options"] = recorded
        session = self.driver.connect(self._connect_info(role), options=options)
        self.sessions.append(session)
        return session

    def scratch_database(self) -> URL:
        """Create a database for this cell only (a schema where the server refuses CREATE DATABASE).

        Dropped when the cell ends, also when it fails. A pair cell creates it on the primary and returns
        once the replica has replayed the creation (bounded wait). Returns ``cell.url()``.
        """
        if self.scratch is None:
            if self.place is None:
                raise RuntimeError("this cell has no run to create scratch space in")
            name = scratch_name(self.place.run_id, self.target.name, *self.place.name_parts, f"c{self._hash()}")
            self.scratch = create_space(self.target, name)
            self.place.cell_spaces.append(self.scratch)  # the run drops it should this cell not get to
            if self.replica is not None:
                wait_for_replay(self.scratch, self.replica)
        return self.url()

    # --- artifacts ---------------------------------------------------------------------------------------
    def artifact_path(self, name: str) -> Path:
        """A path inside the run's folder for a file this cell produces (its folder is created).

        Files written there are listed in the result's ``artifacts`` (relative to the run folder).
        """
        if self.place is None:
            raise RuntimeError("this cell has no run folder")
        rel = Path(name)
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            raise ValueError(f"artifact name must be a relative path inside the cell's folder, got {name!r}")
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{self.case}-{self.target_name}-{self.driver_id}")
        path = self.place.run_dir / "artifacts" / f"{slug}-{self._hash()}" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        self._artifacts.append(path)
        return path

    def _relative_artifacts(self, given: list[str | Path]) -> list[str]:
        out: list[str] = []
        for p in [*given, *(a for a in self._artifacts if a.exists())]:
            path = Path(p)
            if ".." in path.parts:
                raise ValueError(f"artifact {p} is not inside the run folder")
            if path.is_absolute():
                if self.place is None:
                    raise ValueError(f"artifact {p} is not inside the run folder")
                try:
                    path = path.relative_to(self.place.run_dir)
                except ValueError:
                    raise ValueError(f"artifact {p} is not inside the run folder {self.place.run_dir}") from None
            text = path.as_posix()
            if text not in out:
                out.append(text)
        return out

    def observer(self) -> LockObserver:
        """The target's lock observer (an admin connection of its own, not the driver under test): ``is_blocked``,
        ``waits_for``, ``wait_until_blocked`` for this cell's sessions. Closed when the cell ends."""
        if self._observer is None:
            self._observer = engine_for(self.kind, self.engine).observer(self.target.url)
        return self._observer

    # --- outcomes ----------------------------------------------------------------------------------------
    def record(self, outcome: str, detail: str | None = None, *, mechanism: str | None = None,
               metrics: dict[str, Any] | None = None, findings: list[dict[str, Any]] | None = None,
               artifacts: list[str | Path] | None = None) -> CellResult:
        """Record the cell's one outcome. ``metrics`` may hold numbers, lists or small dicts; ``findings`` are
        structured observations (JSON-able dicts); ``artifacts`` paths inside the run folder."""
        if self.result is not None:
            raise RuntimeError(f"{self.case}: an outcome was already recorded ({self.result.outcome})")
        all_metrics: dict[str, Any] = {WALL_MS: round((time.perf_counter() - self._started) * 1000.0, 3)}
        steps = [ms for s in self.sessions for ms in s.step_ms]
        if steps:
            all_metrics.update(steps=len(steps), step_ms_max=round(max(steps), 3))
        all_metrics.update({k: _jsonable(v) for k, v in (metrics or {}).items()})
        for f in findings or []:
            if not isinstance(f, dict):
                raise TypeError(f"a finding is a dict, got {type(f).__name__}")
        self.result = CellResult(
            case=self.case, target=self.target_name, driver=self.driver_id, outcome=outcome, params=self.params,
            mechanism=mechanism, detail=detail, metrics=all_metrics,
            findings=[{k: _jsonable(v) for k, v in f.items()} for f in findings or []],
            artifacts=self._relative_artifacts(list(artifacts or [])),
        )
        return self.result

    def supported(self, detail: str | None = None, **kw: Any) -> CellResult:
        return self.record(SUPPORTED, detail, **kw)

    def differs(self, detail: str, **kw: Any) -> CellResult:
        return self.record(DIFFERS, detail, **kw)

    def unsupported(self, why: str | DriverError, **kw: Any) -> CellResult:
        """Record ``unsupported``; given a DriverError, the engine's own class, code and message are kept."""
        if isinstance(why, DriverError):
            kw.setdefault("mechanism", f"error:{why.code}" if why.code else f"error:{why.cls}")
            why = describe_error(why)
        return self.record(UNSUPPORTED, why, **kw)

    def error(self, exc: BaseException) -> CellResult:
        # the engine lacks the level, or what the case needs at this version: a finding, not a harness error
        if isinstance(exc, IsolationUnsupported | CapabilityMissing):
            return self.unsupported(exc)
        return self.record(ERROR, describe_error(exc))

    def close(self) -> None:
        """Close every session and the observer, then drop the cell's own scratch space (the run retries if
        this fails)."""
        try:
            for s in self.sessions:
                s.close()
            if self._observer is not None:
                self._observer.close()
        finally:
            space, self.scratch = self.scratch, None
            if space is not None:
                space.drop()
                if self.place is not None and space in self.place.cell_spaces:
                    self.place.cell_spaces.remove(space)


def _jsonable(value: Any) -> Any:
    """``value`` if JSON can hold it as is, else its ``str`` (results stay plain data that merges and diffs)."""
    try:
        json.dumps(value, allow_nan=False)
        return value
    except (TypeError, ValueError):
        return str(value)


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, DriverError):
        return f"{exc.cls} [{exc.code}]: {exc.message}" if exc.code else f"{exc.cls}: {exc.message}"
    return f"{type(exc).__name__}: {exc}"


def show(value: Any) -> str:
    """A value and its exact Python type, as a cell detail: ``Decimal('1.50') (decimal.Decimal)``."""
    t = type(value)
    name = t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"
    # memoryview's repr is an address: show its bytes so details are stable across runs
    text = f"memoryview({bytes(value)!r})" if isinstance(value, memoryview) else repr(value)
    if len(text) > 160:
        text = text[:157] + "..."
    return f"{text} ({name})"
