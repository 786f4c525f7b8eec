"""Compare two results documents cell by cell (``dbmatrix diff OLD NEW``, e.g. a pull request against main).

Each cell present in both runs whose outcome or verdict changed is labelled ``worse``, ``better`` or
``changed``. A cell in one run only (a target, driver or case added or left out) is never ``worse``: nothing
got worse where nothing was compared. Cells only in the new run are counted, and listed as ``new`` when they
need a look (a deviation or a harness error); cells only in the old run are counted. So a run that only adds
targets exits 0, and a subset run compared with a full one stays readable.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..redaction import scrub
from ..results import (
    ALLOWED,
    DEVIATION,
    DIFFERS,
    ERROR,
    FAIL,
    NOT_FOUND,
    PASS,
    PREVENTED,
    SKIPPED,
    SUPPORTED,
    UNSUPPORTED,
)
from ._model import cell_place, driver_label, family_of, one_line, params_text, plural

CellKey = tuple[str, str, str, str]
WORSE, BETTER, CHANGED, NEW = "worse", "better", "changed", "new"
LABELS = (WORSE, BETTER, CHANGED, NEW)  # NEW: only in the new run, and a deviation or an error

# Outcome transitions that mean the stack got worse even when expectations were not updated; reversed: better.
_WORSE_TRANSITIONS = {
    (SUPPORTED, UNSUPPORTED),
    (SUPPORTED, DIFFERS),
    (DIFFERS, UNSUPPORTED),
    (PREVENTED, ALLOWED),
    (NOT_FOUND, ALLOWED),  # a search that found nothing now finds a counterexample
    (PASS, FAIL),
}
_BAD = (ERROR, FAIL)


@dataclass(frozen=True)
class Change:
    case: str
    target: str
    driver: str | None
    params: dict[str, Any]
    old_outcome: str | None  # None: the cell did not exist in the old document
    new_outcome: str | None
    label: str
    old_verdict: str | None = None
    new_verdict: str | None = None
    detail: str | None = None  # the new cell's detail (why it is what it is now)

    @property
    def worse(self) -> bool:
        return self.label == WORSE

    def cell_text(self) -> str:
        case = f"{self.case} [{params_text(self.params)}]" if self.params else self.case
        return f"{case}  {cell_place(self.target, self.driver)}"

    def transition(self) -> str:
        text = f"{self.old_outcome or '(none)'} -> {self.new_outcome or '(none)'}"
        if self.old_verdict != self.new_verdict and (self.old_verdict or self.new_verdict):
            text += f"  (verdict {self.old_verdict or '-'} -> {self.new_verdict or '-'})"
        return text


@dataclass
class DiffReport:
    old_run: dict[str, Any]
    new_run: dict[str, Any]
    old_cells: int
    new_cells: int
    changes: list[Change] = field(default_factory=list)
    only_old: list[CellKey] = field(default_factory=list)  # only in the old run
    only_new: list[CellKey] = field(default_factory=list)  # only in the new run (the bad ones are also NEW changes)
    warnings: list[str] = field(default_factory=list)

    def count(self, label: str) -> int:
        return sum(1 for c in self.changes if c.label == label)

    @property
    def any_worse(self) -> bool:
        return any(c.worse for c in self.changes)

    def summary_line(self) -> str:
        compared = self.old_cells - len(self.only_old)
        parts = [f"{self.count(label)} {label}" for label in (WORSE, BETTER, CHANGED)]
        parts.append(f"{plural(compared, 'cell')} compared")
        if self.only_new:
            bad = self.count(NEW)
            parts.append(f"{plural(len(self.only_new), 'cell')} only in the new run"
                         + (f" ({bad} of them deviations or errors, listed as new)" if bad else ""))
        if self.only_old:
            parts.append(f"{plural(len(self.only_old), 'cell')} only in the old run")
        return "summary: " + ", ".join(parts)


def _key(cell: dict[str, Any]) -> CellKey:
    return (str(cell.get("case")), str(cell.get("target")), cell.get("driver") or "",
            json.dumps(cell.get("params") or {}, sort_keys=True))


def _index(doc: dict[str, Any]) -> dict[CellKey, dict[str, Any]]:
    return {_key(c): c for c in doc.get("results") or [] if isinstance(c, dict)}


def label_of(old: dict[str, Any] | None, new: dict[str, Any]) -> str:
    """worse / better / changed for a cell whose outcome or verdict differs between the runs."""
    old = old or {}
    old_outcome, new_outcome = old.get("outcome"), new.get("outcome")
    old_dev, new_dev = old.get("verdict") == DEVIATION, new.get("verdict") == DEVIATION
    if (new_dev and not old_dev) or (new_outcome in _BAD and new_outcome != old_outcome):
        return WORSE
    if (old_outcome, new_outcome) in _WORSE_TRANSITIONS and not (old_dev and not new_dev):
        return WORSE
    if (old_dev and not new_dev) or (old_outcome in _BAD and new_outcome not in (*_BAD, SKIPPED)):
        return BETTER
    if (new_outcome, old_outcome) in _WORSE_TRANSITIONS:
        return BETTER
    return CHANGED


def _change(key: CellKey, old: dict[str, Any] | None, new: dict[str, Any], label: str) -> Change:
    case, target, driver, params = key
    return Change(
        case=case, target=target, driver=driver or None, params=json.loads(params),
        old_outcome=old.get("outcome") if old else None, new_outcome=new.get("outcome"), label=label,
        old_verdict=old.get("verdict") if old else None, new_verdict=new.get("verdict"),
        detail=new.get("detail"),
    )


def _breakdown(keys: list[CellKey]) -> str:
    by_target = Counter(k[1] for k in keys)
    by_family = Counter(family_of(k[0]) for k in keys)
    parts = []
    if by_target:
        parts.append("targets: " + ", ".join(f"{t} {n}" for t, n in sorted(by_target.items())))
    if by_family:
        parts.append("families: " + ", ".join(f"{f} {n}" for f, n in sorted(by_family.items())))
    return "; ".join(parts)


def compare(old: dict[str, Any], new: dict[str, Any]) -> DiffReport:
    """The whole comparison: labelled changes, counted coverage differences and warnings."""
    before, after = _index(old), _index(new)
    report = DiffReport(old.get("run") or {}, new.get("run") or {}, len(before), len(after))
    for key in sorted(before.keys() | after.keys()):
        o, n = before.get(key), after.get(key)
        if n is None:
            report.only_old.append(key)
        elif o is None:
            report.only_new.append(key)
            if n.get("verdict") == DEVIATION or n.get("outcome") == ERROR:
                report.changes.append(_change(key, None, n, NEW))
        elif (o.get("outcome"), o.get("verdict")) != (n.get("outcome"), n.get("verdict")):
            report.changes.append(_change(key, o, n, label_of(o, n)))
    report.changes.sort(key=lambda c: (LABELS.index(c.label), c.case, c.target, c.driver or "", str(c.params)))
    report.warnings = _warnings(old, new, report)
    return report


def _target_names(doc: dict[str, Any]) -> set[str]:
    names = {t.get("name") for t in doc.get("targets") or [] if isinstance(t, dict) and t.get("status") == "ok"}
    return names | {c.get("target") for c in doc.get("results") or [] if isinstance(c, dict)}


def _warnings(old: dict[str, Any], new: dict[str, Any], report: DiffReport) -> list[str]:
    out = []
    if not report.new_run.get("complete", True):
        out.append(f"the new run {report.new_run.get('id')} is incomplete (complete: false): "
                   f"{plural(len(report.only_old), 'cell')} of the old run are missing from it")
    if not report.old_run.get("complete", True):
        out.append(f"the old run {report.old_run.get('id')} is incomplete (complete: false)")
    old_targets, new_targets = _target_names(old) - {None}, _target_names(new) - {None}
    if old_targets and new_targets and not old_targets & new_targets:
        out.append(f"the runs have no target in common (old: {', '.join(sorted(old_targets))}; "
                   f"new: {', '.join(sorted(new_targets))}): nothing was compared")
    return out


def diff_documents(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """The labelled changes only (see ``compare`` for coverage counts and warnings)."""
    return compare(old, new).changes


def any_worse(changes: list[Change]) -> bool:
    return any(c.worse for c in changes)


def _run_text(run: dict[str, Any], cells: int) -> str:
    extra = "" if run.get("complete", True) else ", incomplete"
    return f"{run.get('id') or '?'} ({plural(cells, 'cell')}{extra})"


def render_diff(report: DiffReport | list[Change]) -> str:
    """Plain text: header, warnings, one line per change (worse, better, changed, new), coverage counts, a
    summary line."""
    if isinstance(report, list):
        report = DiffReport({}, {}, 0, 0, changes=report)
    lines = []
    if report.old_run or report.new_run:
        lines.append(f"old {_run_text(report.old_run, report.old_cells)} -> "
                     f"new {_run_text(report.new_run, report.new_cells)}")
    lines += [f"warning: {w}" for w in report.warnings]
    for c in report.changes:
        line = f"{c.label:<7} {c.cell_text()}  {c.transition()}"
        if c.label in (WORSE, NEW) and c.detail:
            line += f" — {one_line(c.detail, 120)}"
        lines.append(line)
    if report.only_new:
        lines.append(f"{plural(len(report.only_new), 'cell')} only in the new run ({_breakdown(report.only_new)})")
    if report.only_old:
        lines.append(f"{plural(len(report.only_old), 'cell')} only in the old run ({_breakdown(report.only_old)})")
    if not report.changes:
        lines.append("no changes")
    lines.append(report.summary_line())
    return scrub("\n".join(lines) + "\n", known=False)


def render_diff_markdown(report: DiffReport) -> str:
    """The same as ``render_diff`` as Markdown, for a pull-request comment."""
    lines = [f"## dbmatrix diff: {_run_text(report.old_run, report.old_cells)} → "
             f"{_run_text(report.new_run, report.new_cells)}", "", f"**{report.summary_line()}**", ""]
    lines += [f"> ⚠ {w}" for w in report.warnings]
    for label in LABELS:
        changes = [c for c in report.changes if c.label == label]
        if not changes:
            continue
        lines += ["", f"### {label} ({len(changes)})", "", "| case | target / driver | outcome | detail |",
                  "|---|---|---|---|"]
        for c in changes[:100]:
            case = f"{c.case} [{params_text(c.params)}]" if c.params else c.case
            cells = [case, f"{c.target} / {driver_label(c.driver)}", c.transition(), one_line(c.detail, 100)]
            lines.append("| " + " | ".join(x.replace("|", "\\|") for x in cells) + " |")
        if len(changes) > 100:
            lines.append(f"\n… and {len(changes) - 100} more")
    return scrub("\n".join(lines) + "\n", known=False)
