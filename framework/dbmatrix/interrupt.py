"""Stopping a run on SIGINT / SIGTERM: quickly, cleanly, with partial results marked incomplete.

The first signal raises KeyboardInterrupt in the main thread (also for SIGTERM, which would otherwise skip every
``finally``), so whatever the run is waiting on unwinds; pytest then stops, the plugin writes the cells recorded
so far with ``complete: false`` and the run drops its scratch space and stops its servers. A second signal means
"hurry": cleanup takes its fastest path (an immediate server stop). Cleanup itself runs ``shielded``: a signal
that arrives then is remembered but does not cut a directory removal in half.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

HANDLED = (signal.SIGINT, signal.SIGTERM)


class _State:
    def __init__(self) -> None:
        self.signum: int | None = None
        self.count = 0
        self.shield_depth = 0
        self.previous: dict[int, Any] = {}
        self.written: str | None = None  # what the verb wrote before it stopped (results.json, a shard)
        self.left: list[str] = []  # scratch spaces cleanup could not remove ("NAME on TARGET")


_state = _State()


def requested() -> bool:
    """True once a stop was asked for (the run must not start anything new)."""
    return _state.count > 0


def hurry() -> bool:
    """True after a second signal: take the fastest way out."""
    return _state.count > 1


def signal_name() -> str:
    return signal.Signals(_state.signum).name if _state.signum else "interrupt"


def exit_code() -> int:
    """The shell convention: 128 + signal number (130 for SIGINT, 143 for SIGTERM)."""
    return 128 + (_state.signum or signal.SIGINT)


def _say(text: str) -> None:
    try:
        os.write(sys.stderr.fileno(), f"dbmatrix: {text}\n".encode())
    except (OSError, ValueError):  # stderr closed or replaced by a capture object
        pass


def _handler(signum: int, frame: FrameType | None) -> None:
    _state.count += 1
    if _state.signum is None:
        _state.signum = signum
    name = signal.Signals(signum).name
    if _state.count == 1:
        _say(f"{name}: stopping; cleaning up scratch space and writing partial results (again to stop at once)")
    else:
        _say(f"{name} again: stopping at once")
    if _state.shield_depth:
        return  # cleanup in progress: it finishes (bounded), faster now that hurry() is true
    raise KeyboardInterrupt(name)


def install() -> Callable[[], None]:
    """Route SIGINT and SIGTERM through the handler; returns a function that restores the previous handlers.

    Only the main thread may install signal handlers; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    installed: dict[int, Any] = {}
    for sig in HANDLED:
        current = signal.getsignal(sig)
        if current is _handler:
            continue
        installed[sig] = current
        signal.signal(sig, _handler)

    def restore() -> None:
        for sig, previous in installed.items():
            if signal.getsignal(sig) is _handler:
                signal.signal(sig, previous if previous is not None else signal.SIG_DFL)

    return restore


def reset() -> None:
    """Forget a previous stop request (a new run in the same process, e.g. tests)."""
    _state.signum, _state.count, _state.written, _state.left = None, 0, None, []


def record_written(path: object) -> None:
    """Every verb reports what it wrote here, so the last line after a stop says it truly."""
    _state.written = str(path)


def record_left(what: str) -> None:
    """A scratch space (or server) cleanup could not remove: said after a stop, with how to remove it."""
    _state.left.append(what)


def summary() -> str:
    """The true end of a stopped verb: what was cleaned up or left, and what was written."""
    if _state.left:
        cleaned = (f"scratch left behind: {', '.join(_state.left)} (the server did not answer); `dbmatrix clean` "
                   "removes it once this process has exited")
    else:
        cleaned = "scratch cleaned up"
    wrote = f"partial results (incomplete) in {_state.written}" if _state.written else "no results written"
    return f"{cleaned}; {wrote}"


@contextmanager
def shielded() -> Iterator[None]:
    """Signals received inside are remembered (``requested``/``hurry``) but do not interrupt this block."""
    _state.shield_depth += 1
    try:
        yield
    finally:
        _state.shield_depth -= 1


class StopBetweenCells:
    """pytest plugin: once a stop is requested, no further cell starts (even if a case swallowed the interrupt)."""

    name = "dbmatrix-stop-between-cells"

    def __init__(self) -> None:
        self.session: Any = None

    def pytest_sessionstart(self, session: Any) -> None:
        self.session = session

    def pytest_runtest_logfinish(self, nodeid: str, location: Any) -> None:
        if requested() and self.session is not None:
            self.session.shouldstop = f"interrupted by {signal_name()}"
