"""Shape a results document into per-family matrices, shared by the Markdown and HTML renderers.

Works on the plain dict of ``results.load_document`` only, so reports render offline from a saved run.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..redaction import scrub
from ..results import DEVIATION, MEASURED, OUTCOMES, PASS, SUPPORTED

# Outcomes that need no explanation; every other cell (and every deviation) gets a "Details" line.
QUIET_OUTCOMES = frozenset({SUPPORTED, PASS, MEASURED})
NO_CELL = "·"

Column = tuple[str, str]  # (target, driver)
RowKey = tuple[str, str]  # (case, params as sorted JSON)


def text(value: object) -> str:
    """Text for display: None becomes empty, and any secret is masked before it can be escaped out of reach."""
    return "" if value is None else scrub(value, known=False)


def family_of(case_id: str) -> str:
    return case_id.split(".", 1)[0]


def params_text(params: dict[str, Any] | None) -> str:
    """Compact ``key=value, key=value`` form (strings unquoted, so ``isolation=repeatable read``)."""
    if not params:
        return ""
    return ", ".join(f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in sorted(params.items()))


def is_deviation(cell: dict[str, Any]) -> bool:
    return cell.get("verdict") == DEVIATION


def short_text(cell: dict[str, Any]) -> str:
    """The cell's visible text; a deviation is marked so it survives in monochrome and plain text."""
    outcome = str(cell.get("outcome", "?"))
    return f"{outcome} ⚠" if is_deviation(cell) else outcome


def needs_detail(cell: dict[str, Any]) -> bool:
    return cell.get("outcome") not in QUIET_OUTCOMES or is_deviation(cell)


def detail_line(cell: dict[str, Any]) -> str:
    """``case · target/driver: outcome (mechanism) — detail [expected X, verdict Y]`` on one line."""
    head = text(cell.get("case"))
    if cell.get("params"):
        head += f" [{text(params_text(cell['params']))}]"
    line = f"{head} · {text(cell.get('target'))}/{text(cell.get('driver'))}: {text(cell.get('outcome'))}"
    if cell.get("mechanism"):
        line += f" ({text(cell['mechanism'])})"
    if cell.get("detail"):
        line += f" — {text(cell['detail'])}"
    verdict = [f"{k} {text(cell[k])}" for k in ("expected", "verdict") if cell.get(k)]
    if verdict:
        line += f" [{', '.join(verdict)}]"
    return " ".join(line.split())  # newlines in server messages would break a list item


@dataclass
class Family:
    name: str
    columns: list[Column] = field(default_factory=list)
    rows: list[RowKey] = field(default_factory=list)
    cells: dict[tuple[RowKey, Column], dict[str, Any]] = field(default_factory=dict)

    def row_label(self, row: RowKey) -> str:
        params = json.loads(row[1])
        return f"{row[0]} ({params_text(params)})" if params else row[0]

    def details(self) -> list[dict[str, Any]]:
        return [
            self.cells[(r, c)]
            for r in self.rows
            for c in self.columns
            if (r, c) in self.cells and needs_detail(self.cells[(r, c)])
        ]


def families(doc: dict[str, Any]) -> list[Family]:
    """One matrix per case family, sorted by name; columns sorted by target then driver, rows by case then params."""
    by_name: dict[str, Family] = {}
    for cell in doc.get("results") or []:
        fam = by_name.setdefault(family_of(cell["case"]), Family(family_of(cell["case"])))
        row = (cell["case"], json.dumps(cell.get("params") or {}, sort_keys=True))
        col = (cell["target"], cell["driver"])
        # A later duplicate wins, matching results.merge_documents.
        fam.cells[(row, col)] = cell
    for fam in by_name.values():
        fam.columns = sorted({c for _, c in fam.cells})
        fam.rows = sorted({r for r, _ in fam.cells})
    return [by_name[n] for n in sorted(by_name)]


def summary(doc: dict[str, Any]) -> tuple[list[tuple[str, int]], int, int]:
    """(outcome counts in vocabulary order, total cells, deviations)."""
    results = doc.get("results") or []
    counts = Counter(r.get("outcome") for r in results)
    ordered = [(o, counts[o]) for o in OUTCOMES if counts[o]]
    ordered += [(str(o), n) for o, n in counts.items() if o not in OUTCOMES]  # never hide a malformed cell
    return ordered, len(results), sum(1 for r in results if is_deviation(r))


def summary_line(doc: dict[str, Any]) -> str:
    counts, total, deviations = summary(doc)
    parts = ", ".join(f"{o} {n}" for o, n in counts) or "no cells"
    return f"{total} cells: {parts}; deviations: {deviations}"
