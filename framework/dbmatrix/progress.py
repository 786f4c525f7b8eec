"""A rich progress bar for ``dbmatrix run`` (a pytest plugin object passed by the CLI)."""

from __future__ import annotations

from typing import Any

import pytest
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class ProgressPlugin:
    def __init__(self) -> None:
        self.console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("{task.fields[current]}"), console=self.console, transient=True,
        )
        self.task: Any = None

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if not session.items:
            return  # nothing to show; a stopped empty bar would still print a blank line
        self.progress.start()
        self.task = self.progress.add_task("cases", total=len(session.items), current="")

    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        if self.task is not None:
            self.progress.update(self.task, current=nodeid.split("::")[-1])

    def pytest_runtest_logfinish(self, nodeid: str, location: Any) -> None:
        if self.task is not None:
            self.progress.advance(self.task)

    def message(self, text: str) -> None:
        # stdout, so that stderr carries nothing but errors
        Console().print(f"dbmatrix: {text}", highlight=False)

    def pytest_internalerror(self, excrepr: Any) -> None:
        self.close()
        self.console.print(f"dbmatrix: internal error: {str(excrepr).splitlines()[-1]}")

    def close(self) -> None:
        if self.task is not None:
            self.progress.stop()
            self.task = None
