"""pytest entry for a user's chain: ``pytest --dbm-alembic path/alembic.ini`` (or ``dbm_alembic`` in the ini file)
runs the migration checks as test cells on every target, the way pytest-alembic is used, but on every engine.

Thin on purpose: options here, the cases in ``user_chain_cases.py``, the work in the migrate package.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

WAIVERS = pytest.StashKey[list]()  # waivers.Waiver of [tool.dbmatrix.migrate], loaded at configure


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("dbmatrix-migrate", "dbmatrix: migration checks of your own alembic chain")
    g.addoption("--dbm-alembic", default=None, metavar="INI", help="run the migrate.* checks on this alembic.ini")
    g.addoption("--dbm-models", default=None, metavar="MODULE_OR_FILE:ATTR",
                help="MetaData or declarative Base for migrate.model_drift")
    g.addoption("--dbm-seed-rows", type=int, default=None, metavar="N", help="rows per table (default 1000)")
    g.addoption("--dbm-django", default=None, metavar="SETTINGS",
                help="run the migrate.* checks on this Django project's migrations (settings module or manage.py)")
    g.addoption("--dbm-django-app", action="append", default=[], metavar="LABEL",
                help="with --dbm-django: an app whose migrations are checked (repeatable; default: the project's)")
    parser.addini("dbm_django", "Django settings module whose migrations the migrate.* checks run on")
    parser.addini("dbm_alembic", "alembic.ini whose chain the migrate.* checks run on (relative to rootdir)")
    parser.addini("dbm_models", "MODULE_OR_FILE:ATTR for migrate.model_drift")


def alembic_ini(config: pytest.Config) -> Path | None:
    given = config.getoption("dbm_alembic")
    if given:
        return (config.invocation_params.dir / given).resolve()
    from_ini = config.getini("dbm_alembic")
    return (config.rootpath / from_ini).resolve() if from_ini else None


def django_settings(config: pytest.Config) -> str | None:
    return config.getoption("dbm_django") or config.getini("dbm_django") or None


def pytest_configure(config: pytest.Config) -> None:
    if django_settings(config):
        config.args.append(str(Path(__file__).with_name("user_django_cases.py")))
    ini = alembic_ini(config)
    if ini is None:
        return
    if not ini.is_file():
        raise pytest.UsageError(f"--dbm-alembic: alembic ini not found: {ini}")
    from ..errors import UsageError
    from .alembic_project import AlembicProject
    from .waivers import load_waivers

    try:  # the accepted findings, checked against the chain before anything runs
        config.stash[WAIVERS] = load_waivers(config.invocation_params.dir, AlembicProject(ini).revision_ids())
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None
    # the checks are a case module of ours: collect it (by path, so pytest imports it) beside the user's own tests
    config.args.append(str(Path(__file__).with_name("user_chain_cases.py")))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test that asks for ``dbm_alembic_runner`` runs once per target of the run (``--target``)."""
    if "dbm_alembic_runner" not in metafunc.fixturenames:
        return
    from ..plugin import RUN_KEY

    names = [c.target for c in metafunc.config.stash[RUN_KEY].columns(("target",))]
    metafunc.parametrize("dbm_alembic_runner", names, ids=names, indirect=True)


_data_tests = itertools.count(1)


@pytest.fixture
def dbm_alembic_runner(request: pytest.FixtureRequest) -> Iterator[Any]:
    """pytest-alembic's ``alembic_runner``, on one target: a fresh scratch database (dropped after the test) and the
    chain of ``--dbm-alembic``; see dbmatrix.migrate.data_tests.AlembicRunner."""
    from ..plugin import RUN_KEY
    from ..targets.model import OK
    from .alembic_project import AlembicProject
    from .command import scratch_database
    from .connections import sync_engine
    from .data_tests import AlembicRunner

    ini = alembic_ini(request.config)
    if ini is None:
        pytest.fail("dbm_alembic_runner needs the chain: --dbm-alembic PATH/alembic.ini (or dbm_alembic in the "
                    "ini file)", pytrace=False)
    run = request.config.stash[RUN_KEY]
    run.prepare(scratch=False)  # once per run: starts the embedded server, asks each target its version
    target = run.target(request.param)
    if target.status != OK:
        pytest.skip(f"target {target.name} {target.reason}")
    with scratch_database(target, run.doc.run_id, *run.place.name_parts, "mdata", str(next(_data_tests))) as box:
        engine = sync_engine(box.url)
        try:
            with engine.connect() as conn:
                yield AlembicRunner(AlembicProject(ini), engine.url, conn, target.name,
                                    tool_log=request.config.getoption("verbose") >= 2)
        finally:
            engine.dispose()
