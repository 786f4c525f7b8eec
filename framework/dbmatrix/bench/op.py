"""What a benchmark operation is, shared by the module that asks for operations (``ops``) and the modules that
build them (``ops_dbapi``, ``ops_sqlalchemy``, a plugin layer's own)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

DEFAULT, TUNED = "default", "tuned"
SELECTS = ("pk_select", "range_select", "json_select")


@dataclass
class Op:
    call: Callable[[], Any]  # one operation; for async drivers it returns an awaitable
    is_async: bool
    recover: Callable[[], Any] | None = None  # after a failed call (e.g. ROLLBACK); awaitable for async drivers
    extra: dict[str, Any] = field(default_factory=dict)
