"""Compare two results documents cell by cell and flag regressions (for ``dbmatrix diff OLD NEW`` in CI)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..redaction import scrub
from ..results import ALLOWED, DEVIATION, DIFFERS, ERROR, FAIL, PASS, PREVENTED, SUPPORTED, UNSUPPORTED
from ._model import params_text

CellKey = tuple[str, str, str, str]

# Outcome transitions that mean the stack got worse even when expectations were not updated.
_WORSE_TRANSITIONS = {
    (SUPPORTED, UNSUPPORTED),
    (SUPPORTED, DIFFERS),
    (PREVENTED, ALLOWED),
    (PASS, FAIL),
}


@dataclass(frozen=True)
class Change:
    case: str
    target: str
    driver: str
    params: dict[str, Any]
    old_outcome: str | None  # None: the cell did not exist in the old document
    new_outcome: str | None  # None: the cell disappeared
    worse: bool
    old_verdict: str | None = None
    new_verdict: str | None = None


def _key(cell: dict[str, Any]) -> CellKey:
    return (str(cell.get("case")), str(cell.get("target")), cell.get("driver") or "",
            json.dumps(cell.get("params") or {}, sort_keys=True))


def _index(doc: dict[str, Any]) -> dict[CellKey, dict[str, Any]]:
    return {_key(c): c for c in doc.get("results") or []}


def _is_worse(old: dict[str, Any] | None, new: dict[str, Any] | None) -> bool:
    if new is None:
        return False  # a vanished cell is a coverage question, not a regression
    old_outcome = old.get("outcome") if old else None
    old_verdict = old.get("verdict") if old else None
    new_outcome = new.get("outcome")
    if new.get("verdict") == DEVIATION and old_verdict != DEVIATION:
        return True
    if new_outcome in (ERROR, FAIL) and new_outcome != old_outcome:
        return True
    return (old_outcome, new_outcome) in _WORSE_TRANSITIONS


def diff_documents(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """Every cell whose outcome or verdict changed, appeared or disappeared, sorted by cell key."""
    before, after = _index(old), _index(new)
    changes = []
    for key in sorted(before.keys() | after.keys()):
        o, n = before.get(key), after.get(key)
        old_pair = (o.get("outcome"), o.get("verdict")) if o else (None, None)
        new_pair = (n.get("outcome"), n.get("verdict")) if n else (None, None)
        if old_pair == new_pair:
            continue
        case, target, driver, params = key
        changes.append(
            Change(
                case=case,
                target=target,
                driver=driver,
                params=json.loads(params),
                old_outcome=old_pair[0],
                new_outcome=new_pair[0],
                worse=_is_worse(o, n),
                old_verdict=old_pair[1],
                new_verdict=new_pair[1],
            )
        )
    return changes


def any_worse(changes: list[Change]) -> bool:
    return any(c.worse for c in changes)


def render_diff(changes: list[Change]) -> str:
    """One plain-text line per change, e.g. ``WORSE  types.int_limits  postgres/psycopg  supported -> differs``."""
    if not changes:
        return "no changes\n"
    lines = []
    for c in changes:
        case = f"{c.case} [{params_text(c.params)}]" if c.params else c.case
        line = f"{'WORSE' if c.worse else 'change':<6} {case}  {c.target}/{c.driver}  "
        line += f"{c.old_outcome or '(none)'} -> {c.new_outcome or '(none)'}"
        if c.old_verdict != c.new_verdict and (c.old_verdict or c.new_verdict):
            line += f"  (verdict {c.old_verdict or '-'} -> {c.new_verdict or '-'})"
        lines.append(line)
    return scrub("\n".join(lines) + "\n", known=False)
