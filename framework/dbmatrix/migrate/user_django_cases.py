"""migrate.*: the checks on the Django project named by ``--dbm-django`` (collected by pytest_plugin)."""

from __future__ import annotations

from typing import Any

import pytest

from .django_project import DjangoProject
from .matrix_cases import define_cases, walked
from .pytest_plugin import django_settings
from .user_chain_cases import DEFAULT_SEED_ROWS
from .walk import Walk


def _project(config: pytest.Config) -> DjangoProject:
    return DjangoProject(str(django_settings(config)), config.getoption("dbm_django_app") or None,
                         [config.invocation_params.dir])


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "revision" not in metafunc.fixturenames:
        return
    try:
        revisions = _project(metafunc.config).step_ids()
    except Exception:  # noqa: BLE001 - a project that cannot load: every chain cell says why
        revisions = []
    metafunc.parametrize("revision", revisions)


def user_walk(cell: Any, config: pytest.Config) -> Walk:
    rows = config.getoption("dbm_seed_rows")
    return walked(cell, "user-django", lambda c: _project(config), None, DEFAULT_SEED_ROWS if rows is None else rows)


define_cases(globals(), "django", user_walk, None)
