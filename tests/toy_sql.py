"""The few statements a compiled transaction program runs (programs.op_steps), interpreted over a dict, for toy
engines in tests: what a statement reads from ``view`` and what it writes through ``write``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

GONE = object()  # written for a deleted key


def interpret(sql: str, view: dict[int, Any], write: Callable[[int, Any], None]) -> tuple[list[tuple], str | None]:
    """(rows, error code) of one rendered program statement against ``view``; writes go to ``write``."""
    words = sql.split()
    if sql.startswith("select v"):
        k = int(words[-1])
        return ([(view[k],)] if k in view else []), None
    if sql.startswith("select k"):
        return sorted((k, v) for k, v in view.items() if v is not None and v >= int(words[-4])), None
    if sql.startswith("update"):
        k = int(words[-1])
        if k in view:
            write(k, None if words[5] == "NULL" else int(words[5]) + int(words[7]))
    elif sql.startswith("insert"):
        k = int(words[-2].strip("(,"))
        if k in view:
            return [], "23505"
        write(k, int(words[-1].strip(")")))
    elif sql.startswith("delete"):
        write(int(words[-1]), GONE)
    return [], None


def store(state: dict[int, Any], k: int, v: Any) -> None:
    """Write ``v`` at ``k`` in ``state`` (``GONE``: delete it)."""
    if v is GONE:
        state.pop(k, None)
    else:
        state[k] = v
