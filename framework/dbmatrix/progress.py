"""Progress of ``dbmatrix run`` (a pytest plugin object passed by the CLI).

On a terminal: a rich bar naming the cell being run (case id, target/driver). Without a terminal (CI logs,
``| tee``): one line every ``interval`` seconds, so a long run is never minutes of silence.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

import pytest
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

LINE_INTERVAL_S = 10.0


def line_interval() -> float:
    """Seconds between progress lines without a terminal (``DBMATRIX_PROGRESS_INTERVAL`` overrides)."""
    try:
        return max(0.0, float(os.environ.get("DBMATRIX_PROGRESS_INTERVAL", LINE_INTERVAL_S)))
    except ValueError:
        return LINE_INTERVAL_S


def cell_name(item: pytest.Item) -> str:
    """``sql.upsert_update postgres/asyncpg`` for a cell item, else the test's own name."""
    from .plugin import case_of

    spec = getattr(getattr(item, "callspec", None), "params", {}).get("cell")
    if spec is None:
        return item.name
    return f"{case_of(item)} {spec.target}/{spec.driver or '-'}"


class ProgressPlugin:
    def __init__(self, interactive: bool | None = None, interval: float | None = None) -> None:
        self.console = Console(stderr=True)
        self.interactive = sys.stderr.isatty() if interactive is None else interactive
        self.interval = line_interval() if interval is None else interval
        self.progress = Progress(
            TextColumn("[bold]cells"), BarColumn(bar_width=30), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("{task.fields[current]}", markup=False), console=self.console, transient=True,
        )
        self.task: Any = None
        self.total = 0
        self.done = 0
        self.current = ""
        self.started = 0.0
        self.cell_started = 0.0
        self.running = False
        self.last_line = 0.0
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        # pytest captures fd 2 while a cell runs; lines written from the ticker thread must reach the real stderr,
        # so keep a duplicate of it taken before pytest starts capturing.
        try:
            self._err: Any = os.fdopen(os.dup(sys.stderr.fileno()), "w", buffering=1, encoding="utf-8",
                                       errors="replace")
        except (OSError, ValueError, AttributeError):  # stderr is not a file (embedded use): write to it as is
            self._err = sys.stderr

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if not session.items:
            return  # nothing to show; a stopped empty bar would still print a blank line
        self.total = len(session.items)
        self.started = self.last_line = time.monotonic()
        if self.interactive:
            self.progress.start()
            self.task = self.progress.add_task("cells", total=self.total, current="")
        else:
            self._line(f"running {self.total} cells")
            if self.interval > 0:
                # A thread, so that one slow cell still gives a line every interval instead of silence.
                self._ticker = threading.Thread(target=self._tick, name="dbmatrix-progress", daemon=True)
                self._ticker.start()

    def _tick(self) -> None:
        while not self._stop.wait(self.interval):
            if time.monotonic() - self.last_line >= self.interval:
                self._line(self.status())

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> None:
        self.current = cell_name(item)
        self.cell_started = time.monotonic()
        self.running = True
        if self.task is not None:
            self.progress.update(self.task, current=self.current)

    def pytest_runtest_logfinish(self, nodeid: str, location: Any) -> None:
        self.done += 1
        self.running = False
        if self.task is not None:
            self.progress.advance(self.task)
        elif self.total and self._ticker is None and time.monotonic() - self.last_line >= self.interval:
            self._line(self.status())

    def status(self) -> str:
        pct = 100 * self.done // self.total if self.total else 100
        elapsed = int(time.monotonic() - self.started)
        now = time.monotonic()
        text = f"{self.done}/{self.total} cells ({pct}%) after {elapsed} s; "
        if not self.running:
            return text + f"last: {self.current}"
        running_for = int(now - self.cell_started)
        return text + f"now: {self.current}" + (f" (running for {running_for} s)" if running_for >= 2 else "")

    def _line(self, text: str) -> None:
        self.last_line = time.monotonic()
        self._err.write(f"dbmatrix: {text}\n")
        self._err.flush()

    def message(self, text: str) -> None:
        # stdout, so that stderr carries nothing but errors and progress
        print(f"dbmatrix: {text}", flush=True)

    def pytest_internalerror(self, excrepr: Any) -> None:
        self.close()
        self.console.print(f"dbmatrix: internal error: {str(excrepr).splitlines()[-1]}", markup=False)

    def close(self) -> None:
        self._stop.set()
        if self.task is not None:
            self.progress.stop()
            self.task = None
        elif self.total and self.done < self.total and not self.interactive:
            self._line(f"stopped at {self.status()}")
        if self._ticker is not None:
            self._ticker.join(timeout=2)
            self._ticker = None
