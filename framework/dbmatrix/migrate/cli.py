"""The ``dbmatrix migrate`` verb: arguments in, results.json + reports out, exit 0 / 1 / 2."""

from __future__ import annotations

import argparse
import sys

from ..errors import UsageError
from .command import MigrateSource, failed, run_migrate
from .guard import ForeignDatabase
from .waivers import is_waived

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def migrate_main(args: argparse.Namespace) -> int:
    source = MigrateSource("alembic", args.alembic) if args.alembic else MigrateSource("yoyo", args.yoyo)
    if getattr(args, "django", None):
        source = MigrateSource("django", args.django, args.app, args.pythonpath)
    elif args.app or args.pythonpath:
        raise UsageError("--app and --pythonpath go with --django")
    try:
        cells, run = run_migrate(source, args.target, args.require, args.out, args.models, args.seed_rows,
                                 args.lock_budget_ms, progress=lambda m: print(f"dbmatrix: {m}", file=sys.stderr),
                                 tool_log=args.verbose)
    except ForeignDatabase as exc:
        # loud on purpose: the user's env.py reached for a database dbmatrix did not create
        print(f"dbmatrix: STOPPED: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not cells:
        raise UsageError("no target answered; nothing was migrated")
    path = run.write(complete=True)
    for c in cells:
        if c.outcome in ("fail", "error"):
            rev = f" [{c.params['revision']}]" if c.params.get("revision") else ""
            label = "WAIVED" if is_waived(c) else c.outcome.upper()
            print(f"{label:6} {c.case}{rev} on {c.target}: {c.detail}")
    n_waived = sum(1 for c in cells if is_waived(c))
    n_fail = sum(1 for c in cells if c.outcome in ("fail", "error")) - n_waived
    waived = f", {n_waived} waived (accepted in the project's config)" if n_waived else ""
    print(f"{len(cells)} results, {n_fail} failed{waived}; wrote {path}")
    return EXIT_FAIL if failed(cells) else EXIT_OK
