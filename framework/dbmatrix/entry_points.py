"""Extensions installed as packages: the objects they register under a Python entry point group.

Drivers (``dbmatrix.drivers``), layers (``dbmatrix.layers``) and engines (``dbmatrix.engines``) are found this way,
the way pytest finds its plugins. A name that collides with a built-in one or is registered twice, and an entry
point that does not load, is a configuration error: ``UsageError``, one line, never a traceback.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Container
from typing import Any

from .errors import UsageError


def load_group(group: str, builtin: Container[str], what: str) -> dict[str, Any]:
    """``{name: loaded object}`` of the entry points in ``group`` (``what``: "driver", "layer", "engine")."""
    found: dict[str, Any] = {}
    owners: dict[str, str] = {}
    for ep in importlib.metadata.entry_points(group=group):
        dist = getattr(ep.dist, "name", None) or "?"
        if ep.name in builtin:
            raise UsageError(f"plugin {what} {ep.name!r} from {dist} collides with the built-in {what} of that name")
        if ep.name in owners:
            raise UsageError(f"plugin {what} {ep.name!r} is registered twice ({owners[ep.name]} and {dist})")
        owners[ep.name] = dist
        try:
            found[ep.name] = ep.load()
        except Exception as exc:  # noqa: BLE001 - any failure of a plugin's import is the plugin's, said in one line
            detail = str(exc).strip().splitlines()
            raise UsageError(f"plugin {what} {ep.name!r} ({ep.value}, from {dist}) cannot be loaded: "
                             f"{type(exc).__name__}{': ' + detail[0] if detail else ''}") from None
    return found


def checked_class(name: str, obj: Any, base: type, attr: str, what: str) -> Any:
    """``obj`` when it is a subclass of ``base`` whose ``attr`` (if set) is ``name``; else UsageError."""
    if not (isinstance(obj, type) and issubclass(obj, base)) or "+" in name or getattr(obj, attr, name) != name:
        raise UsageError(f"plugin {what} {name!r} is not a {base.__name__} subclass with {attr} {name!r} "
                         f"(got {getattr(obj, '__name__', obj)!r})")
    return obj
