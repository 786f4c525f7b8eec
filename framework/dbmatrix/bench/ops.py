"""One benchmark operation per (driver, workload, variant): the driver's own calls, ready to loop.

An ``Op`` is built once per connection, outside the timed window, from an open adapter ``Session``: statements are
translated, parameters prepared and cycled, so a call does nothing but the driver's (or layer's) work. For async
drivers ``call()`` returns an awaitable, and the whole timed loop runs as one coroutine on the session's own event
loop (one hop per repeat, not per call).

Each variant names its knobs; ``variants(driver_id, workload)`` lists them without connecting, so the runner
knows the cells up front. ``default`` is what a user gets without tuning; ``tuned`` exists only where the layer
has a knob that matters for that workload (the "how to avoid the trap" column).

Which module builds the operations is the adapter's to say (``bench_module``: ``ops_dbapi`` for a DBAPI driver,
``ops_sqlalchemy`` for the SQLAlchemy layers, a plugin layer's own); that module offers
``variants(adapter, workload)`` and ``build_op(session, workload, variant, rows, seed)``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ..drivers import get_adapter
from ..drivers.base import DriverAdapter, Session
from .op import DEFAULT, SELECTS, TUNED, Op

__all__ = ["DEFAULT", "SELECTS", "TUNED", "Op", "build_op", "variants"]


def builder(adapter: DriverAdapter) -> ModuleType:
    """The module that builds ``adapter``'s bench operations (imported on first use: the ORM's only when asked)."""
    return importlib.import_module(adapter.bench_module)


def variants(driver_id: str, workload: str) -> dict[str, dict[str, str]]:
    """``{variant: knobs}`` for ``driver_id`` on ``workload``: always ``default``, ``tuned`` where a knob exists."""
    adapter = get_adapter(driver_id)
    return builder(adapter).variants(adapter, workload)


def build_op(session: Session, driver_id: str, workload: str, variant: str, rows: int, seed: int) -> Op:
    """The operation for one connection; ``seed`` differs per worker so workers touch different rows."""
    return builder(session.adapter).build_op(session, workload, variant, rows, seed)
