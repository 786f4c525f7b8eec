"""The ``cell`` a case works in: one case on one target with one driver.

A case opens sessions with ``cell.connect()`` and ends by recording exactly one outcome
(``cell.supported()``, ``cell.differs(...)``, ``cell.unsupported(...)``, or ``cell.record(...)``).
"""

from __future__ import annotations

import time
import zlib
from typing import Any

from .drivers.base import DriverAdapter, Session
from .engines import IsolationUnsupported, engine_for
from .engines.observer import LockObserver
from .errors import DriverError
from .results import DIFFERS, ERROR, SUPPORTED, UNSUPPORTED, WALL_MS, CellResult
from .targets.model import Target


class Cell:
    def __init__(self, case: str, target: Target, driver: DriverAdapter, params: dict[str, Any] | None = None):
        self.case = case
        self.target = target
        self.driver = driver
        self.params = dict(params or {})
        self.result: CellResult | None = None
        self.sessions: list[Session] = []
        self._observer: LockObserver | None = None
        self._started = time.perf_counter()

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
        key = f"{self.case}|{self.target.name}|{self.driver.id}|{sorted(self.params.items())}"
        return f"{base}_{zlib.crc32(key.encode()):08x}"

    def connect(self) -> Session:
        """A new session on the target's scratch space, closed automatically when the cell ends."""
        session = self.driver.connect(self.target.connect_info())
        self.sessions.append(session)
        return session

    def observer(self) -> LockObserver:
        """The target's lock observer (an admin connection of its own, not the driver under test): ``is_blocked``,
        ``waits_for``, ``wait_until_blocked`` for this cell's sessions. Closed when the cell ends."""
        if self._observer is None:
            self._observer = engine_for(self.kind, self.engine).observer(self.target.url)
        return self._observer

    # --- outcomes ----------------------------------------------------------------------------------------
    def record(self, outcome: str, detail: str | None = None, *, mechanism: str | None = None,
               metrics: dict[str, float] | None = None) -> CellResult:
        if self.result is not None:
            raise RuntimeError(f"{self.case}: an outcome was already recorded ({self.result.outcome})")
        all_metrics = {WALL_MS: round((time.perf_counter() - self._started) * 1000.0, 3)}
        steps = [ms for s in self.sessions for ms in s.step_ms]
        if steps:
            all_metrics.update(steps=len(steps), step_ms_max=round(max(steps), 3))
        all_metrics.update(metrics or {})
        self.result = CellResult(
            case=self.case, target=self.target.name, driver=self.driver.id, outcome=outcome, params=self.params,
            mechanism=mechanism, detail=detail, metrics=all_metrics,
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
        if isinstance(exc, IsolationUnsupported):  # the engine lacks the level: a finding, not a harness error
            return self.unsupported(exc)
        return self.record(ERROR, describe_error(exc))

    def close(self) -> None:
        for s in self.sessions:
            s.close()
        if self._observer is not None:
            self._observer.close()


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
