# ruff: noqa: E501 - the mutant table reads best one mutant per line
"""Every case can fail: mutate a case's inputs and at least one of its cells must turn into a deviation or ``error``.

Mutants per case family: a wrong keyword in its SQL, a wrong expected value, a missing row, and a harness
TypeError injected into the adapter (which must end the cell as ``error``, never as a finding about the
database). Each round applies one mutant per case module to a copy of ``cases/`` and runs the targeted cases
once on sqlite and postgres (sqlite3, psycopg, asyncpg), so the whole test is a handful of pytest runs. The
mutation score per family is printed (``-s``) and every mutant must be killed.
"""

from __future__ import annotations

import fnmatch
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

CASES = Path(__file__).resolve().parents[1] / "cases"
TARGETS = ("sqlite", "postgres")
DRIVERS = "sqlite3,psycopg,asyncpg"
RUN_TIMEOUT_S = 600


@dataclass(frozen=True)
class Mutant:
    family: str  # the case module (or helper) it mutates, as reported
    file: str  # under cases/
    old: str  # must occur in the file: the test fails if a case changed under it
    new: str
    cases: str  # glob of the case ids that must show a killed cell
    what: str


KEYWORD = [
    Mutant("types", "test_types.py", '"postgresql": "BOOLEAN"', '"postgresql": "BOOLEAN_BOGUS"', "types.bool_roundtrip",
           "BOOLEAN -> BOOLEAN_BOGUS"),
    Mutant("sql.returning", "test_sql_returning.py", "WHERE id >= :lo RETURNING id, v, n", "WHERE id >= :lo RETURNING_BOGUS id",
           "sql.returning_update", "RETURNING -> RETURNING_BOGUS"),
    Mutant("sql.upsert", "test_sql_upsert.py", "ON CONFLICT (k) DO NOTHING", "ON CONFLICT (k) DO NOTHING_BOGUS",
           "sql.upsert_do_nothing", "DO NOTHING -> DO NOTHING_BOGUS"),
    Mutant("sql.json", "test_sql_json.py", '"postgresql": "jsonb_path_exists(', '"postgresql": "jsonb_path_exists_bogus(',
           "sql.json_path_exists", "jsonb_path_exists -> jsonb_path_exists_bogus"),
    Mutant("sql.arrays", "test_sql_arrays.py", "WHERE tags @> :want", "WHERE tags @>> :want", "sql.array_contains",
           "@> -> @>>"),
    Mutant("sql.cte", "test_sql_cte.py", "WITH moved AS (DELETE", "WITH moved AS (DELETE_BOGUS", "sql.cte_dml",
           "DELETE -> DELETE_BOGUS inside WITH"),
    Mutant("sql.window", "test_sql_window.py", "LEAD(amount, 2, -1)", "LEAD_BOGUS(amount, 2, -1)",
           "sql.window_lag_lead_default", "LEAD -> LEAD_BOGUS"),
    Mutant("sql.savepoints", "test_sql_savepoints.py", 's.execute("ROLLBACK TO SAVEPOINT before_dup")',
           's.execute("ROLLBACK TO SAVEPOINT before_dupx")', "sql.savepoint_error_recovery", "wrong savepoint name"),
    Mutant("sql.locking", "test_sql_locking.py", "FOR UPDATE NOWAIT", "FOR UPDATE NOWAIT_BOGUS", "sql.nowait",
           "NOWAIT -> NOWAIT_BOGUS"),
    Mutant("sql.listen", "test_sql_listen.py", 'b.execute("SELECT pg_notify(:c, :p)"', 'b.execute("SELECT pg_notifyx(:c, :p)"',
           "sql.listen_notify", "pg_notify -> pg_notifyx"),
    Mutant("sql.advisory", "test_sql_advisory.py", "FROM pg_advisory_xact_lock(", "FROM pg_advisory_xact_lockx(",
           "sql.advisory_xact_lock", "pg_advisory_xact_lock -> pg_advisory_xact_lockx"),
    Mutant("sql.prepared", "test_sql_prepared.py", '"SELECT :x + 1 AS v,', '"SELEC :x + 1 AS v,', "sql.prepared_statements",
           "SELECT -> SELEC"),
    Mutant("sql.streaming", "test_sql_streaming.py", "FROM generate_series(1, {N}) AS g\"", "FROM generate_seriesx(1, {N}) AS g\"",
           "sql.stream_large_result", "generate_series -> generate_seriesx"),
]
VALUE = [
    Mutant("types", "test_types.py", 'check(cell, RoundTrip(TEXT_DDL, ["before\\x00after"]',
           'check(cell, RoundTrip(INT_DDL, ["before\\x00after"]', "types.nul_in_text",
           "a NUL-bearing text into an INTEGER column (the refusal is then 22P02, not 22021)"),
    Mutant("sql.returning", "test_sql_returning.py", 'returned=[(1, "a", 7), (2, "b", 7)]',
           'returned=[(1, "a", 7), (2, "b", 8)]', "sql.returning_insert", "expected server default 7 -> 8"),
    Mutant("sql.upsert", "test_sql_upsert.py", '("new", [(2, "b")], 1),\n            ("updated"',
           '("new", [(2, "b")], 2),\n            ("updated"', "sql.upsert_update", "reference row count 1 -> 2"),
    Mutant("sql.json", "test_sql_json.py", 'EXTRACTED = [(1, "x", "20")', 'EXTRACTED = [(1, "x", 20)',
           "sql.json_path_extraction", "expected text '20' -> the int 20 (same value, other type)"),
    Mutant("sql.cte", "test_sql_cte.py", "(SELECT MAX(total) FROM totals) AS top", "(SELECT MIN(total) FROM totals) AS top",
           "sql.cte_plain", "MAX -> MIN"),
    Mutant("sql.window", "test_sql_window.py", "want[i] = (i, pos, rank, dense)", "want[i] = (i, pos, rank, rank)",
           "sql.window_ranking", "expected DENSE_RANK -> RANK"),
    Mutant("sql.savepoints", "test_sql_savepoints.py", '[(1,), (4,)])\n    record_comparison',
           '[(1,), (5,)])\n    record_comparison', "sql.savepoint_nested_rollback", "expected committed row 4 -> 5"),
    Mutant("sql.locking", "test_sql_locking.py", 'expect=("blocked", "ok", [(1, 11)])', 'expect=("blocked", "ok", [(1, 12)])',
           "sql.for_update_blocks", "expected committed v 11 -> 12"),
    Mutant("sql.listen", "test_sql_listen.py", "expected = [(channel, PAYLOAD)]", "expected = [(channel, PAYLOAD + '!')]",
           "sql.listen_notify", "expected payload changed"),
    Mutant("sql.prepared", "test_sql_prepared.py", "[(x + 1, marker)]):", "[(x + 2, marker)]):",
           "sql.prepared_statements", "expected :x + 1 -> :x + 2"),
]
ROW = [
    Mutant("sql.arrays", "test_sql_arrays.py", '(3, "three", ["x"]), (4, "four", [])]', '(3, "three", ["x"])]',
           "sql.array_*", "row 4 missing from the table"),
    Mutant("sql.upsert", "test_sql_upsert.py", 'final=[(1, "a"), (2, "b"), (3, "c")],\n        bad_rows',
           'final=[(1, "a"), (2, "b")],\n        bad_rows', "sql.upsert_do_nothing", "row 3 missing from the expected table"),
    Mutant("sql.savepoints", "test_sql_savepoints.py", 'differences({"committed": (committed(cell, t), [(1,), (2,)])})',
           'differences({"committed": (committed(cell, t), [(1,)])})', "sql.savepoint_error_recovery",
           "row 2 missing from the expected rows"),
    Mutant("sql.json", "test_sql_json.py", '    3: {"a": {"c": 1}, "arr": []},\n', "", "sql.json_path_exists",
           "document 3 missing"),
    Mutant("sql.cte", "test_sql_cte.py", "insert_rows(s, t, (\"id\", \"customer\", \"amount\"), ORDERS)",
           "insert_rows(s, t, (\"id\", \"customer\", \"amount\"), ORDERS[1:])", "sql.cte_plain", "first order not loaded"),
    Mutant("types", "roundtrip.py", 'f"SELECT v FROM {table} ORDER BY id"', 'f"SELECT v FROM {table} WHERE id > 0 ORDER BY id"',
           "types.int_limits", "the first written row is not read back"),
    Mutant("sql.window", "test_sql_window.py", "insert_rows(s, t, (\"id\", \"region\", \"day\", \"amount\"), SALES)",
           "insert_rows(s, t, (\"id\", \"region\", \"day\", \"amount\"), SALES[:-1])", "sql.window_*",
           "last sale not loaded"),
    Mutant("sql.locking", "test_sql_locking.py", "VALUES (1, 10), (2, 20), (3, 30)", "VALUES (1, 10), (2, 20)",
           "sql.skip_locked", "row 3 missing: C finds nothing to lock"),
]
ROUNDS = {"keyword": KEYWORD, "value": VALUE, "row": ROW}

# A harness bug: every statement a case runs (not the connection's own setup) raises TypeError inside the
# adapter's call. The cell must end as ``error`` — it is our bug, not a finding about the database.
INJECT_TYPEERROR = '''
import dbmatrix.drivers.base as base

_execute = base.Session.execute
_SETUP = ("SET ", "PRAGMA ", "SELECT pg_backend_pid", "SELECT CONNECTION_ID")


def _buggy(self, sql, params=None, *, types=None):
    if sql.startswith(_SETUP):
        return _execute(self, sql, params, types=types)

    def bug():
        raise TypeError("injected harness bug: unsupported operand type(s)")

    return self._call(bug, refusals=True)


base.Session.execute = _buggy
'''
# case -> the family it stands for
TYPEERROR_CASES = {
    "types.int_limits": "types", "types.nul_in_text": "types", "sql.returning_insert": "sql.returning",
    "sql.upsert_update": "sql.upsert", "sql.json_path_extraction": "sql.json", "sql.array_contains": "sql.arrays",
    "sql.cte_plain": "sql.cte", "sql.window_ranking": "sql.window", "sql.savepoint_error_recovery": "sql.savepoints",
    "sql.for_update_blocks": "sql.locking", "sql.nowait": "sql.locking", "sql.advisory_xact_lock": "sql.advisory",
    "sql.listen_notify": "sql.listen", "sql.prepared_statements": "sql.prepared",
    "sql.stream_large_result": "sql.streaming",
}


def _run(tmp: Path, mutants: list[Mutant], cases: list[str], conftest: str | None = None) -> list[dict]:
    copy = tmp / "cases"
    shutil.copytree(CASES, copy, ignore=shutil.ignore_patterns("__pycache__", "test_migrate*.py"))
    for m in mutants:
        path = copy / m.file
        text = path.read_text(encoding="utf-8")
        assert m.old in text, f"mutant anchor not found in cases/{m.file}: {m.old!r} (the case changed; update it)"
        path.write_text(text.replace(m.old, m.new), encoding="utf-8")  # docstrings often quote the SQL too
    if conftest:
        (copy / "conftest.py").write_text(conftest, encoding="utf-8")
    out = tmp / "out"
    cmd = [sys.executable, "-m", "pytest", str(copy), "-q", "-p", "no:cacheprovider", "--no-header", "--tb=no",
           "--dbm-out", str(out), "--driver", DRIVERS]
    for t in TARGETS:
        cmd += ["--target", t, "--require", t]
    for c in cases:
        cmd += ["--case", c]
    proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    docs = sorted(out.rglob("results.json"), key=lambda p: p.stat().st_mtime)
    assert docs, f"no results written (exit {proc.returncode}): {proc.stdout[-2000:]} {proc.stderr[-2000:]}"
    return json.loads(docs[-1].read_text(encoding="utf-8"))["results"]


def _killed(results: list[dict], pattern: str) -> bool:
    cells = [r for r in results if fnmatch.fnmatchcase(r["case"], pattern)]
    assert cells, f"no cell ran for {pattern}"
    return any(r["verdict"] == "deviation" or r["outcome"] == "error" for r in cells)


SCORES: dict[str, list[int]] = {}


def _score(family: str, killed: bool) -> None:
    tally = SCORES.setdefault(family, [0, 0])
    tally[0] += killed
    tally[1] += 1


@pytest.mark.parametrize("round_name", list(ROUNDS))
def test_case_mutants_are_killed(round_name: str, tmp_path: Path) -> None:
    mutants = ROUNDS[round_name]
    results = _run(tmp_path, mutants, sorted({m.cases for m in mutants}))
    survivors = []
    for m in mutants:
        killed = _killed(results, m.cases)
        _score(m.family, killed)
        if not killed:
            survivors.append(f"{m.family} {m.cases}: {m.what}")
    print(f"\nmutation round {round_name}: " + ", ".join(f"{f} {k}/{n}" for f, (k, n) in sorted(SCORES.items())))
    assert not survivors, "mutants survived (the case could not fail): " + "; ".join(survivors)


def test_harness_typeerror_is_error(tmp_path: Path) -> None:
    """A TypeError raised inside the adapter's call ends the cell as ``error``, never as a finding."""
    results = _run(tmp_path, [], list(TYPEERROR_CASES), conftest=INJECT_TYPEERROR)
    problems = []
    for case, family in TYPEERROR_CASES.items():
        cells = [r for r in results if r["case"] == case]
        # a cell that never ran a statement (e.g. no notification API on sqlite3) cannot meet the bug
        hit = [r for r in cells if r["outcome"] == "error" or "injected harness bug" in (r["detail"] or "")]
        as_finding = [r for r in hit if r["outcome"] != "error"]
        _score(family, bool(hit) and not as_finding)
        problems += [f"{r['case']} {r['target']}/{r['driver']}: {r['outcome']}" for r in as_finding]
        if not hit:
            problems.append(f"{case}: no cell met the injected bug")
    print("\nmutation score per family (killed/mutants): "
          + ", ".join(f"{f} {k}/{n}" for f, (k, n) in sorted(SCORES.items())))
    assert not problems, "a harness TypeError was not an error: " + "; ".join(problems)
