"""Findings a project accepts knowingly, each with its reason: ``[tool.dbmatrix.migrate]`` in ./pyproject.toml
(or ``[migrate]`` in ./dbmatrix.toml)::

    [tool.dbmatrix.migrate.irreversible]      # revision = why its downgrade does not restore (by design)
    p03_drop_full_name = "full_name is dropped for good; restore from a backup instead"

    [[tool.dbmatrix.migrate.accept]]          # one named finding: check, revision, (lint) rule, reason
    check = "lint"
    revision = "p03_drop_full_name"
    rule = "ban-drop-column"
    reason = "no client reads full_name since release 4"

A waived cell keeps its outcome (the finding is real, and counted) and its detail; the reason is put in front of
the detail and in its findings, its expected outcome becomes that outcome, so it no longer makes the run red. Only
``fail`` is waived: an ``error`` is dbmatrix's own bug and never a finding to accept.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..results import AS_EXPECTED, FAIL
from .checks import CHECKS, PER_REVISION

IRREVERSIBLE = ("downgrade_restores", "reupgrade")  # a downgrade that does not restore fails both
KEYS = ("irreversible", "accept")
ACCEPT_KEYS = ("check", "revision", "rule", "target", "reason")


@dataclass(frozen=True)
class Waiver:
    checks: tuple[str, ...]
    revision: str | None
    reason: str
    rule: str | None = None  # lint: the squawk rule accepted (None: the check's every finding)
    target: str | None = None  # None: on every target

    def covers(self, check: str, revision: str | None, target: str) -> bool:
        return (check in self.checks and (self.revision is None or self.revision == revision)
                and (self.target is None or self.target == target))


def waived_by(waivers: Iterable[Waiver], check: str, revision: str | None, target: str, outcome: str,
              findings: list[dict[str, Any]]) -> list[Waiver]:
    """The waivers that accept this result (all of its lint findings, for ``lint``); empty when none does."""
    if outcome != FAIL:
        return []
    hits = [w for w in waivers if w.covers(check, revision, target)]
    if check == "lint" and hits and all(w.rule is not None for w in hits):
        rules = {str(f.get("rule")) for f in findings}
        hits = [w for w in hits if w.rule in rules]
        if not hits or not rules <= {w.rule for w in hits}:
            return []  # a finding nobody accepted keeps the cell red
    return hits


def reason_of(hits: list[Waiver]) -> str:
    return "; ".join(dict.fromkeys(w.reason for w in hits))


def waive(cell: Any, hits: list[Waiver]) -> None:
    """Mark a CellResult waived: reason in front of the detail and in its findings, expected = its outcome."""
    reason = reason_of(hits)
    cell.detail = f"waived ({reason}): {cell.detail or ''}".rstrip(": ")
    cell.findings = [*cell.findings, {"waived": reason}]
    cell.expected, cell.verdict = cell.outcome, AS_EXPECTED


def is_waived(cell: Any) -> bool:
    return any("waived" in f for f in cell.findings)


def load_waivers(cwd: Path, revisions: list[str] | None) -> list[Waiver]:
    """The project's waivers, checked: one line (UsageError) for a key, check, revision or reason that is wrong.
    ``revisions``: the chain's revision ids (None when the chain cannot be read: migrate.single_head says why)."""
    path, table = _section(cwd)
    if path is None:
        return []

    def bad(msg: str) -> UsageError:
        return UsageError(f"{path}: [{where}] {msg}")

    where = "migrate" if path.name == "dbmatrix.toml" else "tool.dbmatrix.migrate"
    _only(table, KEYS, bad)
    out: list[Waiver] = []
    irreversible = table.get("irreversible", {})
    if not isinstance(irreversible, dict):
        raise bad("irreversible must be a table of REVISION = \"reason\"")
    for rev, reason in irreversible.items():
        out.append(Waiver(IRREVERSIBLE, _revision(rev, revisions, bad, "irreversible"),
                          _reason(reason, bad, f"irreversible {rev!r}")))
    accept = table.get("accept", [])
    if not isinstance(accept, list) or not all(isinstance(a, dict) for a in accept):
        raise bad("accept must be an array of tables ([[...accept]] with check, revision, reason)")
    known = (*CHECKS, "cross_engine")
    for i, entry in enumerate(accept, 1):
        what = f"accept #{i}"
        _only(entry, ACCEPT_KEYS, bad, what)
        check = entry.get("check")
        if check not in known:
            raise bad(f"{what}: check must be one of {', '.join(known)}, not {check!r}")
        rev = entry.get("revision")
        if rev is None and check in PER_REVISION:
            raise bad(f"{what}: migrate.{check} is judged per revision: name the revision")
        rule = entry.get("rule")
        if rule is not None and (check != "lint" or not isinstance(rule, str) or not rule):
            raise bad(f"{what}: rule names a squawk rule of check = \"lint\" only")
        target = entry.get("target")
        if target is not None and (not isinstance(target, str) or not target):
            raise bad(f"{what}: target must be a target name")
        out.append(Waiver((check,), None if rev is None else _revision(rev, revisions, bad, what),
                          _reason(entry.get("reason"), bad, what), rule, target))
    return out


def _section(cwd: Path) -> tuple[Path | None, dict[str, Any]]:
    for path, dig in ((cwd / "dbmatrix.toml", ("migrate",)), (cwd / "pyproject.toml", ("tool", "dbmatrix", "migrate"))):
        if not path.is_file():
            continue
        try:
            data: Any = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise UsageError(f"cannot read {path}: {exc}") from None
        for key in dig:
            data = data.get(key) if isinstance(data, dict) else None
        if data is None:
            continue
        if not isinstance(data, dict):
            raise UsageError(f"{path}: [{'.'.join(dig)}] must be a table")
        return path, data
    return None, {}


def _only(table: dict[str, Any], valid: tuple[str, ...], bad: Any, what: str = "") -> None:
    unknown = sorted(str(k) for k in table if k not in valid)
    if unknown:
        raise bad(f"{what + ': ' if what else ''}unknown key {unknown[0]!r}; valid: {', '.join(valid)}")


def _revision(rev: Any, revisions: list[str] | None, bad: Any, what: str) -> str:
    if not isinstance(rev, str) or not rev:
        raise bad(f"{what}: revision must be a revision id")
    if revisions is not None and rev not in revisions:
        raise bad(f"{what}: no revision {rev!r} in the chain")
    return rev


def _reason(reason: Any, bad: Any, what: str) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise bad(f"{what}: a waiver needs its reason (reason = \"why this is accepted\")")
    return reason.strip()
