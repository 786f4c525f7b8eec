"""``dbmatrix run | targets | report | diff``.

Exit codes: 0 everything as expected, 1 deviations or errors, 2 bad usage or configuration
(one line on stderr, no traceback), 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from . import __version__, interrupt
from .errors import DriverError, UsageError
from .redaction import scrub

EXIT_OK, EXIT_DEVIATION, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own errors: one line, exit 2
        raise UsageError(message)


def default_cases_dir() -> Path:
    """``./cases`` when run from a project that has one, else the cases shipped beside the framework."""
    here = Path.cwd() / "cases"
    return here if here.is_dir() else Path(__file__).resolve().parents[2] / "cases"


def case_paths(paths: list[Path], cases: Path | None) -> list[Path]:
    """The case folders (or modules) a run collects: the PATHs and --cases, else the default folder."""
    chosen = [*paths, *([cases] if cases else [])] or [default_cases_dir()]
    for p in chosen:
        if not p.is_dir() and not (p.is_file() and p.suffix == ".py"):
            raise UsageError(f"case directory not found: {p}" if p.suffix != ".py" else f"case module not found: {p}")
    return chosen


def build_parser() -> argparse.ArgumentParser:
    from .console import usage_epilog

    p = _Parser(prog="dbmatrix", description="Run case modules over databases x drivers; one matrix of results.",
                epilog=usage_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"dbmatrix {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def target_options(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--target", action="append", default=[], metavar="NAME[=URL]",
                        help="target (repeatable); default: sqlite, postgres-embedded and configured targets")
        sp.add_argument("--require", action="append", default=[], metavar="NAMES",
                        help="comma-separated targets that must answer (else exit 2)")

    run = sub.add_parser("run", help="run the case suite and write results.json, report.md, report.html")
    target_options(run)
    run.add_argument("--driver", action="append", default=[], metavar="IDS", help="driver ids (default: all)")
    run.add_argument("--case", action="append", default=[], metavar="GLOB", help="case id glob, e.g. 'types.*'")
    run.add_argument("--out", default="dbmatrix-out", metavar="DIR", help="output directory (default ./dbmatrix-out)")
    run.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                     help="case folders or case modules to run (default ./cases, else the cases shipped with dbmatrix)")
    run.add_argument("--cases", type=Path, default=None, metavar="DIR", help="a case folder (the same as PATH)")
    run.add_argument("--router", default=None, metavar="MODULE:FACTORY",
                     help="routing.* cases: your router factory(primary_url, replica_url) -> sessionmaker")
    run.add_argument("-v", "--verbose", action="store_true", help="show pytest's own output instead of a progress bar")

    bn = sub.add_parser("bench", help="performance workloads over targets x drivers; results.json, report.md/html")
    target_options(bn)
    bn.add_argument("--workload", action="append", default=[], metavar="NAME",
                    help="pk_select, range_select, insert_batch, update_txn, json_select (default: all), or your own:"
                         " a pgbench-style script FILE.sql, or module:callable (called with the session per operation)")
    bn.add_argument("--driver", action="append", default=[], metavar="IDS",
                    help="driver ids; all: every driver and layer pair with every workload (default: each rung's"
                         " default rows, see docs/bench.md)")
    bn.add_argument("--concurrency", "--clients", default=None, metavar="N,N",
                    help="worker processes (clients) per cell, a sweep of one cell each (default 1,4)")
    bn.add_argument("--seconds", type=float, default=None, help="seconds per repeat (default 0.3)")
    bn.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                    help="a cell's whole timed time, split over its repeats (instead of --seconds)")
    bn.add_argument("--rate", type=float, default=None, metavar="OPS",
                    help="operations per second in total per cell, at fixed intervals; latency counts from each"
                         " call's scheduled start (like pgbench -R)")
    bn.add_argument("--repeats", type=int, default=None, help="repeats per cell, at least 3 (default 3)")
    bn.add_argument("--rows", type=int, default=None, help="rows in bench_users (default 100000)")
    bn.add_argument("--quick", action="store_true", help="a short smoke run (well under 2 minutes per target)")
    bn.add_argument("--compare", type=Path, default=None, metavar="OLD",
                    help="mark QPS changes beyond the noise against an earlier run: its results.json, its run folder"
                         " or OUT/latest")
    bn.add_argument("--out", default="dbmatrix-out", metavar="DIR", help="output directory (default ./dbmatrix-out)")

    tg = sub.add_parser("targets", help="list targets (all built-in and configured by default): answers?, version")
    target_options(tg)

    rep = sub.add_parser("report", help="re-render report.md and report.html from a results.json")
    rep.add_argument("results", type=Path, help="results.json, a run folder, or OUT/latest")
    rep.add_argument("--out", type=Path, default=None, metavar="DIR", help="default: the results file's directory")

    mi = sub.add_parser("migrate", help="dry-run a migration chain (alembic, yoyo or Django) on every target's scratch")
    target_options(mi)
    src = mi.add_mutually_exclusive_group(required=True)
    src.add_argument("--alembic", type=Path, metavar="INI", help="the project's alembic.ini")
    src.add_argument("--yoyo", type=Path, metavar="DIR", help="a yoyo migrations directory")
    src.add_argument("--django", metavar="SETTINGS", help="a Django settings module (or the project's manage.py)")
    mi.add_argument("--app", action="append", default=[], metavar="LABEL",
                    help="with --django: an app whose migrations are checked (repeatable; default: the project's apps)")
    mi.add_argument("--pythonpath", action="append", default=[], type=Path, metavar="DIR",
                    help="with --django: a directory to import the settings and apps from (repeatable)")
    mi.add_argument("--models", metavar="MODULE_OR_FILE:ATTR", help="MetaData or declarative Base for model_drift")
    mi.add_argument("--seed-rows", type=int, default=50_000, metavar="N", help="rows per table in the seeded run")
    mi.add_argument("--lock-budget-ms", type=float, default=None, metavar="MS",
                    help="fail migrate.locks when a write-blocking lock on a populated table is held longer (default: "
                         "report hold times, fail only on table rewrites)")
    mi.add_argument("--out", default="dbmatrix-out", metavar="DIR", help="output directory (default ./dbmatrix-out)")
    mi.add_argument("-v", "--verbose", action="store_true", help="show the tools' own log lines (alembic's INFO)")

    df = sub.add_parser("diff", help="cells that got worse / better / changed; exit 1 if any got worse")
    df.add_argument("old", type=Path, help="results.json, a run folder, or OUT/latest")
    df.add_argument("new", type=Path, help="results.json, a run folder, or OUT/latest")
    df.add_argument("--html", type=Path, default=None, metavar="FILE", help="also write the comparison as HTML")
    df.add_argument("--md", type=Path, default=None, metavar="FILE", help="also write it as Markdown (PR comment)")

    mg = sub.add_parser("merge", help="fold the shard documents of one run into its results.json and reports")
    mg.add_argument("inputs", type=Path, nargs="+", metavar="DIR_OR_FILE",
                    help="shard .json files, or run folders (their shards/*.json)")
    mg.add_argument("--out", type=Path, default=None, metavar="DIR",
                    help="output root (writes DIR/<run-id>/); default: the root the shards are in, else ./dbmatrix-out")

    cl = sub.add_parser("clean", help="remove scratch databases, schemas and temp dirs left by dead runs")
    cl.add_argument("--target", action="append", default=[], metavar="NAME[=URL]",
                    help="servers to search (default: every built-in and configured target)")
    cl.add_argument("--dry-run", action="store_true", help="only list what would be removed")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        parser = build_parser()
        if not argv:
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        args = parser.parse_args(argv)
        commands = {"run": cmd_run, "bench": cmd_bench, "targets": cmd_targets, "report": cmd_report,
                    "diff": cmd_diff, "merge": cmd_merge, "clean": cmd_clean, "migrate": cmd_migrate}
        # one interrupt mechanism for every verb: SIGTERM unwinds like Ctrl-C, so every cleanup runs
        interrupt.reset()  # a verb's own stop request and record (tests call main() many times in one process)
        restore_signals = interrupt.install()
        try:
            return commands[args.command](args)
        finally:
            restore_signals()
    except UsageError as exc:
        print(f"dbmatrix: error: {scrub(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        how = f" by {interrupt.signal_name()}" if interrupt.requested() else ""
        print(f"dbmatrix: interrupted{how}; {interrupt.summary()}", file=sys.stderr)
        return interrupt.exit_code()


class CollectErrors:
    """pytest plugin: the first line that says why a case module could not be loaded (a syntax or import error)."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def pytest_collectreport(self, report: Any) -> None:
        if report.failed:
            lines = [line.strip() for line in str(report.longrepr).splitlines() if line.strip()]
            cause = next((line.lstrip("E").strip() for line in reversed(lines) if line.startswith("E ")),
                         lines[-1] if lines else "unknown error")
            self.errors.append(f"cannot load case module {report.nodeid or report.fspath}: {scrub(cause)}")


def cmd_run(args: argparse.Namespace) -> int:
    import pytest

    from . import interrupt
    from .checks import check_out_dir
    from .matrix import MatrixRun
    from .plugin import PresetRun
    from .progress import ProgressPlugin
    from .targets.leftovers import warn_leftovers

    run = MatrixRun.from_options(args.target, args.driver, args.case, args.require, args.out)
    cases = case_paths(args.paths, args.cases)
    out = Path(args.out)
    check_out_dir(out)
    restore_signals = interrupt.install()
    collect_errors = CollectErrors()
    rootdir = os.path.commonpath([str(p.resolve().parent) for p in cases])
    pyargs = [*map(str, cases), "--dbm-out", str(out), "-p", "no:cacheprovider", f"--rootdir={rootdir}"]
    if args.router:
        from .routing import load_router

        load_router(args.router)  # a bad spec is one line and exit 2 before anything runs
        pyargs += ["--dbm-router", args.router]
    progress = None if args.verbose else ProgressPlugin()
    try:
        # Targets are prepared here, before pytest, so a missing --require'd target is one line and exit 2.
        say = progress.message if progress else lambda m: print(f"dbmatrix: {m}")
        run.prepare(say)
        warn_leftovers(run.targets, say)
        plugins: list[Any] = [PresetRun(run), collect_errors]
        if progress is not None:
            plugins.append(progress)
            pyargs += ["-p", "no:terminal", "--dbm-quiet-summary"]
        code = pytest.main(pyargs, plugins=plugins)
    finally:
        if progress is not None:
            progress.close()
        run.cleanup()
        restore_signals()
    if run.write_error:
        raise UsageError(run.write_error)
    if interrupt.requested():
        print(f"dbmatrix: interrupted by {interrupt.signal_name()}; {interrupt.summary()}", file=sys.stderr)
        return interrupt.exit_code()
    if code == pytest.ExitCode.INTERRUPTED and collect_errors.errors:
        # pytest's "interrupted" also means a case module failed to import: name the cause, not a signal
        more = len(collect_errors.errors) - 1
        raise UsageError(collect_errors.errors[0] + (f" (and {more} more module(s) that cannot load)" if more else ""))
    if code == pytest.ExitCode.USAGE_ERROR:
        return EXIT_USAGE
    if code == pytest.ExitCode.NO_TESTS_COLLECTED:
        where = ", ".join(str(p) for p in cases)
        print(f"dbmatrix: error: no case in {where} matches the given --case/--driver/--target"
              + ("" if args.paths or args.cases else " (to run your own case folder: dbmatrix run PATH)"),
              file=sys.stderr)
        return EXIT_USAGE
    if code == pytest.ExitCode.INTERRUPTED:
        results = run.written
        what = f"wrote partial results (complete: false) to {results}" if results else "nothing was written"
        print(f"dbmatrix: interrupted; {what}", file=sys.stderr)
        return 130
    if run.written is None:  # nothing ran: nothing was written, and no earlier run is reported
        print("dbmatrix: error: no cell selected: no case runs on the given --target/--driver/--case",
              file=sys.stderr)
        return EXIT_USAGE
    from .console import print_summary

    print_summary(json.loads(run.written.read_text(encoding="utf-8")), run.written.parent)
    return EXIT_OK if code == pytest.ExitCode.OK else EXIT_DEVIATION


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench.runner import cmd_bench as bench

    return bench(args)


def cmd_targets(args: argparse.Namespace) -> int:
    from .console import console, listing_targets, targets_table
    from .matrix import MatrixRun
    from .targets.config import TargetResolver
    from .targets.leftovers import warn_leftovers

    unconfigured: list[tuple[str, str, str]] = []
    if args.target or args.require:
        run = MatrixRun.from_options(args.target, [], [], args.require, "dbmatrix-out", named_must_run=False)
    else:  # no selection: every built-in and configured target, and whether it answers here
        targets, unconfigured = listing_targets(TargetResolver())
        run = MatrixRun(targets, [], [], [], Path("dbmatrix-out"))
    try:
        run.prepare(scratch=False)
    finally:
        run.cleanup()
    warn_leftovers(run.targets, lambda m: print(f"dbmatrix: {m}", file=sys.stderr))
    console().print(targets_table(run.targets, unconfigured, standby_notes(run.targets)))
    return EXIT_OK


def standby_notes(targets: list[Any]) -> dict[str, str]:
    """Replay lag of each answering hot standby, for the targets table."""
    from .targets.admin import standby_lag

    notes = {}
    for t in targets:
        if t.status == "ok" and t.replica_of:
            try:
                note = standby_lag(t.kind, t.url)
            except Exception as exc:  # noqa: BLE001 - the listing goes on; the row says what failed
                note = f"replay lag unknown: {scrub(exc)}"
            if note:
                notes[t.name] = note
    return notes


def cmd_migrate(args: argparse.Namespace) -> int:
    from .migrate.cli import migrate_main

    return migrate_main(args)


def cmd_report(args: argparse.Namespace) -> int:
    from .checks import check_out_dir
    from .report import write_reports
    from .results import find_results, load_document

    path = find_results(args.results)
    doc = load_document(path)
    check_out_dir(args.out or path.parent)
    paths = write_reports(doc, args.out or path.parent)
    print("wrote " + ", ".join(str(p) for p in paths))
    return EXIT_OK


def cmd_diff(args: argparse.Namespace) -> int:
    from .report.diff import compare, render_diff, render_diff_markdown
    from .report.diff_html import render_diff_html
    from .results import load_document, output_file, write_text_atomic

    for path in (args.html, args.md):
        if path is not None:
            output_file(path)  # a directory or a device is refused before anything is compared or printed
    old, new = load_document(args.old), load_document(args.new)
    for path, doc in ((args.old, old), (args.new, new)):
        if not doc["results"]:  # comparing against nothing would say "no change" about every cell
            raise UsageError(f"{path} has no cells (run {doc['run']['id']}): nothing to compare")
    report = compare(old, new)
    sys.stdout.write(render_diff(report))
    for path, render in ((args.html, render_diff_html), (args.md, render_diff_markdown)):
        if path is not None:
            write_text_atomic(path, render(report))
            print(f"wrote {path}")
    return EXIT_DEVIATION if report.any_worse else EXIT_OK


def cmd_merge(args: argparse.Namespace) -> int:
    from .merge import merge_shards

    path = merge_shards(args.inputs, args.out)
    print(f"wrote {path}, {path.parent / 'report.md'}, {path.parent / 'report.html'}")
    return EXIT_OK


def cmd_clean(args: argparse.Namespace) -> int:
    from .targets.leftovers import clean

    failed = clean(args.target, dry_run=args.dry_run, say=lambda m: print(f"dbmatrix: {m}"))
    return EXIT_DEVIATION if failed else EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    try:
        sys.exit(main())
    except DriverError as exc:
        print(f"dbmatrix: error: {exc}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
