"""Shape a results document into per-family matrices and findings, shared by the Markdown and HTML renderers.

Works on the plain dict of ``results.load_document`` only, so reports render offline from a saved run.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from ..redaction import scrub
from ..results import DEVIATION, ERROR, MEASURED, OUTCOMES, PASS, SUPPORTED, UNSUPPORTED

# Outcomes that need no explanation; every other cell (and every deviation) becomes part of a finding.
QUIET_OUTCOMES = frozenset({SUPPORTED, PASS, MEASURED})
NO_CELL = "·"
NO_DRIVER = "(no driver)"  # cells of target-only cases carry driver None

Column = tuple[str, str]  # (target, driver); driver "" for target-only cells
RowKey = tuple[str, str]  # (case, params as sorted JSON)


def text(value: object) -> str:
    """Text for display: None becomes empty, and any secret is masked before it can be escaped out of reach."""
    return "" if value is None else scrub(value, known=False)


def one_line(value: object, limit: int | None = None) -> str:
    """``text`` with whitespace collapsed (server messages carry newlines), cut to ``limit`` characters."""
    out = " ".join(text(value).split())
    if limit is not None and len(out) > limit:
        out = out[: limit - 1].rstrip() + "…"
    return out


def plural(n: int, word: str) -> str:
    """``1 row``, ``2 rows``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def family_of(case_id: str) -> str:
    return case_id.split(".", 1)[0]


def params_text(params: dict[str, Any] | None) -> str:
    """Compact ``key=value, key=value`` form (strings unquoted, so ``isolation=repeatable read``)."""
    if not params:
        return ""
    return ", ".join(f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in sorted(params.items()))


def driver_label(driver: str | None) -> str:
    return driver or NO_DRIVER


def cell_place(target: object, driver: object) -> str:
    """``postgres/asyncpg``, or just ``postgres`` for a target-only cell."""
    return f"{text(target)}/{text(driver)}" if driver else text(target)


def column_of(cell: dict[str, Any]) -> Column:
    return (str(cell.get("target")), cell.get("driver") or "")


def row_of(cell: dict[str, Any]) -> RowKey:
    return (str(cell.get("case")), json.dumps(cell.get("params") or {}, sort_keys=True))


def row_label(row: RowKey) -> str:
    params = json.loads(row[1])
    return f"{row[0]} ({params_text(params)})" if params else row[0]


def is_deviation(cell: dict[str, Any]) -> bool:
    return cell.get("verdict") == DEVIATION


def needs_attention(cell: dict[str, Any]) -> bool:
    """A deviation from expectations or a harness error: what a reviewer must look at first."""
    return is_deviation(cell) or cell.get("outcome") == ERROR


def short_text(cell: dict[str, Any]) -> str:
    """The cell's visible text; a deviation is marked so it survives in monochrome and plain text."""
    outcome = str(cell.get("outcome", "?"))
    return f"{outcome} ⚠" if is_deviation(cell) else outcome


def is_finding(cell: dict[str, Any]) -> bool:
    """Whether a cell says something beyond "works": an unusual outcome, a deviation, or findings of its own."""
    if is_impossible(cell):
        return False
    return cell.get("outcome") not in QUIET_OUTCOMES or is_deviation(cell) or bool(cell.get("findings"))


def is_impossible(cell: dict[str, Any]) -> bool:
    """A parameter combination that cannot exist (an isolation level the engine does not have), refused as
    expected: a cell only because cases are parametrised over every engine's levels, never a finding."""
    return (cell.get("outcome") == UNSUPPORTED and cell.get("mechanism") == "error:IsolationUnsupported"
            and not is_deviation(cell) and " has no isolation level " in str(cell.get("detail") or ""))


def impossible_cells(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in doc.get("results") or [] if is_impossible(c)]


def expected_reasons(cells: list[dict[str, Any]]) -> list[str]:
    """The distinct reasons the expectations give for these cells' outcomes (``expected_reason``), in order."""
    return list(dict.fromkeys(one_line(c["expected_reason"]) for c in cells if c.get("expected_reason")))


def detail_line(cell: dict[str, Any]) -> str:
    """``case · target/driver: outcome (mechanism) — detail [expected X, verdict Y]`` on one line."""
    head = text(cell.get("case"))
    if cell.get("params"):
        head += f" [{text(params_text(cell['params']))}]"
    line = f"{head} · {cell_place(cell.get('target'), cell.get('driver'))}: {text(cell.get('outcome'))}"
    if cell.get("mechanism"):
        line += f" ({text(cell['mechanism'])})"
    if cell.get("detail"):
        line += f" — {text(cell['detail'])}"
    verdict = [f"{k} {text(cell[k])}" for k in ("expected", "verdict") if cell.get(k)]
    if cell.get("expected_reason"):
        verdict.append(f"why expected: {text(cell['expected_reason'])}")
    if verdict:
        line += f" [{', '.join(verdict)}]"
    return " ".join(line.split())  # newlines in server messages would break a list item


@dataclass
class Finding:
    """Cells of one family that share an outcome and a reason: one line in the report, however many cells."""

    family: str
    outcome: str
    reason: str
    mechanism: str
    cells: list[dict[str, Any]] = field(default_factory=list)

    @property
    def deviations(self) -> int:
        return sum(1 for c in self.cells if is_deviation(c))

    @property
    def attention(self) -> bool:
        return self.outcome == ERROR or self.deviations > 0

    @property
    def why(self) -> list[str]:
        """Why the expectations predict this outcome (the reasons of the matching entries)."""
        return expected_reasons(self.cells)


@dataclass
class Family:
    name: str
    columns: list[Column] = field(default_factory=list)
    rows: list[RowKey] = field(default_factory=list)
    cells: dict[tuple[RowKey, Column], dict[str, Any]] = field(default_factory=dict)

    def row_label(self, row: RowKey) -> str:
        return row_label(row)

    def row_cells(self, row: RowKey) -> list[dict[str, Any]]:
        return [self.cells[(row, c)] for c in self.columns if (row, c) in self.cells]

    def is_impossible(self, row: RowKey) -> bool:
        """Every cell of the row is a combination that cannot exist (e.g. a level no target here has)."""
        cells = self.row_cells(row)
        return bool(cells) and all(map(is_impossible, cells))

    def is_uniform(self, row: RowKey) -> bool:
        """Two or more cells, one outcome, no deviation: nothing differs between engines or drivers."""
        cells = self.row_cells(row)
        return len(cells) > 1 and len({c.get("outcome") for c in cells}) == 1 and not any(map(is_deviation, cells))

    def targets(self) -> list[str]:
        return list(dict.fromkeys(t for t, _ in self.columns))

    def drivers_of(self, target: str) -> list[str]:
        return [d for t, d in self.columns if t == target]

    def details(self) -> list[dict[str, Any]]:
        return [self.cells[(r, c)] for r in self.rows for c in self.columns if (r, c) in self.cells
                and is_finding(self.cells[(r, c)])]

    def findings(self) -> list[Finding]:
        """Finding cells grouped by (outcome, mechanism, reason); harness errors and deviations first, then largest."""
        groups: dict[tuple[str, str, str], Finding] = {}
        for cell in self.details():
            key = (str(cell.get("outcome")), one_line(cell.get("mechanism")), one_line(cell.get("detail")))
            groups.setdefault(key, Finding(self.name, key[0], key[2], key[1])).cells.append(cell)
        return sorted(groups.values(), key=lambda f: (not f.attention, -len(f.cells), f.outcome, f.reason))

    def where(self, cells: list[dict[str, Any]]) -> str:
        """Which cells, compactly: ``case_a, case_b: sqlite (all 6 drivers), postgres (asyncpg, psycopg)``."""
        by_row: dict[RowKey, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
        for c in cells:
            target, driver = column_of(c)
            by_row[row_of(c)][target].append(driver)
        by_spot: dict[str, list[str]] = defaultdict(list)
        for row in sorted(by_row):
            spots = []
            for target in self.targets():
                drivers = by_row[row].get(target)
                if not drivers:
                    continue
                every = self.drivers_of(target)
                if len(every) > 1 and set(drivers) >= set(every):
                    spots.append(f"{target} (all {len(every)} drivers)")
                elif drivers == [""]:
                    spots.append(target)
                else:
                    spots.append(f"{target} ({', '.join(driver_label(d) for d in sorted(drivers))})")
            by_spot["; ".join(spots)].append(row)
        return " · ".join(f"{self._rows_text(rows)}: {spot}" for spot, rows in by_spot.items())

    def _rows_text(self, rows: list[RowKey]) -> str:
        """Rows compactly: ``every row`` of the family, else each case once with the parameter values it covers
        (``isolation.dirty_write (isolation=read committed | serializable)``)."""
        real = [r for r in self.rows if not self.is_impossible(r)]
        if len(rows) > 1 and set(rows) >= set(real):
            return f"every {self.name} row"
        by_case: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for case, params in rows:
            by_case[case].append(json.loads(params))
        parts = []
        for case, variants in by_case.items():
            keys = sorted({k for p in variants for k in p})
            if len(keys) != 1 or len(variants) == 1:
                parts += [row_label((case, json.dumps(p, sort_keys=True))) for p in variants]
                continue
            values = [params_text({keys[0]: p.get(keys[0])}).split("=", 1)[1] for p in variants]
            parts.append(f"{case} ({keys[0]}={' | '.join(values)})")
        return ", ".join(parts)


def column_sort_key(doc: dict[str, Any]) -> Any:
    """Columns follow the order of the document's targets (the order the user gave), then driver name."""
    order = {t.get("name"): i for i, t in enumerate(doc.get("targets") or []) if isinstance(t, dict)}
    return lambda col: (order.get(col[0], len(order)), col[0], col[1])


def families(doc: dict[str, Any]) -> list[Family]:
    """One matrix per case family, sorted by name; columns by target then driver, rows by case then params."""
    by_name: dict[str, Family] = {}
    for cell in doc.get("results") or []:
        fam = by_name.setdefault(family_of(cell["case"]), Family(family_of(cell["case"])))
        # A later duplicate wins, matching results.merge_documents.
        fam.cells[(row_of(cell), column_of(cell))] = cell
    key = column_sort_key(doc)
    for fam in by_name.values():
        fam.columns = sorted({c for _, c in fam.cells}, key=key)
        fam.rows = sorted({r for r, _ in fam.cells})
    return [by_name[n] for n in sorted(by_name)]


def all_columns(doc: dict[str, Any], fams: list[Family]) -> list[Column]:
    return sorted({c for f in fams for c in f.columns}, key=column_sort_key(doc))


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


def outcomes_used(doc: dict[str, Any]) -> list[str]:
    return [o for o, _ in summary(doc)[0]]


def duration_text(doc: dict[str, Any]) -> str:
    """``2 min 31 s`` between the run's start and finish, or empty when either is missing."""
    import datetime as dt

    run = doc.get("run") or {}
    try:
        seconds = int((dt.datetime.fromisoformat(run["finished"]) - dt.datetime.fromisoformat(run["started"]))
                      .total_seconds())
    except (KeyError, TypeError, ValueError):
        return ""
    return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"


def skipped_targets(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for t in doc.get("targets") or [] if isinstance(t, dict) and t.get("status") != "ok"]


def target_properties(target: dict[str, Any]) -> str:
    """``pooler transaction, replica of postgres`` for the target properties expectations match on."""
    parts = []
    if target.get("pooler"):
        parts.append(f"pooler {text(target['pooler'])}")
    if target.get("replica_of"):
        parts.append(f"replica of {text(target['replica_of'])}")
    return ", ".join(parts)


def libraries_text(doc: dict[str, Any]) -> str:
    """``asyncpg 0.30.0, psycopg 3.2.3, …`` from the run record (installed libraries only)."""
    libs = (doc.get("run") or {}).get("libraries")
    if not isinstance(libs, dict):
        return ""
    return ", ".join(f"{text(k)} {text(v)}" for k, v in sorted(libs.items()) if v)
