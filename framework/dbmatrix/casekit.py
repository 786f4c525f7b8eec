"""What case modules import: markers that declare a case's id, requirements and default expectation."""

from __future__ import annotations

import pytest

from .results import SUPPORTED


def requires(*capabilities: str) -> pytest.MarkDecorator:
    """The case needs these capabilities. On a target whose profile lacks one, the body still runs (the engine
    decides, the profile only predicts): the expectation becomes ``unsupported`` with the engine's refusal code,
    and a ``DriverError`` escaping the body is recorded as ``unsupported``. See docs/writing-cases.md."""
    return pytest.mark.dbmatrix_requires(*capabilities)


def case_id(case: str) -> pytest.MarkDecorator:
    """Override the derived case id (``<family>.<case>`` from module and function names)."""
    return pytest.mark.dbmatrix_case(case)


def expect(outcome: str = SUPPORTED) -> pytest.MarkDecorator:
    """The outcome this case expects where no expectation file says otherwise (default ``supported``)."""
    return pytest.mark.dbmatrix_expect(outcome)



AXES = {("target", "driver"), ("target",), ("pair",), ("pair", "driver")}


def axes(*names: str, tool: str | None = None, kinds: tuple[str, ...] = (),
         drivers: tuple[str, ...] = ()) -> pytest.MarkDecorator:
    """What a case's cells range over.

    * ``@axes("target", "driver")`` (the default): one cell per target x driver of matching kind.
    * ``@axes("target")``: one cell per target, no driver axis; the case reaches the database through
      ``cell.url()`` (e.g. alembic's own engine). The result's ``driver`` is ``tool`` when given
      (``@axes("target", tool="alembic")`` -> ``"alembic"``), else ``"-"``.
    * ``@axes("pair")`` / ``@axes("pair", "driver")``: one cell per replica target and its primary
      (a target configured with ``replica_of``); ``cell.connect(role="replica")`` reads from the replica.
      The result's ``target`` is the replica's name. Replica targets get no other cells: they are read-only.

    ``kinds`` limits the cells to targets of those kinds (``kinds=("postgresql",)`` for a case about PostgreSQL
    poolers): other targets get no cell at all rather than a skipped one. ``drivers`` (id globs) are the drivers
    the case runs through by default (e.g. one raw driver per kind and one SQLAlchemy layer for a slow family);
    a run that names its drivers with ``--driver`` runs every named one.
    """
    key = tuple(names)
    if key not in AXES:
        raise ValueError(f"axes{key!r}: expected one of " + ", ".join(repr(a) for a in sorted(AXES)))
    if tool is not None and "driver" in key:
        raise ValueError("axes(..., tool=...) names the tool of a case without a driver axis")
    return pytest.mark.dbmatrix_axes(*key, tool=tool, kinds=tuple(kinds), drivers=tuple(drivers))
