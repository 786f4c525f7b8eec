"""The pytest plugin: options, parametrization over each case's axes, the ``cell`` fixture, results at the end.

Thin on purpose, so the same run works from ``dbmatrix run`` and plain pytest: the run's state lives in
``MatrixRun`` (matrix.py) kept in ``config.stash``.

Under pytest-xdist every worker is one shard of the same run: the controller hands its run id to the workers
(``workerinput``), each worker prepares its own targets (its own embedded server; scratch names carry the
worker id) and writes ``<out>/<run-id>/shards/<worker>.json``; the controller merges them into results.json.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
from pathlib import Path
from typing import Any

import pytest

from . import interrupt, sampling
from .cell import Cell
from .errors import DriverError, UsageError
from .expectations import Expectations, verdict
from .matrix import TARGET_DRIVER, Column, MatrixRun, write_run
from .redact_reports import RedactReports
from .results import DEVIATION, ERROR, SKIPPED, SUPPORTED, UNSUPPORTED, OutputError, merge_documents
from .targets.capabilities import profile_entry, refusal_errors
from .targets.liveness import after_cell
from .targets.model import OK

RUN_KEY = pytest.StashKey[MatrixRun]()
CELL_KEY = pytest.StashKey[Cell]()
MISSING_KEY = pytest.StashKey[list[tuple[str, str]]]()  # (capability, why) the target's profile lacks
RUN_ID_ENV = "DBMATRIX_RUN_ID"
_WORKER_RUN_ID = "dbmatrix_run_id"

CellSpec = Column  # the parameter of the ``cell`` fixture


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("dbmatrix", "dbmatrix: run case modules over targets x drivers")
    g.addoption("--target", action="append", default=[], metavar="NAME[=URL]",
                help="target to run on (repeatable); default: sqlite, postgres-embedded and configured targets")
    g.addoption("--driver", action="append", default=[], metavar="ID[,ID]", help="driver ids (default: all)")
    g.addoption("--case", action="append", default=[], dest="dbm_case", metavar="GLOB",
                help="only cases whose id matches (repeatable), e.g. 'types.*'")
    g.addoption("--require", action="append", default=[], metavar="NAME[,NAME]",
                help="fail (exit 2) when one of these targets does not answer")
    g.addoption("--dbm-out", default="dbmatrix-out", metavar="DIR",
                help="output root: each run writes DIR/<run-id>/ (results.json, reports) and DIR/latest")
    g.addoption("--dbm-run-id", default=None, metavar="ID",
                help=f"join this run id (shards of one run share it; default: ${RUN_ID_ENV} or a new id)")
    g.addoption("--dbm-shard", default=None, metavar="NAME",
                help="write DIR/<run-id>/shards/NAME.json instead of results.json (fold with `dbmatrix merge`)")
    g.addoption("--dbm-router", default=None, metavar="MODULE:FACTORY",
                help="routing.* cases: test this router factory instead of dbmatrix's reference router")
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
    config.addinivalue_line("markers", "dbmatrix_axes(*axes, tool=None): what a case's cells range over")
    config.stash[_RESTORE_SIGNALS] = interrupt.install()
    config.pluginmanager.register(interrupt.StopBetweenCells(), interrupt.StopBetweenCells.name)
    config.pluginmanager.register(RedactReports(), RedactReports.name)
    preset = next((p for p in config.pluginmanager.get_plugins() if isinstance(p, PresetRun)), None)
    if preset is not None:
        config.stash[RUN_KEY] = preset.run
        return
    run_id = config.getoption("dbm_run_id") or os.environ.get(RUN_ID_ENV) or None
    shard = config.getoption("dbm_shard")
    worker = getattr(config, "workerinput", None)
    if worker is not None:  # a pytest-xdist worker: one shard of the controller's run
        run_id = worker[_WORKER_RUN_ID]
        shard = f"{shard}-{worker['workerid']}" if shard else worker["workerid"]
    try:
        run = MatrixRun.from_options(
            config.getoption("target"), config.getoption("driver"), config.getoption("dbm_case"),
            config.getoption("require"), config.getoption("dbm_out"), cwd=Path.cwd(), run_id=run_id, shard=shard,
        )
        if _is_xdist_controller(config):
            run.check_required()
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[RUN_KEY] = run


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist (controller): every worker joins this run's id."""
    node.workerinput[_WORKER_RUN_ID] = node.config.stash[RUN_KEY].doc.run_id


def _is_xdist_controller(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput") and getattr(config.option, "dist", "no") != "no"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "cell" not in metafunc.fixturenames:
        return
    run = metafunc.config.stash[RUN_KEY]
    marker = metafunc.definition.get_closest_marker("dbmatrix_axes")
    axes = tuple(marker.args) if marker else TARGET_DRIVER
    columns = run.columns(axes)
    kinds = marker.kwargs.get("kinds") if marker else None
    if kinds:
        columns = [c for c in columns if run.target(c.target).kind in kinds]
    drivers = marker.kwargs.get("drivers") if marker else None
    if drivers and not run.drivers_named:
        columns = [c for c in columns if c.driver is None or any(fnmatch.fnmatchcase(c.driver, g) for g in drivers)]
    case = case_of(metafunc.definition)
    # a layer may judge only some families (``DriverAdapter.cases``: pypika, builder.*), and may run only some
    # families unless its drivers are named (``Layer.cases_by_default``: the ORMs, orm.*)
    columns = [c for c in columns if c.driver is None or (
        run.adapter(c.driver).runs_case(case) and (run.drivers_named or run.adapter(c.driver).runs_by_default(case)))]
    if sampling.active():  # the bounded CI profile: a deterministic sample of some layered pairs (sampling.py)
        columns = [c for c in columns if c.driver is None or sampling.keeps(case, run.adapter(c.driver))]
    metafunc.parametrize("cell", columns, ids=[c.id for c in columns], indirect=True)


def case_of(item: pytest.Item) -> str:
    """``<family>.<case>``: family from the module (``test_sql_json`` -> ``sql``), case from the function."""
    marker = item.get_closest_marker("dbmatrix_case")
    if marker:
        return str(marker.args[0])
    module = Path(str(item.fspath)).stem.removeprefix("test_")
    name = getattr(item, "originalname", item.name).removeprefix("test_")
    return f"{module.split('_')[0]}.{name}"


def _column(item: pytest.Item) -> object:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("cell") if callspec is not None else None


def _is_cell_item(item: pytest.Item) -> bool:
    return "cell" in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    run = config.stash[RUN_KEY]
    keep, drop = [], []
    for item in items:
        # a case whose axes have no column in this run (e.g. pairs without a replica) has no cell: it is
        # deselected rather than shown as pytest's "empty parameter set" skip
        no_cell = _is_cell_item(item) and not isinstance(_column(item), Column)
        (drop if no_cell or (_is_cell_item(item) and not run.wants_case(case_of(item))) else keep).append(item)
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
        # each case folder's own expectations/ (a run may collect the shipped cases and one's own folders)
        for folder in dict.fromkeys(Path(str(i.fspath)).parent for i in cell_items):
            run.expectations[folder] = Expectations.load(folder / "expectations")
        run.prepare(progress)
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None


@pytest.fixture
def cell(request: pytest.FixtureRequest):  # noqa: ANN201 - a generator fixture
    """One matrix cell: this case on one column of its axes (parametrized by the plugin)."""
    run: MatrixRun = request.config.stash[RUN_KEY]
    spec: Column = request.param
    target = run.target(spec.target)
    replica = run.target(spec.replica) if spec.replica else None
    params = {k: _plain(v) for k, v in request.node.callspec.params.items() if k != "cell"}
    marker = request.node.get_closest_marker("dbmatrix_axes")
    tool = marker.kwargs.get("tool") if marker else None
    driver = run.adapter(spec.driver) if spec.driver else None
    c = Cell(case_of(request.node), target, driver, params, place=run.place, tool=tool, replica=replica)
    request.node.stash[CELL_KEY] = c
    for t in (target, replica):
        if t is not None and t.status != OK:
            _skip(run, c, f"target {t.name} {t.reason}")
    reason = driver.unavailable_reason() if driver else None
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


def _deviation(c: Cell) -> BaseException:
    """The test's failure: one line naming the cell, without pytest's source listing of this hook (pytrace=False),
    which says nothing about the case."""
    r = c.result
    assert r is not None
    return pytest.fail.Exception(f"{r.case} on {r.target}/{r.driver}: outcome {r.outcome!r}, expected {r.expected!r}"
                                 + (f" — {r.detail}" if r.detail else ""), pytrace=False)


def _finish(run: MatrixRun, c: Cell, item: pytest.Item, missing: list[tuple[str, str]]) -> str | None:
    r = c.result
    assert r is not None
    if not interrupt.requested():
        after_cell(c.target, r)  # a target that stopped answering: this cell and every later one on it are skipped
    if interrupt.requested() and r.outcome == ERROR:
        # cut short by Ctrl-C/SIGTERM: not a finding about the database, and not a bug of ours
        r.outcome, r.mechanism, r.detail = SKIPPED, "interrupted", f"interrupted by {interrupt.signal_name()}"
    default = item.get_closest_marker("dbmatrix_expect")
    expected, errors, reason = (str(default.args[0]) if default else SUPPORTED), (), None
    if missing:  # the capability profile predicts the refusal and the engine's error for it
        expected = UNSUPPORTED
        errors = tuple(dict.fromkeys(e for cap, _ in missing for e in refusal_errors(cap, c.engine)))
        reason = "; ".join(why for _, why in missing)
    expectations = run.expectations.get(Path(str(item.fspath)).parent, Expectations())
    exp = expectations.lookup(c.kind, r.case, c.engine, r.target, r.driver, r.params, c.target.pooler)
    if exp is not None:
        expected, errors, reason = exp.outcome, exp.errors, exp.reason
    r.expected = expected if r.outcome != SKIPPED else None
    r.expected_mechanism = ("error:" + "|".join(errors)) if errors and r.outcome != SKIPPED else None
    r.expected_reason = reason if r.outcome != SKIPPED else None
    r.verdict = verdict(r.outcome, expected, r.mechanism, errors)
    if r.verdict == DEVIATION and r.outcome not in (SKIPPED, ERROR):
        predicted = expected + (f" with {r.expected_mechanism}" if r.expected_mechanism else "")
        observed = r.outcome + (f" with {r.mechanism}" if r.mechanism else "")
        note = f"predicted {predicted}, observed {observed}" + (f": {reason}" if reason else "")
        if missing and exp is None and r.outcome != UNSUPPORTED:
            note += "; the engine accepts what its profile denies: update " + "; ".join(
                profile_entry(cap, c.engine) for cap, _ in missing)
        r.detail = f"{r.detail or ''} [{note}]".strip()
    elif missing and exp is None and r.verdict is not None:
        r.detail = f"{r.detail or ''} [as the capability profile predicts: {reason}]".strip()
    run.add(r)
    return r.verdict


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Write this run (or shard) into its own folder; nothing at all when no cell ran. Then drop scratch
    spaces and stop managed servers here, not only at unconfigure: an xdist worker may be stopped before that."""
    run = session.config.stash.get(RUN_KEY, None)
    if run is None:
        return
    try:
        with interrupt.shielded():  # a second Ctrl-C must not cut the results file or the cleanup in half
            _write(session, run, exitstatus)
    except OutputError as exc:  # a full disk or a device at --out: one line from the command, not a traceback
        run.write_error = str(exc)
    finally:
        run.cleanup()


def _write(session: pytest.Session, run: MatrixRun, exitstatus: int) -> None:
    complete = int(exitstatus) in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED) and not interrupt.requested()
    if _is_xdist_controller(session.config):
        shards = sorted((run.run_dir / "shards").glob("*.json"))
        if not shards:
            return
        doc = merge_documents([json.loads(p.read_text(encoding="utf-8")) for p in shards])
        doc["run"]["complete"] = doc["run"]["complete"] and complete
        if run.doc.shard is None:  # with --dbm-shard too, `dbmatrix merge` folds every job's shards later
            run.written = write_run(doc, run.out_dir)
            interrupt.record_written(run.written)
        session.config.stash[_SUMMARY] = doc
        return
    if not run.doc.results and not interrupt.requested():
        return  # nothing selected: nothing written; interrupted: say so, even with no cell done yet
    run.write(complete=complete)
    session.config.stash[_SUMMARY] = run.doc.to_dict()


_SUMMARY = pytest.StashKey[dict]()
_RESTORE_SIGNALS = pytest.StashKey[Any]()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """Always about the run this process just made (never a file left by an earlier run)."""
    run = config.stash.get(RUN_KEY, None)
    doc = config.stash.get(_SUMMARY, None)
    if run is None or doc is None or config.getoption("dbm_quiet_summary"):
        return
    counts: dict[str, int] = {}
    for r in doc["results"]:
        counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
    deviations = sum(1 for r in doc["results"] if r.get("verdict") == DEVIATION)
    summary = ", ".join(f"{n} {o}" for o, n in sorted(counts.items()))
    terminalreporter.write_sep("-", f"dbmatrix run {doc['run']['id']}")
    terminalreporter.write_line(f"{len(doc['results'])} cells: {summary}; {deviations} deviations")
    if run.written is not None:
        extra = "" if run.doc.shard and not _is_xdist_controller(config) else " (+ report.md, report.html)"
        terminalreporter.write_line(f"results: {run.written}{extra}")


def pytest_unconfigure(config: pytest.Config) -> None:
    run = config.stash.get(RUN_KEY, None)
    if run is not None:
        run.cleanup()
    config.stash.get(_RESTORE_SIGNALS, lambda: None)()
