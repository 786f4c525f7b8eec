"""``dbmatrix run | targets | report | diff``.

Exit codes (DESIGN.md): 0 everything as expected, 1 deviations or errors, 2 bad usage or configuration
(one line on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from . import __version__
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


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="dbmatrix", description="Run case modules over databases x drivers; one matrix of results.")
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
    run.add_argument("--cases", type=Path, default=None, metavar="DIR", help="case modules (default ./cases)")
    run.add_argument("--router", default=None, metavar="MODULE:FACTORY",
                     help="routing.* cases: your router factory(primary_url, replica_url) -> sessionmaker")
    run.add_argument("-v", "--verbose", action="store_true", help="show pytest's own output instead of a progress bar")

    tg = sub.add_parser("targets", help="list targets: reachable?, version, capabilities")
    target_options(tg)

    rep = sub.add_parser("report", help="re-render report.md and report.html from a results.json")
    rep.add_argument("results", type=Path, help="results.json, a run folder, or OUT/latest")
    rep.add_argument("--out", type=Path, default=None, metavar="DIR", help="default: the results file's directory")

    df = sub.add_parser("diff", help="list cells whose outcome changed; exit 1 if any got worse")
    df.add_argument("old", type=Path, help="results.json, a run folder, or OUT/latest")
    df.add_argument("new", type=Path, help="results.json, a run folder, or OUT/latest")

    mg = sub.add_parser("merge", help="fold the shard documents of one run into its results.json and reports")
    mg.add_argument("inputs", type=Path, nargs="+", metavar="DIR_OR_FILE",
                    help="shard .json files, or run folders (their shards/*.json)")
    mg.add_argument("--out", type=Path, default=None, metavar="DIR",
                    help="output root (writes DIR/<run-id>/); default: the root the shards are in, else ./dbmatrix-out")
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        commands = {"run": cmd_run, "targets": cmd_targets, "report": cmd_report, "diff": cmd_diff, "merge": cmd_merge}
        return commands[args.command](args)
    except UsageError as exc:
        print(f"dbmatrix: error: {scrub(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("dbmatrix: interrupted", file=sys.stderr)
        return 130


def cmd_run(args: argparse.Namespace) -> int:
    import pytest

    from .matrix import MatrixRun
    from .plugin import PresetRun
    from .progress import ProgressPlugin

    run = MatrixRun.from_options(args.target, args.driver, args.case, args.require, args.out)
    cases = args.cases or default_cases_dir()
    if not cases.is_dir():
        raise UsageError(f"case directory not found: {cases}")
    out = Path(args.out)
    pyargs = [str(cases), "--dbm-out", str(out), "-p", "no:cacheprovider", f"--rootdir={cases.parent}"]
    if args.router:
        from .routing import load_router

        load_router(args.router)  # a bad spec is one line and exit 2 before anything runs
        pyargs += ["--dbm-router", args.router]
    progress = None if args.verbose else ProgressPlugin()
    try:
        # Targets are prepared here, before pytest, so a missing --require'd target is one line and exit 2.
        run.prepare(progress.message if progress else lambda m: print(f"dbmatrix: {m}"))
        plugins: list[Any] = [PresetRun(run)]
        if progress is not None:
            plugins.append(progress)
            pyargs += ["-p", "no:terminal", "--dbm-quiet-summary"]
        code = pytest.main(pyargs, plugins=plugins)
    finally:
        if progress is not None:
            progress.close()
        run.cleanup()
    if code == pytest.ExitCode.USAGE_ERROR:
        return EXIT_USAGE
    if code == pytest.ExitCode.NO_TESTS_COLLECTED:
        print("dbmatrix: error: no case matches the given --case/--driver/--target", file=sys.stderr)
        return EXIT_USAGE
    if code == pytest.ExitCode.INTERRUPTED:
        return 130
    if run.written is None:  # nothing ran: nothing was written, and no earlier run is reported
        print("dbmatrix: error: no cell selected: no case runs on the given --target/--driver/--case",
              file=sys.stderr)
        return EXIT_USAGE
    print_summary(json.loads(run.written.read_text(encoding="utf-8")), run.written.parent)
    return EXIT_OK if code == pytest.ExitCode.OK else EXIT_DEVIATION


def print_summary(doc: dict[str, Any], out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    cells = doc["results"]
    counts = Counter(r["outcome"] for r in cells)
    table = Table(title=f"dbmatrix run {doc['run']['id']}", show_edge=False)
    table.add_column("target")
    table.add_column("status")
    table.add_column("version")
    table.add_column("cells", justify="right")
    for t in doc["targets"]:
        n = sum(1 for r in cells if r["target"] == t["name"])
        table.add_row(t["name"], t["status"] + (f" ({t['reason']})" if t["reason"] else ""),
                      t["server_version"] or "", str(n))
    console.print(table)
    deviations = [r for r in cells if r.get("verdict") == "deviation"]
    console.print(f"{len(cells)} cells: " + ", ".join(f"{n} {o}" for o, n in counts.most_common())
                  + f"; {len(deviations)} deviations")
    for r in deviations[:20]:
        line = f"  deviation {r['case']} {r['target']}/{r['driver']}: {r['outcome']} (expected {r['expected']})"
        console.print(line, markup=False, soft_wrap=True)
    if len(deviations) > 20:
        console.print(f"  ... and {len(deviations) - 20} more (see report.md)")
    console.print(f"wrote {out / 'results.json'}, {out / 'report.md'}, {out / 'report.html'}")


def cmd_targets(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from .matrix import MatrixRun

    run = MatrixRun.from_options(args.target, [], [], args.require, "dbmatrix-out")
    try:
        run.prepare(scratch=False)
    finally:
        run.cleanup()
    table = Table(show_edge=False)
    for col in ("target", "kind", "reachable", "version", "url", "capabilities"):
        table.add_column(col, overflow="fold")
    for t in run.targets:
        ok = t.status == "ok"
        kind = f"{t.kind}, replica of {t.replica_of}" if t.replica_of else t.kind
        table.add_row(t.name, kind, "yes" if ok else f"no: {t.reason}", t.server_version or "",
                      t.record().url, ", ".join(sorted(t.capabilities)) if ok else "")
    Console(highlight=False).print(table)
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from .report import write_reports
    from .results import find_results, load_document

    path = find_results(args.results)
    doc = load_document(path)
    paths = write_reports(doc, args.out or path.parent)
    print("wrote " + ", ".join(str(p) for p in paths))
    return EXIT_OK


def cmd_diff(args: argparse.Namespace) -> int:
    from .report.diff import any_worse, diff_documents, render_diff
    from .results import load_document

    changes = diff_documents(load_document(args.old), load_document(args.new))
    sys.stdout.write(render_diff(changes))
    return EXIT_DEVIATION if any_worse(changes) else EXIT_OK


def cmd_merge(args: argparse.Namespace) -> int:
    from .merge import merge_shards

    path = merge_shards(args.inputs, args.out)
    print(f"wrote {path}, {path.parent / 'report.md'}, {path.parent / 'report.html'}")
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    try:
        sys.exit(main())
    except DriverError as exc:
        print(f"dbmatrix: error: {exc}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
