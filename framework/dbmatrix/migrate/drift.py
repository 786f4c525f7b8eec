"""``migrate.model_drift``'s material: the user's models (``--models``) loaded, and alembic's autogenerate
comparison of them with the head schema the walk reached (for alembic and yoyo chains alike)."""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
import warnings
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from ..errors import UsageError
from .catalog import TOOL_TABLES


def load_models(spec: str) -> Any:
    """``package.module:ATTR`` or ``path/to/file.py:ATTR`` -> a MetaData (a declarative Base gives its .metadata)."""
    target, sep, attr = spec.rpartition(":")
    if not sep or not target or not attr:
        raise UsageError(f"--models {spec!r}: expected MODULE:ATTR or path/to/file.py:ATTR")
    try:
        if target.endswith(".py") or "/" in target:
            path = Path(target)
            path = path if path.is_absolute() else Path.cwd() / path
            if not path.is_file():
                raise UsageError(f"--models: file not found: {target}")
            name = "dbmatrix_models_" + re.sub(r"\W", "_", path.stem)
            mod_spec = importlib.util.spec_from_file_location(name, path)
            assert mod_spec is not None and mod_spec.loader is not None
            module = importlib.util.module_from_spec(mod_spec)
            sys.modules[name] = module
            mod_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(target)
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's module failed to import: one line
        raise UsageError(f"--models {spec!r}: cannot import {target}: {type(exc).__name__}: {exc}") from None
    obj = getattr(module, attr, None)
    metadata = getattr(obj, "metadata", obj)
    if not isinstance(metadata, sa.MetaData):
        raise UsageError(f"--models {spec!r}: {attr} is not a SQLAlchemy MetaData or declarative Base")
    return metadata


def model_drift(conn: Connection, metadata: Any) -> list[str] | str:
    """alembic's autogenerate comparison of ``metadata`` with the live head schema, one line per difference."""
    try:
        mc = MigrationContext.configure(conn, opts={
            "compare_type": True,
            "include_name": lambda name, type_, parent: not (type_ == "table" and name in TOOL_TABLES)})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", sa.exc.SAWarning)  # expression indexes it cannot reflect
            diffs = compare_metadata(mc, metadata)
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {exc}"
    finally:
        if conn.in_transaction():
            conn.rollback()
    return [_drift_line(d) for d in diffs]


def _drift_line(diff: Any) -> str:
    if isinstance(diff, list):  # modify_* entries come grouped per column
        return "; ".join(_drift_line(d) for d in diff)
    op, *args = diff
    names = []
    for a in args:
        if isinstance(a, dict):
            continue  # the existing column's keywords
        name = getattr(a, "name", None)
        table = getattr(getattr(a, "table", None), "name", None)
        if name is not None:
            names.append(f"{table}.{name}" if table and table != name else str(name))
        elif isinstance(a, str | int | bool) or a is None:
            names.append(str(a))
        else:
            names.append(type(a).__name__ if not hasattr(a, "compile") else str(a))
    return f"{op} " + " ".join(n for n in names if n and n != "None")
