"""What the ``dbmatrix`` command prints: usage epilog, the targets table, the run summary.

Tables go through ``console()``, which never folds a word: on a terminal rich fits the table to the window;
piped into a file or a CI log the table keeps its natural width instead of the 80 columns rich assumes.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from . import drivers
from .errors import UsageError
from .targets.config import BUILTIN, DEFAULT_RUN, TargetResolver, env_var
from .targets.model import Target

PIPE_WIDTH = 10_000  # wide enough that a piped table never wraps; rich trims trailing space


def console(stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(stderr=stderr, highlight=False)
    return Console(stderr=stderr, highlight=False, width=PIPE_WIDTH, soft_wrap=True)


def usage_epilog() -> str:
    """Target names and driver ids for ``dbmatrix --help``."""
    try:
        configured = TargetResolver().configured_names()
    except UsageError:
        configured = []  # a broken config file is reported when it is used, not by --help
    builtin = ", ".join(BUILTIN)
    lines = [
        f"targets (built in): {builtin}",
        f"  default for a bare 'dbmatrix run': {', '.join(DEFAULT_RUN)} plus every configured target that answers",
    ]
    extra = [n for n in configured if n not in BUILTIN]
    if extra:
        lines.append(f"targets (configured here): {', '.join(extra)}")
    lines += [
        *drivers.describe(),
        "exit codes: 0 as expected, 1 deviations or errors, 2 bad usage or configuration",
        "'dbmatrix targets' shows which targets answer here",
    ]
    return "\n".join(lines)


def listing_targets(resolver: TargetResolver) -> tuple[list[Target], list[tuple[str, str, str]]]:
    """Every built-in and configured target: those with a URL (to probe), and (name, kind, why not) for the rest."""
    targets, unconfigured = [], []
    for name in resolver.known_names():
        builtin = BUILTIN.get(name)
        has_url = (name in resolver.file_config or env_var(name) in resolver.environ
                   or (builtin is not None and (builtin.default_url or builtin.managed)))
        if has_url:
            targets.append(resolver.resolve(name))  # a malformed configured URL is an error, not "unconfigured"
        else:
            kind = builtin.kind if builtin else "?"
            unconfigured.append((name, kind, f"not configured ({env_var(name)} or --target {name}=URL)"))
    return targets, unconfigured


def targets_table(targets: list[Target], unconfigured: list[tuple[str, str, str]] = (),
                  notes: dict[str, str] | None = None) -> Table:
    table = Table(show_edge=False)
    for col in ("target", "kind", "answers", "version", "pooler", "replica of", "url", "capabilities"):
        table.add_column(col)
    for t in targets:
        ok = t.status == "ok"
        answers = "yes" if ok else f"no: {t.reason}"
        if t.managed:
            answers += " (made by dbmatrix for each run)" if ok else ""
        if notes and t.name in notes:
            answers += f" ({notes[t.name]})"
        table.add_row(t.name, t.kind, answers, t.server_version or "", t.pooler or "",
                      getattr(t, "replica_of", None) or "", t.record().url,
                      ", ".join(sorted(t.capabilities)) if ok else "")
    for name, kind, why in unconfigured:
        table.add_row(name, kind, f"no: {why}", "", "", "", "", "")
    return table


def print_summary(doc: dict[str, Any], out: Path, written: list[Path] | None = None) -> None:
    """What the run just made: per-target cell counts (with skip reasons), outcome counts, deviations, files."""
    out_console = console()
    cells = doc["results"]
    counts = Counter(r["outcome"] for r in cells)
    table = Table(title=f"dbmatrix run {doc['run']['id']}", show_edge=False)
    for col in ("target", "status", "version", "pooler", "cells"):
        table.add_column(col, justify="right" if col == "cells" else "left")
    for t in doc["targets"]:
        n = sum(1 for r in cells if r["target"] == t["name"])
        table.add_row(t["name"], t["status"] + (f" ({t['reason']})" if t.get("reason") else ""),
                      t.get("server_version") or "", t.get("pooler") or "", str(n))
    out_console.print(table)
    deviations = [r for r in cells if r.get("verdict") == "deviation"]
    out_console.print(f"{len(cells)} cells: " + ", ".join(f"{n} {o}" for o, n in counts.most_common())
                      + f"; {len(deviations)} deviations")
    if not deviations and any(o in counts for o in ("fail", "differs", "allowed", "unsupported")):
        out_console.print("every cell as expected (exit 0): the fail/differs/allowed/unsupported cells are what the "
                          "expectations predict, each with its reason in the reports")
    for r in deviations[:20]:
        line = f"  deviation {r['case']} {r['target']}/{r['driver']}: {r['outcome']} (expected {r['expected']})"
        out_console.print(line, markup=False)
    if len(deviations) > 20:
        out_console.print(f"  ... and {len(deviations) - 20} more (see report.md)")
    files = written or [out / "results.json", out / "report.md", out / "report.html"]
    out_console.print("wrote " + ", ".join(str(p) for p in files), markup=False)
