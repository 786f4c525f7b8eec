"""The migration checks: one registered function per invariant, judging what a walk observed.

Each returns CheckResults (case id ``migrate.<name>``); a failure names the revision and shows the exact
catalog difference or the engine's error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..results import FAIL, MEASURED, PASS, SKIPPED, UNSUPPORTED
from .catalog import Catalog, diff_catalogs, portable
from .sqltext import compare_statements
from .walk import Walk


@dataclass
class CheckResult:
    check: str
    outcome: str
    revision: str | None = None
    detail: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    findings: list[dict[str, Any]] = field(default_factory=list)

    @property
    def case(self) -> str:
        return f"migrate.{self.check}"


CHECKS: dict[str, Callable[[Walk], list[CheckResult]]] = {}


def check(name: str) -> Callable[[Callable[[Walk], list[CheckResult]]], Callable[[Walk], list[CheckResult]]]:
    def register(fn: Callable[[Walk], list[CheckResult]]) -> Callable[[Walk], list[CheckResult]]:
        CHECKS[name] = fn
        return fn
    return register


def judge(walk: Walk) -> list[CheckResult]:
    """Every registered check over one walk, in registration order; then, for each per-revision check, every
    revision it could not judge on this target as ``skipped`` with the reason (nothing vanishes silently)."""
    out: list[CheckResult] = []
    for fn in CHECKS.values():
        out += fn(walk)
    return out + not_judged(walk, out)


# per-revision checks, with the walks they apply to (the others' cells do not exist: see matrix_cases.CASE_CHECKS)
PER_REVISION: dict[str, Callable[[Walk], bool]] = {
    "upgrade": lambda w: True,
    "downgrade_restores": lambda w: True,
    "reupgrade": lambda w: True,
    "offline_sql": lambda w: "offline" in w.extra,
    "duration": lambda w: True,
    "locks": lambda w: w.engine in ("postgresql", "mysql"),
    "lint": lambda w: w.engine == "postgresql",
}


def not_judged(walk: Walk, judged: list[CheckResult]) -> list[CheckResult]:
    """A ``skipped`` result, saying why, for each (per-revision check, revision) of the chain without a result."""
    have = {(r.check, r.revision) for r in judged}
    return [CheckResult(name, SKIPPED, step.id, detail=f"revision {step.id}: {why_not(walk, name, step.id)}")
            for name, applies in PER_REVISION.items() if applies(walk)
            for step in walk.steps if (name, step.id) not in have]


def why_no_head(walk: Walk) -> str:
    """Why the walk has no head catalog on this target."""
    failed = next((r for r in walk.records if r.up_error), None)
    if failed is not None:
        return f"the chain did not reach its head on this target: revision {failed.step.id} failed to upgrade"
    if walk.records:
        return f"the chain did not reach its head on this target: the walk stopped at {walk.records[-1].step.id}"
    return f"the chain was not walked on this target{f': {walk.chain_error}' if walk.chain_error else ''}"


def why_not(walk: Walk, check: str, revision: str) -> str:
    """Why ``check`` has no result for ``revision`` on this walk's target."""
    rec = next((r for r in walk.records if r.step.id == revision), None)
    failed = next((r for r in walk.records if r.up_error), None)
    stopped = walk.records[-1] if walk.head is None and walk.records and failed is None else None
    if check in ("duration", "locks"):
        seeded = walk.extra.get("seeded")
        if failed is not None:
            return f"not run: the seeded run needs the whole chain, and revision {failed.step.id} failed to upgrade"
        if stopped is not None:
            return f"not run: the seeded run needs the whole chain, and the walk stopped at {stopped.step.id}"
        bad = next((s for s in (seeded or {}).get("revisions", []) if s.get("error")), None)
        if bad is not None:
            return f"not reached: the seeded run stopped at revision {bad['revision']}, which failed on seeded tables"
        return "not run: there was no seeded run on this target"
    if check == "lint" and isinstance(walk.extra.get("lint"), str):
        return walk.extra["lint"]
    if rec is None:
        if failed is not None:
            return f"not reached: revision {failed.step.id} failed to upgrade on this target (the walk stops there)"
        if stopped is not None:
            return (f"not reached: the downgrade of revision {stopped.step.id} failed and left a state no chain "
                    "produces (the walk stops there)")
        return "not reached by the walk"
    if rec.up_error:
        return "it failed to upgrade on this target (see migrate.upgrade): nothing further to check"
    if rec.down_error and check == "reupgrade":
        return "its downgrade failed (see migrate.downgrade_restores): nothing to upgrade again"
    if check == "lint" and isinstance((walk.extra.get("offline") or {}).get(revision), Exception):
        return "it cannot render offline SQL (see migrate.offline_sql), so squawk has nothing to read"
    return f"no {check} result for this revision"


def compared(name: str, revision: str | None, want: Catalog, got: Catalog, differs: str, same: str,
             about: dict[str, Any]) -> CheckResult:
    """``name`` passes when ``got`` is ``want``; else fails with ``differs`` ({n}: how many) and each difference."""
    diffs = diff_catalogs(want, got)
    return CheckResult(name, FAIL if diffs else PASS, revision,
                       detail=f"{differs.format(n=len(diffs))}: {_lines(diffs)}" if diffs else same,
                       findings=[{**about, "difference": d} for d in diffs])


def _lines(diffs: list[str], limit: int = 12) -> str:
    more = f"; ... {len(diffs) - limit} more" if len(diffs) > limit else ""
    return "; ".join(diffs[:limit]) + more


@check("single_head")
def single_head(walk: Walk) -> list[CheckResult]:
    """The chain can be read and has exactly one head; several heads are named with their branches."""
    if walk.tool == "django":
        return []  # Django has a head per app: migrate.single_leaf judges its graph
    if walk.chain_error:
        return [CheckResult("single_head", FAIL, detail=f"the chain cannot be read: {walk.chain_error}")]
    if len(walk.heads) > 1:
        heads = sorted(walk.heads)
        branches = "; ".join(f"{h} (branch {' -> '.join(walk.branches.get(h, [h]))})" for h in heads)
        return [CheckResult("single_head", FAIL, detail=f"{len(heads)} heads: {', '.join(heads)}: {branches}",
                            findings=[{"head": h, "branch": walk.branches.get(h, [h])} for h in heads])]
    return [CheckResult("single_head", PASS,
                        detail=f"one head: {walk.heads[0] if walk.heads else '(empty chain)'}")]


@check("single_leaf")
def single_leaf(walk: Walk) -> list[CheckResult]:
    """Django: the graph can be built and each app has one leaf migration; conflicting leaves are named."""
    if walk.tool != "django":
        return []
    if walk.chain_error:
        return [CheckResult("single_leaf", FAIL, detail=f"the migration graph cannot be built: {walk.chain_error}")]
    leaves = walk.extra.get("leaves", {})
    split = {app: names for app, names in sorted(leaves.items()) if len(names) > 1}
    if split:
        return [CheckResult("single_leaf", FAIL, detail="; ".join(
            f"app {app} has {len(names)} leaf migrations: {', '.join(names)} (conflicting: makemigrations --merge "
            "joins them)" for app, names in split.items()),
            findings=[{"app": app, "leaf": n} for app, names in split.items() for n in names])]
    return [CheckResult("single_leaf", PASS, detail="one leaf per app: " + ", ".join(
        f"{app}.{names[0]}" for app, names in sorted(leaves.items()) if names))]


@check("upgrade")
def upgrade(walk: Walk) -> list[CheckResult]:
    """Each revision upgrades from its parent, base to head, without an error."""
    out = []
    for rec in walk.records:
        if rec.up_error:
            out.append(CheckResult("upgrade", FAIL, rec.step.id,
                                   detail=f"revision {rec.step.label} ({rec.step.path}) failed: {rec.up_error}"))
        else:
            out.append(CheckResult("upgrade", PASS, rec.step.id, detail=f"revision {rec.step.label} upgraded",
                                   metrics={"upgrade_ms": rec.up_ms}))
    return out


@check("downgrade_restores")
def downgrade_restores(walk: Walk) -> list[CheckResult]:
    """For each revision r, the catalog after ``upgrade r; downgrade r`` equals the catalog before r."""
    out = []
    for rec in walk.records:
        if rec.after is None:
            continue
        if rec.down_error:
            out.append(CheckResult("downgrade_restores", FAIL, rec.step.id,
                                   detail=f"revision {rec.step.label}: downgrade failed: {rec.down_error}"))
            continue
        out.append(compared("downgrade_restores", rec.step.id, rec.before, rec.down or {},
                            f"revision {rec.step.label}: downgrade left {{n}} difference(s)",
                            f"revision {rec.step.label}: downgrade restores the catalog", {"revision": rec.step.id}))
    return out


@check("reupgrade")
def reupgrade(walk: Walk) -> list[CheckResult]:
    """For each revision r, upgrading again after its downgrade reproduces the catalog after r."""
    out = []
    for rec in walk.records:
        if rec.after is None or rec.down_error:
            continue
        if rec.reup_error:
            went_on = (" (its downgrade changed nothing, so the walk marked it applied and went on)"
                       if rec.stamped else "")
            out.append(CheckResult("reupgrade", FAIL, rec.step.id, detail=(
                f"revision {rec.step.id}: upgrade after downgrade failed: {rec.reup_error}{went_on}")))
            continue
        out.append(compared("reupgrade", rec.step.id, rec.after, rec.again or {},
                            f"revision {rec.step.id}: re-upgrade differs",
                            f"revision {rec.step.id}: re-upgrade reproduces the catalog", {"revision": rec.step.id}))
    return out


@check("partial_failure")
def partial_failure(walk: Walk) -> list[CheckResult]:
    """A failed revision leaves nothing behind: the version table and the real schema still agree."""
    failed = next((r for r in walk.records if r.up_error), None)
    if failed is None:
        return [] if walk.chain_error else [CheckResult("partial_failure", PASS, detail="no revision failed")]
    atomic = walk.extra.get("atomic", {}).get(failed.step.id)
    atomic = f" ({atomic})" if atomic else ""
    if not failed.leftover:
        return [CheckResult("partial_failure", PASS, failed.step.id,
                            detail=f"revision {failed.step.id} failed and left the schema as it was{atomic}")]
    return [CheckResult(
        "partial_failure", FAIL, failed.step.id,
        detail=(f"revision {failed.step.id}{atomic} failed after part of it was committed: the version table still "
                f"says "
                f"{', '.join(sorted(failed.applied_before)) or 'base'} but the schema changed: "
                f"{_lines(failed.leftover)}"),
        findings=[{"revision": failed.step.id, "left_behind": d} for d in failed.leftover])]


@check("model_drift")
def model_drift(walk: Walk) -> list[CheckResult]:
    """With --models: alembic's compare_metadata finds no difference between the models and the head schema."""
    drift = walk.extra.get("model_drift")
    if drift is None:
        given = walk.extra.get("models_given") and walk.head is None and walk.steps
        return [CheckResult("model_drift", SKIPPED, detail=f"not compared: {why_no_head(walk)}")] if given else []
    if isinstance(drift, str):
        return [CheckResult("model_drift", FAIL, detail=f"cannot compare models: {drift}")]
    return [CheckResult("model_drift", FAIL if drift else PASS,
                        detail=(f"{len(drift)} difference(s) between models and head: {_lines(drift)}" if drift
                                else "models match the head schema"),
                        findings=[{"difference": d} for d in drift])]


@check("offline_sql")
def offline_sql(walk: Walk) -> list[CheckResult]:
    """Each revision renders in offline (--sql) mode, and renders the statements the online upgrade executed."""
    offline = walk.extra.get("offline")
    if offline is None:
        return []
    out = []
    for rec in walk.records:
        if rec.step.id not in offline:
            continue
        got = offline[rec.step.id]
        if isinstance(got, Exception):
            out.append(CheckResult("offline_sql", FAIL, rec.step.id,
                                   detail=f"revision {rec.step.id} cannot render offline: {got}"))
            continue
        only_off, only_on = compare_statements(got, rec.statements)
        if only_off or only_on:
            parts = ([f"only offline: {_lines(only_off, 4)}"] if only_off else []) + (
                [f"only online: {_lines(only_on, 4)}"] if only_on else [])
            detail = f"revision {rec.step.id}: offline SQL differs from online: " + "; ".join(parts)
            out.append(CheckResult("offline_sql", FAIL, rec.step.id, detail=detail))
        else:
            out.append(CheckResult("offline_sql", PASS, rec.step.id,
                                   detail=f"revision {rec.step.id}: offline SQL matches the statements run online"))
    return out


@check("duration")
def duration(walk: Walk) -> list[CheckResult]:
    """Per revision: how long the upgrade took on seeded tables (measured, not judged)."""
    seeded = walk.extra.get("seeded")
    if not seeded:
        return []
    return [CheckResult("duration", MEASURED if s.get("error") is None else FAIL, s["revision"],
                        detail=(f"revision {s['revision']} failed on seeded tables: {s['error']}" if s.get("error")
                                else f"revision {s['revision']}: {s['ms']} ms on {s['rows']} seeded rows"),
                        metrics={"upgrade_ms": s.get("ms"), "seed_rows": s["rows"]})
            for s in seeded["revisions"]]


@check("locks")
def locks(walk: Walk) -> list[CheckResult]:
    """No revision rewrites a populated table (nor, given --lock-budget-ms, holds a write-blocking lock on one
    longer than that). Every lock seen is listed, the exclusive mode on a populated table marked. PostgreSQL, and
    MariaDB where its metadata_lock_info plugin is installed (otherwise each revision says so: unsupported)."""
    seeded = walk.extra.get("seeded")
    if not seeded or walk.engine not in ("postgresql", "mysql"):
        return []
    out = []
    for s in seeded["revisions"]:
        if seeded.get("lock_view_missing"):
            out.append(CheckResult("locks", UNSUPPORTED, s["revision"], detail=seeded["lock_view_missing"]))
            continue
        flagged = [f for f in s.get("locks", []) if f.get("flag")]
        findings = s.get("locks", [])
        if s.get("error"):
            out.append(CheckResult("locks", SKIPPED, s["revision"], detail=f"revision did not run: {s['error']}"))
            continue
        seen = ", ".join(f"{f['lock']} on {f['table']}" + (f" ({f['rows']} rows)" if f.get("access_exclusive") else "")
                         + f" {f['held_ms']} ms" for f in findings if "lock" in f)
        blind = s.get("probe_error") or s.get("unseen")
        if blind and not flagged:  # a probe that could not see has no lock verdict; a rewrite it still proves
            why = f"the lock probe failed: {s['probe_error']}" if s.get("probe_error") else s["unseen"]
            out.append(CheckResult("locks", UNSUPPORTED, s["revision"], detail=f"revision {s['revision']}: {why}",
                                   findings=findings))
            continue
        detail = f"revision {s['revision']}: " + "; ".join(
            ([f["flag"] for f in flagged]) + ([f"seen: {seen}"] if flagged and seen else [])) if flagged else (
            f"revision {s['revision']}: {seen or 'no lock on a user table seen'}")
        out.append(CheckResult("locks", FAIL if flagged else PASS, s["revision"], detail=detail, findings=findings))
    return out


@check("lint")
def lint(walk: Walk) -> list[CheckResult]:
    """PostgreSQL: squawk finds nothing unsafe in each revision's SQL."""
    linted = walk.extra.get("lint")
    if linted is None:
        return []
    if isinstance(linted, str):
        return []  # each revision says why (not_judged)
    out = []
    for rev, findings in linted.items():
        if isinstance(findings, str):
            out.append(CheckResult("lint", FAIL, rev, detail=f"revision {rev}: {findings}"))
            continue
        out.append(CheckResult(
            "lint", FAIL if findings else PASS, rev,
            detail=(f"revision {rev}: " + "; ".join(f"{f['rule']}: {f['message']}" for f in findings)) if findings
            else f"revision {rev}: squawk found nothing", findings=findings))
    return out


@check("data_migration")
def data_migration(walk: Walk) -> list[CheckResult]:
    """Django: each migration with RunPython, on the seeded rows: rows changed forward and backward (measured)."""
    seeded = walk.extra.get("seeded") or {}
    out = []
    for rev, counts in sorted((seeded.get("data") or {}).items()):
        parts = [f"{d}: {c['rows']} row(s) changed by {c['statements']} statement(s)"
                 for d, c in sorted(counts.items(), reverse=True)]
        if "backward" not in counts:
            parts.append("backward: not run (irreversible, or a later migration could not be reversed)")
        out.append(CheckResult("data_migration", MEASURED, rev, detail=f"revision {rev} on {seeded['rows']} seeded "
                               f"rows per table: " + "; ".join(parts),
                               metrics={f"{d}_rows": c["rows"] for d, c in counts.items()}))
    return out


@check("bookkeeping")
def bookkeeping(walk: Walk) -> list[CheckResult]:
    """yoyo: after the walk its lock table is empty and its log holds every apply and rollback it ran."""
    book = walk.extra.get("bookkeeping")
    if book is None:
        return []
    ran = {"apply": 2 * sum(1 for r in walk.records if r.after is not None),
           "rollback": sum(1 for r in walk.records if r.down is not None and not r.down_error)}
    ran["apply"] -= sum(1 for r in walk.records if r.reup_error or (r.after is not None and r.again is None))
    problems = []
    if book["lock_rows"]:
        problems.append(f"yoyo_lock still holds {book['lock_rows']} row(s)")
    for op, n in ran.items():
        if book["log"].get(op, 0) != n:
            problems.append(f"_yoyo_log has {book['log'].get(op, 0)} {op} entries, the walk ran {n}")
    return [CheckResult("bookkeeping", FAIL if problems else PASS,
                        detail="; ".join(problems) or f"yoyo_lock empty; _yoyo_log: {book['log']}",
                        metrics={"lock_rows": book["lock_rows"], **{f"log_{k}": v for k, v in book["log"].items()}})]


def cross_engine(walks: list[Walk]) -> list[tuple[Walk, CheckResult]]:
    """The head catalogs of every engine agree on tables, columns (type family, nullability), keys and indexes:
    each walk but the first with a head (the reference) compared with it; a walk without a head says why."""
    heads = [w for w in walks if w.head is not None]
    if len(walks) < 2:
        return []
    if len(heads) < 2:  # nothing to compare with
        return [(w, _no_head(w)) for w in walks if w.head is None]
    return [(w, head_matches(w, portable(heads[0].head), heads[0].target) if w.head is not None else _no_head(w))
            for w in walks if w is not heads[0]]


def _no_head(walk: Walk) -> CheckResult:
    return CheckResult("cross_engine", SKIPPED, detail=f"not compared: {why_no_head(walk)}")


def head_matches(walk: Walk, reference: dict[str, Any], reference_name: str) -> CheckResult:
    """``migrate.cross_engine`` for one engine: its head, made portable, against a reference portable catalog."""
    if walk.head is None:
        return CheckResult("cross_engine", FAIL, detail=f"{walk.target} never reached head")
    return compared("cross_engine", None, reference, portable(walk.head), f"head on {walk.target} vs {reference_name}",
                    f"head on {walk.target} matches {reference_name}", {"against": reference_name})


@check("outside_scratch")
def outside_scratch(walk: Walk) -> list[CheckResult]:
    """Nothing outside the scratch databases changed while the migrations ran (catalogs, users, database files
    compared before and after: migrate/outside.py); the detail says what the per-run login guarded."""
    seen = walk.extra.get("outside")
    if seen is None:
        return []
    box = walk.extra.get("sandbox") or {}
    guard = (f"sandbox: {box['guarded']}" if box.get("guarded") else "") + (
        f"{'; ' if box.get('guarded') else ''}not guarded: {box['unguarded']}" if box.get("unguarded") else "")
    guard = f" ({guard})" if guard else ""
    if isinstance(seen, str):
        return [CheckResult("outside_scratch", SKIPPED, detail=f"{seen}{guard}")]
    if not seen:
        return [CheckResult("outside_scratch", PASS, detail=f"nothing outside scratch changed{guard}")]
    return [CheckResult("outside_scratch", FAIL,
                        detail=f"{len(seen)} change(s) outside scratch while the migrations ran (by them, or by anyone "
                               f"else using the server meanwhile): {_lines(seen)}{guard}",
                        findings=[{"outside_scratch": d} for d in seen])]
