"""What the user names explicitly runs or fails: checks on named drivers, made before anything starts."""

from __future__ import annotations

from collections.abc import Callable

from ..drivers.base import DriverAdapter
from ..errors import UsageError
from .model import Target


def check_named_drivers(driver_ids: list[str], adapter: Callable[[str], DriverAdapter], targets: list[Target]) -> None:
    """Each ``--driver`` must be installed and drive at least one selected target; else UsageError (exit 2)."""
    for d in driver_ids:
        a = adapter(d)
        why = a.unavailable_reason()
        if why:
            raise UsageError(f"--driver {d}: {why}")
        if not any(a.supports(t.kind) for t in targets):
            kinds = ", ".join(sorted(a.kinds))
            selected = ", ".join(f"{t.name} ({t.kind})" for t in targets) or "none"
            raise UsageError(f"--driver {d} drives {kinds} targets; none is selected (targets: {selected})")
