"""The pytest plugin: options, target x driver parametrization, the ``cell`` fixture, results at the end.

Thin on purpose (see STYLE.md): the run's state lives in ``MatrixRun`` (matrix.py) kept in ``config.stash``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .cell import Cell
from .errors import DriverError, UsageError
from .expectations import Expectations, verdict
from .matrix import MatrixRun
from .results import DEVIATION, ERROR, SKIPPED, SUPPORTED, UNSUPPORTED
from .targets.capabilities import profile_entry, refusal_errors
from .targets.model import OK

RUN_KEY = pytest.StashKey[MatrixRun]()
CELL_KEY = pytest.StashKey[Cell]()
MISSING_KEY = pytest.StashKey[list[tuple[str, str]]]()  # (capability, why) the target's profile lacks


@dataclass(frozen=True)
class CellSpec:
    target: str
    driver: str


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("dbmatrix", "dbmatrix: run case modules over targets x drivers")
    g.addoption("--target", action="append", default=[], metavar="NAME[=URL]",
                help="target to run on (repeatable); default: sqlite, postgres-embedded and configured targets")
    g.addoption("--driver", action="append", default=[], metavar="ID[,ID]", help="driver ids (default: all)")
    g.addoption("--case", action="append", default=[], dest="dbm_case", metavar="GLOB",
                help="only cases whose id matches (repeatable), e.g. 'types.*'")
    g.addoption("--require", action="append", default=[], metavar="NAME[,NAME]",
                help="fail (exit 2) when one of these targets does not answer")
    g.addoption("--dbm-out", default="dbmatrix-out", metavar="DIR", help="where results.json and reports go")
    g.addoption("--dbm-quiet-summary", action="store_true", help=argparse.SUPPRESS)


class PresetRun:
    """Registered by ``dbmatrix run``: a MatrixRun already validated and prepared by the CLI."""

    name = "dbmatrix-preset-run"

    def __init__(self, run: MatrixRun):
        self.run = run


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "dbmatrix_requires(*capabilities): capabilities a case needs")
    config.addinivalue_line("markers", "dbmatrix_case(id): the case id, when not derived from names")
    config.addinivalue_line("markers", "dbmatrix_expect(outcome): default expected outcome of a case")
    preset = next((p for p in config.pluginmanager.get_plugins() if isinstance(p, PresetRun)), None)
    if preset is not None:
        config.stash[RUN_KEY] = preset.run
        return
    try:
        run = MatrixRun.from_options(
            config.getoption("target"), config.getoption("driver"), config.getoption("dbm_case"),
            config.getoption("require"), config.getoption("dbm_out"), cwd=Path.cwd(),
        )
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[RUN_KEY] = run


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "cell" not in metafunc.fixturenames:
        return
    run = metafunc.config.stash[RUN_KEY]
    pairs = run.pairs()
    metafunc.parametrize(
        "cell", [CellSpec(t.name, d) for t, d in pairs], ids=[f"{t.name}-{d}" for t, d in pairs], indirect=True
    )


def case_of(item: pytest.Item) -> str:
    """``<family>.<case>``: family from the module (``test_sql_json`` -> ``sql``), case from the function."""
    marker = item.get_closest_marker("dbmatrix_case")
    if marker:
        return str(marker.args[0])
    module = Path(str(item.fspath)).stem.removeprefix("test_")
    name = getattr(item, "originalname", item.name).removeprefix("test_")
    return f"{module.split('_')[0]}.{name}"


def _is_cell_item(item: pytest.Item) -> bool:
    return "cell" in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    run = config.stash[RUN_KEY]
    keep, drop = [], []
    for item in items:
        (drop if _is_cell_item(item) and not run.wants_case(case_of(item)) else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
    cell_items = [i for i in items if _is_cell_item(i)]
    if not cell_items:
        return
    reporter = config.pluginmanager.get_plugin("terminalreporter")

    def progress(msg: str) -> None:
        if reporter is not None and not config.getoption("dbm_quiet_summary"):
            reporter.write_line(f"dbmatrix: {msg}")

    try:
        run.expectations = Expectations.load(Path(str(cell_items[0].fspath)).parent / "expectations")
        run.prepare(progress)
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None


@pytest.fixture
def cell(request: pytest.FixtureRequest):  # noqa: ANN201 - a generator fixture
    """One matrix cell: this case on one target with one driver (parametrized by the plugin)."""
    run: MatrixRun = request.config.stash[RUN_KEY]
    spec: CellSpec = request.param
    target = run.target(spec.target)
    params = {k: _plain(v) for k, v in request.node.callspec.params.items() if k != "cell"}
    c = Cell(case_of(request.node), target, run.adapter(spec.driver), params)
    request.node.stash[CELL_KEY] = c
    if target.status != OK:
        _skip(run, c, f"target {target.name} {target.reason}")
    reason = c.driver.unavailable_reason()
    if reason:
        _skip(run, c, reason)
    # The profile predicts, the engine decides: a case whose capability is missing still runs its SQL.
    marker = request.node.get_closest_marker("dbmatrix_requires")
    request.node.stash[MISSING_KEY] = [(cap, why) for cap in (marker.args if marker else ())
                                       if (why := target.missing(cap))]
    yield c
    c.close()


def _skip(run: MatrixRun, c: Cell, reason: str) -> None:
    c.record(SKIPPED, reason)
    assert c.result is not None
    run.add(c.result)
    pytest.skip(reason)


def _plain(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool) or value is None else str(value)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):  # noqa: ANN201 - hook wrapper generator
    c = item.stash.get(CELL_KEY, None)
    if c is None:
        return (yield)
    run = item.config.stash[RUN_KEY]
    missing = item.stash.get(MISSING_KEY, [])
    try:
        outcome = yield
    except pytest.skip.Exception as exc:
        if c.result is None:
            c.record(SKIPPED, str(exc.msg))
        _finish(run, c, item, missing)
        raise
    except DriverError as exc:
        # Where the profile lacks a capability, the engine refusing the case's SQL is the cell's answer.
        if c.result is None and missing:
            c.unsupported(exc)
            if _finish(run, c, item, missing) != DEVIATION:
                return None
            raise _deviation(c) from None
        if c.result is None:
            c.error(exc)
        _finish(run, c, item, missing)
        raise
    except BaseException as exc:
        if c.result is None:
            c.error(exc)
        _finish(run, c, item, missing)
        raise
    if c.result is None:
        c.error(RuntimeError("the case recorded no outcome"))
    if _finish(run, c, item, missing) == DEVIATION:
        raise _deviation(c)
    return outcome


def _deviation(c: Cell) -> AssertionError:
    r = c.result
    assert r is not None
    return AssertionError(f"{r.case} on {r.target}/{r.driver}: outcome {r.outcome!r}, expected {r.expected!r}"
                          + (f" — {r.detail}" if r.detail else ""))


def _finish(run: MatrixRun, c: Cell, item: pytest.Item, missing: list[tuple[str, str]]) -> str | None:
    r = c.result
    assert r is not None
    default = item.get_closest_marker("dbmatrix_expect")
    expected, errors, reason = (str(default.args[0]) if default else SUPPORTED), (), None
    if missing:  # the capability profile predicts the refusal and the engine's error for it
        expected = UNSUPPORTED
        errors = tuple(dict.fromkeys(e for cap, _ in missing for e in refusal_errors(cap, c.engine)))
        reason = "; ".join(why for _, why in missing)
    exp = run.expectations.lookup(c.kind, r.case, c.engine, r.target, r.driver, r.params)
    if exp is not None:
        expected, errors, reason = exp.outcome, exp.errors, exp.reason
    r.expected = expected if r.outcome != SKIPPED else None
    r.expected_mechanism = ("error:" + "|".join(errors)) if errors and r.outcome != SKIPPED else None
    r.verdict = verdict(r.outcome, expected, r.mechanism, errors)
    if r.verdict == DEVIATION and r.outcome not in (SKIPPED, ERROR):
        predicted = expected + (f" with {r.expected_mechanism}" if r.expected_mechanism else "")
        observed = r.outcome + (f" with {r.mechanism}" if r.mechanism else "")
        note = f"predicted {predicted}, observed {observed}" + (f": {reason}" if reason else "")
        if missing and exp is None and r.outcome != UNSUPPORTED:
            note += "; the engine accepts what its profile denies: update " + "; ".join(
                profile_entry(cap, c.engine) for cap, _ in missing)
        r.detail = f"{r.detail or ''} [{note}]".strip()
    run.add(r)
    return r.verdict


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    run = session.config.stash.get(RUN_KEY, None)
    if run is None or not run.doc.results:
        return
    complete = int(exitstatus) in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED)
    path = run.write(complete=complete)
    session.config.stash[_WRITTEN] = str(path)


_WRITTEN = pytest.StashKey[str]()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    run = config.stash.get(RUN_KEY, None)
    if run is None or not run.doc.results or config.getoption("dbm_quiet_summary"):
        return
    counts: dict[str, int] = {}
    for r in run.doc.results:
        counts[r.outcome] = counts.get(r.outcome, 0) + 1
    deviations = sum(1 for r in run.doc.results if r.verdict == DEVIATION)
    summary = ", ".join(f"{n} {o}" for o, n in sorted(counts.items()))
    terminalreporter.write_sep("-", "dbmatrix")
    terminalreporter.write_line(f"{len(run.doc.results)} cells: {summary}; {deviations} deviations")
    if _WRITTEN in config.stash:
        terminalreporter.write_line(f"results: {config.stash[_WRITTEN]} (+ report.md, report.html)")


def pytest_unconfigure(config: pytest.Config) -> None:
    run = config.stash.get(RUN_KEY, None)
    if run is not None:
        run.cleanup()
