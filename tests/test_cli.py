"""The ``dbmatrix`` console script end to end, as a user runs it (subprocesses, live local servers).

The documented behaviour (README, docs/): exit 0/1/2, one line on stderr for bad input and no partial
output, passwords nowhere, scratch databases dropped (and nothing else touched).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest

REPO = Path(__file__).resolve().parents[1]
CASES = REPO / "cases"
BIN = Path(sys.executable).parent
DBMATRIX = BIN / "dbmatrix"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"

PASSWORD = "Zq9-SecretPW-77"
# a second password with characters that must be URL-quoted: raw 'Zq9@Quoted/PW-88'
QUOTED_RAW, QUOTED_URL = "Zq9@Quoted/PW-88", "Zq9%40Quoted%2FPW-88"
SECRET_FRAGMENTS = [PASSWORD, QUOTED_RAW, QUOTED_URL, "Quoted/PW", "Quoted%2FPW"]


def clean_env() -> dict[str, str]:
    """The caller's environment without DBMATRIX_* overrides, and a wide terminal so tables do not wrap."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBMATRIX_")}
    env.update(COLUMNS="1000", LINES="100", NO_COLOR="1", PYTHONDONTWRITEBYTECODE="1")
    return env


def run(args: list[str | Path], cwd: Path, exe: Path = DBMATRIX, timeout: float = 180,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(exe), *map(str, args)], cwd=cwd, env=env or clean_env(), capture_output=True, text=True, timeout=timeout
    )


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def assert_one_line_usage_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, f"expected exactly one line on stderr, got {lines!r}"
    assert lines[0].startswith("dbmatrix: error: "), lines[0]
    return lines[0]


def assert_no_output(out: Path) -> None:
    """Nothing written: no run folder, no ``latest``, no results or reports (not even half-written)."""
    leftovers = sorted(str(p.relative_to(out)) for p in out.rglob("*")) if out.exists() else []
    assert leftovers == [], leftovers


def run_folder(out: Path) -> Path:
    """The run folder ``<out>/latest`` points at (each run writes into ``<out>/<run-id>/``)."""
    latest = out / "latest"
    assert latest.exists(), f"no {latest}: {sorted(p.name for p in out.iterdir()) if out.exists() else out}"
    return latest.resolve()


def test_console_script_is_installed() -> None:
    assert DBMATRIX.is_file(), DBMATRIX
    proc = run(["--version"], cwd=REPO)
    assert proc.returncode == 0 and proc.stdout.startswith("dbmatrix "), proc


# --- bad input: exit 2, one line, no traceback, no output ---------------------------------------------------------

BAD_RUNS = {
    "unknown-driver": ["run", "--target", "sqlite", "--driver", "psycopg,nosuchdriver"],
    "malformed-url": ["run", "--target", f"postgres=postgresql://postgres:{PASSWORD}@127.0.0.1:notaport/postgres"],
    "unknown-target": ["run", "--target", "no-such-target"],
    "unknown-scheme": ["run", "--target", f"ora=oracle://scott:{PASSWORD}@127.0.0.1:1521/orcl"],
    "kind-mismatch": ["run", "--target", "mariadb=postgresql://postgres@127.0.0.1:5432/postgres"],
    "required-target-down": [
        "run",
        "--target",
        f"postgres=postgresql://postgres:{PASSWORD}@127.0.0.1:1/postgres",
        "--require",
        "postgres",
    ],
    "required-unconfigured": ["run", "--target", "sqlite", "--require", "neon"],
    "no-case-matches": ["run", "--target", "sqlite", "--driver", "sqlite3", "--case", "nosuchfamily.*"],
    "missing-cases-dir": ["run", "--target", "sqlite", "--cases", "/nonexistent/cases"],
    "unknown-option": ["run", "--bogus-option"],
}


@pytest.mark.parametrize("name", list(BAD_RUNS))
def test_bad_run_input(tmp_path: Path, name: str) -> None:
    out = tmp_path / "out"
    args = BAD_RUNS[name]
    if "--cases" not in args:
        args = [*args, "--cases", CASES]
    line = assert_one_line_usage_error(run([*args, "--out", out], cwd=tmp_path))
    assert PASSWORD not in line
    assert_no_output(out)


def test_bad_config_file_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "dbmatrix.toml").write_text('[targets]\nstaging = { url = "postgresql://u@h/db", polr = "x" }\n')
    out = tmp_path / "out"
    line = assert_one_line_usage_error(run(["run", "--cases", CASES, "--out", out], cwd=tmp_path))
    assert "polr" in line
    assert_no_output(out)


def test_no_command_prints_usage(tmp_path: Path) -> None:
    proc = run([], cwd=tmp_path)
    assert proc.returncode == 2, proc
    assert proc.stderr.startswith("usage: dbmatrix"), proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    for verb in ("run", "targets", "report", "diff"):
        assert verb in proc.stderr


def test_help_lists_target_names_and_driver_ids(tmp_path: Path) -> None:
    (tmp_path / "dbmatrix.toml").write_text('[targets]\nstaging = "postgresql://app@db.internal/app"\n')
    proc = run(["--help"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for name in ("sqlite", "postgres-embedded", "postgres", "pgbouncer", "mariadb", "neon", "staging"):
        assert name in proc.stdout, name
    for driver in ("asyncpg", "psycopg-async", "psycopg2", "pymysql", "mysqlclient", "asyncmy", "aiosqlite",
                   "sa-core+<driver>", "sa-orm+<driver>", "peewee+<driver> for: psycopg, psycopg2, pymysql, sqlite3"):
        assert driver in proc.stdout, driver


def test_report_of_a_missing_file(tmp_path: Path) -> None:
    out = tmp_path / "out"
    line = assert_one_line_usage_error(run(["report", "missing.json", "--out", out], cwd=tmp_path))
    assert "missing.json" in line
    assert_no_output(out)


@pytest.mark.parametrize("content", ['{"a": 1}', "[1, 2]", "not json at all", '{"schema": "other/v9"}'])
def test_diff_of_a_non_results_file(tmp_path: Path, content: str) -> None:
    bogus = tmp_path / "bogus.json"
    bogus.write_text(content)
    assert_one_line_usage_error(run(["diff", bogus, bogus], cwd=tmp_path))


def test_report_of_a_non_results_file(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.json"
    bogus.write_text('{"results": []}')
    out = tmp_path / "out"
    assert_one_line_usage_error(run(["report", bogus, "--out", out], cwd=tmp_path))
    assert_no_output(out)


# --- a real run on sqlite: exit code, files, report, diff -------------------------------------------------------


@pytest.fixture(scope="module")
def sqlite_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    cwd = tmp_path_factory.mktemp("sqlite-run")
    out = cwd / "out"
    proc = run(["run", "--target", "sqlite", "--case", "types.*", "--cases", CASES, "--out", out], cwd=cwd)
    return proc, run_folder(out)


def test_run_writes_a_complete_document(sqlite_run: tuple[subprocess.CompletedProcess, Path]) -> None:
    proc, out = sqlite_run
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    assert {"results.json", "report.md", "report.html"} <= {p.name for p in out.iterdir()}
    assert not [p for p in out.parent.rglob("*") if p.name.endswith(".tmp")], "temp files left behind"
    doc = load(out / "results.json")
    assert out.name == doc["run"]["id"] and (out.parent / "latest").resolve() == out
    assert doc["schema"] == "dbmatrix/results/v1"
    assert doc["run"]["complete"] is True
    assert doc["run"]["id"] and doc["run"]["started"] and doc["run"]["finished"]
    assert [(t["name"], t["kind"], t["status"]) for t in doc["targets"]] == [("sqlite", "sqlite", "ok")]
    assert doc["targets"][0]["server_version"] == sqlite3.sqlite_version
    cells = doc["results"]
    assert cells, "no cells recorded"
    assert {c["target"] for c in cells} == {"sqlite"}
    assert all(c["case"].startswith("types.") for c in cells)
    assert {"types.int_limits", "types.unicode_text"} <= {c["case"] for c in cells}
    assert {"sqlite3", "aiosqlite", "sa-core+sqlite3", "sa-orm+aiosqlite"} <= {c["driver"] for c in cells}
    for c in cells:
        assert c["outcome"] in (
            "supported",
            "unsupported",
            "differs",
            "allowed",
            "prevented",
            "pass",
            "fail",
            "measured",
            "error",
            "skipped",
        ), c
        assert c["verdict"] in ("as-expected", "deviation", None), c
        assert (c["verdict"] is None) == (c["outcome"] == "skipped"), c


def test_run_exit_code_matches_the_document(sqlite_run: tuple[subprocess.CompletedProcess, Path]) -> None:
    proc, out = sqlite_run
    cells = load(out / "results.json")["results"]
    bad = [c for c in cells if c["verdict"] == "deviation" or c["outcome"] == "error"]
    assert proc.returncode == (1 if bad else 0), (proc.returncode, bad[:3], proc.stderr[-2000:])


def test_run_prints_where_it_wrote(sqlite_run: tuple[subprocess.CompletedProcess, Path]) -> None:
    proc, out = sqlite_run
    assert str(out / "results.json") in proc.stdout.replace("\n", "")


def test_report_re_renders(sqlite_run: tuple[subprocess.CompletedProcess, Path], tmp_path: Path) -> None:
    _, out = sqlite_run
    again = tmp_path / "again"
    proc = run(["report", out / "results.json", "--out", again], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for name in ("report.md", "report.html"):
        assert (again / name).read_text() == (out / name).read_text(), f"{name} is not a pure function of the doc"
    assert "types.int_limits" in (again / "report.md").read_text()


def test_report_defaults_to_the_results_directory(
    sqlite_run: tuple[subprocess.CompletedProcess, Path], tmp_path: Path
) -> None:
    _, out = sqlite_run
    shutil.copy(out / "results.json", tmp_path / "results.json")
    proc = run(["report", tmp_path / "results.json"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "report.md").is_file() and (tmp_path / "report.html").is_file()


def test_diff_against_itself(sqlite_run: tuple[subprocess.CompletedProcess, Path], tmp_path: Path) -> None:
    _, out = sqlite_run
    proc = run(["diff", out / "results.json", out / "results.json"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no changes" in proc.stdout


def test_diff_flags_a_regression(sqlite_run: tuple[subprocess.CompletedProcess, Path], tmp_path: Path) -> None:
    _, out = sqlite_run
    doc = load(out / "results.json")
    cell = next(c for c in doc["results"] if c["outcome"] == "supported")
    cell["outcome"], cell["verdict"] = "differs", "deviation"
    worse = tmp_path / "worse.json"
    worse.write_text(json.dumps(doc))
    html = tmp_path / "diff.html"
    proc = run(["diff", out / "results.json", worse, "--html", html], cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    changed = [line for line in proc.stdout.splitlines() if line.startswith(("worse", "better", "changed"))]
    assert len(changed) == 1, changed
    line = changed[0]
    assert line.startswith("worse ")
    assert cell["case"] in line and f"{cell['target']}/{cell['driver']}" in line
    assert "supported -> differs" in line
    assert "summary: 1 worse, 0 better, 0 changed" in proc.stdout
    assert '<table data-label="worse">' in html.read_text()
    # and the other way round is an improvement: exit 0
    back = run(["diff", worse, out / "results.json"], cwd=tmp_path)
    assert back.returncode == 0, back.stdout + back.stderr


# --- targets --------------------------------------------------------------------------------------------------


def server_versions() -> tuple[str, str]:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        pg = conn.execute("SHOW server_version").fetchone()[0].split()[0]
    with mariadb_connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT VERSION()")
        maria = cur.fetchone()[0]
    return pg, maria


def mariadb_connection(database: str = "test") -> pymysql.Connection:
    return pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", database=database, autocommit=True)


def test_targets_lists_versions_and_capabilities(tmp_path: Path) -> None:
    proc = run(["targets", "--target", "sqlite", "--target", "postgres", "--target", "mariadb"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    pg_version, maria_version = server_versions()
    rows = {line.split()[0]: line for line in proc.stdout.splitlines() if line.split() and "│" in line}
    assert {"sqlite", "postgres", "mariadb"} <= set(rows), proc.stdout
    assert sqlite3.sqlite_version in rows["sqlite"]
    assert pg_version in rows["postgres"]
    assert maria_version in rows["mariadb"]
    assert "postgresql://postgres@127.0.0.1:5432/postgres" in rows["postgres"]
    assert "jsonb" in rows["postgres"] and "listen_notify" in rows["postgres"]
    assert "upsert_on_duplicate_key" in rows["mariadb"] and "jsonb" not in rows["mariadb"]
    assert "returning_insert" in rows["sqlite"]
    assert "yes" in rows["sqlite"] and "yes" in rows["postgres"] and "yes" in rows["mariadb"]


def test_targets_without_arguments_lists_every_target_unwrapped_when_piped(tmp_path: Path) -> None:
    env = clean_env()
    del env["COLUMNS"]  # piped, as in a CI log: rich would assume 80 columns
    proc = run(["targets"], cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[0]: line for line in proc.stdout.splitlines() if line.split() and "│" in line}
    builtin = ["sqlite", "postgres-embedded", "postgres", "postgres-replica", "pgbouncer", "mariadb", "mysql",
               "cockroach", "neon"]
    assert builtin == [n for n in rows if n in builtin], proc.stdout
    for name in ("sqlite", "postgres-embedded", "postgres", "pgbouncer", "mariadb"):
        assert "│ yes" in rows[name], rows[name]
    assert "transaction" in rows["pgbouncer"] and "postgresql://postgres@127.0.0.1:6432/postgres" in rows["pgbouncer"]
    assert "no: not configured (DBMATRIX_NEON_URL or --target neon=URL)" in rows["neon"]
    assert "│ postgres " in rows["postgres-replica"]  # replica of
    # one line per target: nothing folded mid-word
    assert "upsert_on_duplicate_key" in rows["mariadb"] and "listen_notify" in rows["postgres"]
    assert len([line for line in proc.stdout.splitlines() if line.strip()]) == len(builtin) + 2  # header, rule


def test_progress_lines_without_a_tty(tmp_path: Path) -> None:
    env = clean_env() | {"DBMATRIX_PROGRESS_INTERVAL": "0"}
    out = tmp_path / "out"
    proc = run(["run", "--target", "sqlite", "--driver", "sqlite3", "--case", "types.*", "--cases", CASES,
                "--out", out], cwd=tmp_path, env=env)
    assert proc.returncode in (0, 1), proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[0].startswith("dbmatrix: running ") and lines[0].endswith(" cells"), lines
    assert any(line.startswith("dbmatrix: 1/") and "last: types." in line and "sqlite/sqlite3" in line
               for line in lines), lines


def test_progress_names_a_slow_cell_while_it_runs(tmp_path: Path) -> None:
    env = clean_env() | {"DBMATRIX_PROGRESS_INTERVAL": "1"}
    proc = run(["run", "--target", "sqlite", "--driver", "sqlite3", "--case", "sql.stream_large_result",
                "--cases", CASES, "--out", tmp_path / "out"], cwd=tmp_path, env=env)
    assert proc.returncode in (0, 1), proc.stderr
    # lines come from a ticker while the cell runs (pytest captures the cell's own output, not these)
    assert re.search(r"^dbmatrix: 0/1 cells \(0%\) after \d+ s; now: sql.stream_large_result sqlite/sqlite3"
                     r"( \(running for \d+ s\))?$", proc.stderr, re.M), proc.stderr


def test_ctrl_c_says_interrupted_and_what_was_written(tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = clean_env() | {"DBMATRIX_PROGRESS_INTERVAL": "0"}
    args = [str(DBMATRIX), "run", "--target", "sqlite", "--case", "types.*", "--cases", str(CASES), "--out", str(out)]
    proc = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:  # wait until cells are running, then press "Ctrl-C" (SIGINT to the process group)
        seen.append(line)
        if line.startswith("dbmatrix: 5/"):
            os.killpg(proc.pid, signal.SIGINT)
            break
    try:
        rest_out, rest_err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    err = "".join(seen) + rest_err
    assert proc.returncode == 130, (proc.returncode, err[-2000:])
    assert "Traceback" not in err + rest_out
    written = re.search(r"^dbmatrix: interrupted.*(?:partial results \(incomplete\) in|wrote partial results "
                        r"\(complete: false\) to) (\S+)$", err, re.M)
    assert written, err[-2000:]
    results = Path(written[1])
    assert results.is_relative_to(out)  # this run's own folder, not an older run's file
    assert load(results)["run"]["complete"] is False


def test_targets_reports_an_unreachable_target_without_its_password(tmp_path: Path) -> None:
    proc = run(["targets", "--target", f"pgdown=postgresql://postgres:{PASSWORD}@127.0.0.1:1/postgres"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "pgdown" in proc.stdout and "no:" in proc.stdout
    assert PASSWORD not in proc.stdout + proc.stderr


# --- passwords never appear -------------------------------------------------------------------------------------

SECRET_TARGETS = [
    f"postgres=postgresql://postgres:{PASSWORD}@127.0.0.1:5432/postgres",
    f"pgquoted=postgresql://postgres:{QUOTED_URL}@127.0.0.1:5432/postgres",
]
# named explicitly, unreachable: the run stops with one line (exit 2), which must not hold the password either
DOWN_TARGETS = [
    f"pgdown=postgresql://postgres:{PASSWORD}@127.0.0.1:1/postgres",
    f"mydown=mysql://root:{PASSWORD}@127.0.0.1:1/test",
]


def assert_no_secret(text: str, where: str) -> None:
    for fragment in SECRET_FRAGMENTS:
        assert fragment not in text, f"{fragment!r} leaked into {where}"


def test_password_appears_nowhere_in_a_run(tmp_path: Path) -> None:
    out = tmp_path / "out"
    args: list[str | Path] = [
        "run",
        "--case",
        "types.int_limits",
        "--driver",
        "psycopg,asyncpg,sa-core+psycopg",
    ]
    for t in SECRET_TARGETS:
        args += ["--target", t]
    proc = run([*args, "--cases", CASES, "--out", out], cwd=tmp_path)
    assert proc.returncode in (0, 1), proc.stderr
    assert_no_secret(proc.stdout, "stdout")
    assert_no_secret(proc.stderr, "stderr")
    for name in ("results.json", "report.md", "report.html"):
        assert_no_secret((run_folder(out) / name).read_text(), name)
    doc = load(run_folder(out) / "results.json")
    status = {t["name"]: t["status"] for t in doc["targets"]}
    assert status == {"postgres": "ok", "pgquoted": "ok"}
    urls = {t["name"]: t["url"] for t in doc["targets"]}
    assert urls["postgres"] == "postgresql://postgres:***@127.0.0.1:5432/postgres"
    assert urls["pgquoted"] == "postgresql://postgres:***@127.0.0.1:5432/postgres"
    # the password-bearing targets really ran (else this test proves nothing)
    ran = {(c["target"], c["driver"]) for c in doc["results"] if c["outcome"] not in ("skipped", "error")}
    assert {("postgres", "psycopg"), ("postgres", "asyncpg"), ("postgres", "sa-core+psycopg")} <= ran
    assert ("pgquoted", "asyncpg") in ran


def test_named_unreachable_targets_stop_the_run_in_one_line_without_the_password(tmp_path: Path) -> None:
    args: list[str | Path] = ["run", "--case", "types.int_limits", "--driver", "psycopg,pymysql"]
    for t in [*SECRET_TARGETS, *DOWN_TARGETS]:
        args += ["--target", t]
    proc = run([*args, "--cases", CASES, "--out", tmp_path / "out"], cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "pgdown" in lines[0] and "mydown" in lines[0] and "does not answer" in lines[0], lines
    assert_no_secret(proc.stdout + proc.stderr, "output")
    assert not (tmp_path / "out").exists()


def test_password_appears_nowhere_through_pytest(tmp_path: Path) -> None:
    out = tmp_path / "out"
    args: list[str | Path] = ["-m", "pytest", CASES, "-k", "int_limits", "-v", "-rA", "-p", "no:cacheprovider"]
    for t in SECRET_TARGETS:
        args += ["--target", t]
    args += ["--driver", "psycopg,asyncpg,sa-core+psycopg", "--dbm-out", out]
    proc = run(args, cwd=tmp_path, exe=Path(sys.executable))
    assert proc.returncode in (0, 1), proc.stdout[-3000:] + proc.stderr
    assert_no_secret(proc.stdout, "pytest stdout")
    assert_no_secret(proc.stderr, "pytest stderr")
    ids = [line.split("::", 1)[1].split()[0] for line in proc.stdout.splitlines() if "::test_int_limits[" in line]
    assert "test_int_limits[postgres-psycopg]" in ids and "test_int_limits[pgquoted-asyncpg]" in ids, ids
    assert_no_secret(" ".join(ids), "test ids")
    for name in ("results.json", "report.md", "report.html"):
        assert_no_secret((run_folder(out) / name).read_text(), name)


# --- scratch safety -----------------------------------------------------------------------------------------------


def pg_databases() -> set[str]:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        return {r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'dbmatrix%'")}


def maria_databases() -> set[str]:
    with mariadb_connection() as conn, conn.cursor() as cur:
        cur.execute("SHOW DATABASES LIKE 'dbmatrix%'")
        return {r[0] for r in cur.fetchall()}


@pytest.fixture
def decoys() -> Any:
    """A database on each server that merely looks like scratch space, holding a table: dbmatrix must not touch it."""
    name = f"dbmatrix_decoy_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{name}", autocommit=True) as conn:
        conn.execute("CREATE TABLE keepme (v int)")
        conn.execute("INSERT INTO keepme VALUES (42)")
    with mariadb_connection() as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}`")
        cur.execute(f"CREATE TABLE `{name}`.keepme (v int)")
        cur.execute(f"INSERT INTO `{name}`.keepme VALUES (42)")
    try:
        yield name
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        with mariadb_connection() as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")


def test_scratch_databases_are_dropped(tmp_path: Path) -> None:
    before_pg, before_maria = pg_databases(), maria_databases()
    out = tmp_path / "out"
    args = ["run", "--target", "postgres", "--target", "mariadb", "--target", "pgbouncer"]
    args += ["--case", "types.int_limits", "--driver", "psycopg,pymysql", "--cases", CASES, "--out", out]
    proc = run(args, cwd=tmp_path)
    assert proc.returncode in (0, 1), proc.stderr
    doc = load(run_folder(out) / "results.json")
    run_id = doc["run"]["id"]
    assert {t["name"]: t["status"] for t in doc["targets"]} == {"postgres": "ok", "mariadb": "ok", "pgbouncer": "ok"}
    ran = {c["target"] for c in doc["results"] if c["outcome"] not in ("skipped", "error")}
    assert ran == {"postgres", "mariadb", "pgbouncer"}, doc["results"]
    after_pg, after_maria = pg_databases(), maria_databases()
    assert not [d for d in after_pg if run_id in d], after_pg
    assert not [d for d in after_maria if run_id in d], after_maria
    # the run id was never used before this run (so the checks above are about this run's own databases)
    assert not [d for d in before_pg | before_maria if run_id in d]


def test_url_pointing_at_a_database_is_never_dropped_or_altered(tmp_path: Path, decoys: str) -> None:
    out = tmp_path / "out"
    args = [
        "run",
        "--target",
        f"postgres=postgresql://postgres@127.0.0.1:5432/{decoys}",
        "--target",
        f"mariadb=mysql://root@127.0.0.1:3306/{decoys}",
        "--case",
        "types.int_limits",
        "--driver",
        "psycopg,pymysql",
        "--cases",
        CASES,
        "--out",
        out,
    ]
    proc = run(args, cwd=tmp_path)
    assert proc.returncode in (0, 1), proc.stderr
    doc = load(run_folder(out) / "results.json")
    ran = {c["target"] for c in doc["results"] if c["outcome"] not in ("skipped", "error")}
    assert ran == {"postgres", "mariadb"}, doc["results"]
    assert decoys in pg_databases() and decoys in maria_databases()
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{decoys}") as conn:
        assert conn.execute("SELECT array_agg(v) FROM keepme").fetchone()[0] == [42]
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert tables == {"keepme"}
    with mariadb_connection(decoys) as conn, conn.cursor() as cur:
        cur.execute("SELECT v FROM keepme")
        assert cur.fetchall() == ((42,),)
        cur.execute("SHOW TABLES")
        assert {r[0] for r in cur.fetchall()} == {"keepme"}
    run_id = doc["run"]["id"]
    assert not [d for d in pg_databases() | maria_databases() if run_id in d]


# --- never stale: one folder per run, `latest`, nothing written for an empty selection ------------------------


def test_two_runs_in_one_folder_keep_both(tmp_path: Path) -> None:
    out = tmp_path / "out"
    base = ["run", "--target", "sqlite", "--driver", "sqlite3", "--cases", CASES, "--out", out]
    first = run([*base, "--case", "types.int_limits"], cwd=tmp_path)
    assert first.returncode in (0, 1), first.stderr
    first_dir = run_folder(out)
    second = run([*base, "--case", "types.unicode_text"], cwd=tmp_path)
    assert second.returncode in (0, 1), second.stderr
    second_dir = run_folder(out)
    assert first_dir != second_dir and first_dir.parent == second_dir.parent == out.resolve()
    one, two = load(first_dir / "results.json"), load(second_dir / "results.json")
    assert {c["case"] for c in one["results"]} == {"types.int_limits"}
    assert {c["case"] for c in two["results"]} == {"types.unicode_text"}
    # the console reports the run it just made, never the earlier one
    assert two["run"]["id"] in second.stdout and one["run"]["id"] not in second.stdout
    assert str(second_dir / "results.json") in second.stdout.replace("\n", "")
    # report and diff take a run folder or `latest` as well as a results.json
    diff = run(["diff", first_dir, out / "latest"], cwd=tmp_path)
    assert diff.returncode in (0, 1) and "Traceback" not in diff.stderr, diff.stderr
    again = tmp_path / "again"
    rep = run(["report", out / "latest", "--out", again], cwd=tmp_path)
    assert rep.returncode == 0, rep.stderr
    assert "types.unicode_text" in (again / "report.md").read_text()
    rep_root = run(["report", out], cwd=tmp_path)  # the output root means its latest run
    assert rep_root.returncode == 0 and str(second_dir) in rep_root.stdout.replace("\n", ""), rep_root


def test_zero_cells_exit_2_and_write_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    earlier = run(["run", "--target", "sqlite", "--driver", "sqlite3", "--case", "types.int_limits",
                   "--cases", CASES, "--out", out], cwd=tmp_path)
    assert earlier.returncode in (0, 1), earlier.stderr
    before = sorted(str(p) for p in out.rglob("*"))
    earlier_id = load(run_folder(out) / "results.json")["run"]["id"]
    # a driver that talks to none of the selected targets: zero cells (of the driver cases: migrate.* has no
    # driver axis and would run on sqlite)
    proc = run(["run", "--target", "sqlite", "--driver", "pymysql", "--case", "types.*", "--cases", CASES,
                "--out", out], cwd=tmp_path)
    line = assert_one_line_usage_error(proc)
    assert "no cell" in line or "no case" in line or "pymysql" in line, line
    assert earlier_id not in proc.stdout + proc.stderr
    assert sorted(str(p) for p in out.rglob("*")) == before, "an empty selection wrote or moved something"


def test_a_pytest_subset_never_replaces_another_run(tmp_path: Path) -> None:
    out = tmp_path / "out"
    full = run(["run", "--target", "sqlite", "--driver", "sqlite3", "--case", "types.*",
                "--cases", CASES, "--out", out], cwd=tmp_path)
    assert full.returncode in (0, 1), full.stderr
    full_dir = run_folder(out)
    full_text = (full_dir / "results.json").read_text()
    subset = run(["-m", "pytest", CASES, "-q", "-p", "no:cacheprovider", "--target", "sqlite", "--driver", "sqlite3",
                  "-k", "unicode_text", "--dbm-out", out, f"--rootdir={REPO}"], cwd=tmp_path, exe=Path(sys.executable))
    assert subset.returncode in (0, 1), subset.stdout[-2000:]
    assert (full_dir / "results.json").read_text() == full_text
    subset_doc = load(run_folder(out) / "results.json")
    assert run_folder(out) != full_dir and {c["case"] for c in subset_doc["results"]} == {"types.unicode_text"}
    assert subset_doc["run"]["id"] in subset.stdout


def test_targets_listing_refuses_a_malformed_configured_url(tmp_path: Path) -> None:
    (tmp_path / "dbmatrix.toml").write_text('[targets]\nbroken = "postgresql://u@127.0.0.1:notaport/db"\n')
    assert_one_line_usage_error(run(["targets"], cwd=tmp_path))


OWN_CASE = '''
from dbmatrix.cell import Cell


def test_one_is_one(cell: Cell) -> None:
    rows = cell.connect().execute("SELECT 1").rows
    cell.supported(f"SELECT 1 returned {rows!r}")
'''


def test_own_case_folders_run_beside_the_shipped_ones_each_with_its_expectations(tmp_path: Path) -> None:
    own = tmp_path / "own_cases"
    (own / "expectations").mkdir(parents=True)
    (own / "test_myapp.py").write_text(OWN_CASE)
    # a catch-all entry in the own folder: it must decide the own case only, never the shipped ones
    (own / "expectations" / "sqlite.toml").write_text(
        '[[expect]]\ncase = "*"\noutcome = "differs"\nreason = "myapp expects SELECT 1 to differ (a test)"\n')
    out = tmp_path / "out"
    proc = run(["run", own, CASES, "--target", "sqlite", "--driver", "sqlite3", "--case", "myapp.*",
                "--case", "types.int_limits", "--out", out], cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # the own case deviates from its own expectation
    cells = {c["case"]: c for c in load(run_folder(out) / "results.json")["results"]}
    assert set(cells) == {"myapp.one_is_one", "types.int_limits"}
    mine = cells["myapp.one_is_one"]
    assert (mine["outcome"], mine["expected"], mine["verdict"]) == ("supported", "differs", "deviation")
    assert mine["expected_reason"] == "myapp expects SELECT 1 to differ (a test)"
    assert cells["types.int_limits"]["expected"] == "supported", cells["types.int_limits"]


def test_a_case_glob_outside_the_default_folder_says_how_to_run_an_own_folder(tmp_path: Path) -> None:
    line = assert_one_line_usage_error(run(["run", "--target", "sqlite", "--case", "myapp.*"], cwd=tmp_path))
    assert "no case in" in line and "dbmatrix run PATH" in line, line
    assert_one_line_usage_error(run(["run", tmp_path / "nowhere", "--target", "sqlite"], cwd=tmp_path))


def test_targets_names_a_missing_role_or_database_not_silence(tmp_path: Path) -> None:
    """The server answered and said no: that is not "does not answer"; and each reason stays one short line."""
    role = f"nosuchrole_{uuid.uuid4().hex[:6]}"
    proc = run(["targets", "--target", f"pgrole=postgresql://{role}@127.0.0.1:5432/postgres",
                "--target", f"myrole=mysql://{role}@127.0.0.1:3306/mysql",
                "--target", "pgdb=postgresql://postgres@127.0.0.1:5432/no_such_db_here",
                "--target", "pgdown=postgresql://postgres@127.0.0.1:1/postgres"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[0]: line for line in proc.stdout.splitlines() if line.split()[:1] and
            line.split()[0] in ("pgrole", "myrole", "pgdb", "pgdown")}
    assert f'has no such role: OperationalError: role "{role}" does not exist' in rows["pgrole"], rows
    assert "refuses the login" in rows["myrole"] and "does not answer" not in rows["myrole"], rows
    assert "has no such database" in rows["pgdb"], rows
    assert "does not answer" in rows["pgdown"], rows
    assert all(len(line) < 400 for line in proc.stdout.splitlines()), max(proc.stdout.splitlines(), key=len)
