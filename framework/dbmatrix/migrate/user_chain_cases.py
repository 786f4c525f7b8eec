"""migrate.*: the checks on the user's alembic chain named by ``--dbm-alembic`` (collected by pytest_plugin)."""

from __future__ import annotations

from typing import Any

import pytest

from .alembic_project import AlembicProject
from .matrix_cases import define_cases, walked
from .pytest_plugin import WAIVERS, alembic_ini
from .walk import Walk

DEFAULT_SEED_ROWS = 1000


def _settings(config: pytest.Config) -> tuple[Any, str | None, int]:
    models = config.getoption("dbm_models") or config.getini("dbm_models") or None
    rows = config.getoption("dbm_seed_rows")
    return alembic_ini(config), models, DEFAULT_SEED_ROWS if rows is None else rows


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "revision" not in metafunc.fixturenames:
        return
    ini, _, _ = _settings(metafunc.config)
    # a broken chain: no revision cells; migrate.single_head names the problem
    metafunc.parametrize("revision", AlembicProject(ini).revision_ids() or [])


def user_walk(cell: Any, config: pytest.Config) -> Walk:
    ini, models, rows = _settings(config)
    # the tools' INFO lines would land in the first failure's captured output: -vv shows them
    return walked(cell, "user-alembic", lambda c: AlembicProject(ini), models, rows,
                  tool_log=config.getoption("verbose") >= 2)


define_cases(globals(), "alembic", user_walk, None, waivers_of=lambda config: config.stash[WAIVERS])
