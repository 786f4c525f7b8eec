"""``dbmatrix migrate`` end to end on the live local servers: the reference chains pass, each planted defect is
caught and named, unusable input is one line and exit 2, and an env.py that connects elsewhere is stopped
before it touches anything (proved with a sentinel database)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest

REPO = Path(__file__).resolve().parents[1]
DBMATRIX = Path(sys.executable).parent / "dbmatrix"
CHAINS = Path(__file__).resolve().parent / "migrate_chains"
REFERENCE = REPO / "migrations"
ENGINES = ["--target", "sqlite", "--target", "postgres", "--target", "mariadb"]
REBUILT_ON_MARIADB = "0006_user_display_name"
SEED = ["--seed-rows", "300"]  # enough rows for rewrites and locks to show, small enough for CI
# Lint findings of the reference chain that are real: renaming or dropping a column breaks clients still on the
# old code, and SET NOT NULL scans the table under ACCESS EXCLUSIVE (expand/contract would split these).
REFERENCE_LINT = {"0006_user_display_name": "adding-not-nullable-field", "0008_rename_postcode": "renaming-column",
                  "0009_drop_user_name": "ban-drop-column"}


def migrate(*args: str, env: dict[str, str] | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("DBMATRIX_")}
    full_env.update(env or {})
    return subprocess.run([str(DBMATRIX), "migrate", *args], capture_output=True, text=True, timeout=timeout,
                          env=full_env, cwd=REPO)


def results(out: Path) -> dict[str, Any]:
    """The run's results document (``<out>/results.json``, or the ``latest`` run folder when runs get one)."""
    for path in (out / "latest" / "results.json", out / "results.json"):
        if path.is_file():
            return json.loads(path.read_text())
    raise AssertionError(f"no results.json under {out}: {sorted(p.name for p in out.rglob('*'))}")


def by(doc: dict[str, Any], case: str, target: str | None = None, revision: str | None = None) -> list[dict]:
    return [r for r in doc["results"] if r["case"] == case and (target is None or r["target"] == target)
            and (revision is None or r["params"].get("revision") == revision)]


def leftover_scratch(run_id: str) -> list[str]:
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as pg:
        names = [r[0] for r in pg.execute("SELECT datname FROM pg_database WHERE datname LIKE %s",
                                          (f"dbmatrix_{run_id}%",))]
    my = pymysql.connect(host="127.0.0.1", user="root")
    with my.cursor() as cur:
        cur.execute("SHOW DATABASES")
        names += [r[0] for r in cur.fetchall() if r[0].startswith(f"dbmatrix_{run_id}")]
    my.close()
    return names


def test_reference_alembic_chain_passes_everywhere(tmp_path: Path) -> None:
    proc = migrate("--alembic", str(REFERENCE / "alembic" / "alembic.ini"), "--models",
                   str(REFERENCE / "alembic" / "reference_models.py") + ":metadata", *ENGINES, *SEED,
                   "--out", str(tmp_path))
    doc = results(tmp_path)
    failed = [(r["case"], r["target"], r["params"].get("revision")) for r in doc["results"]
              if r["outcome"] in ("fail", "error")]
    assert sorted(failed) == sorted([("migrate.lint", "postgres", rev) for rev in REFERENCE_LINT]
                                    + [("migrate.locks", "mariadb", REBUILT_ON_MARIADB)]), proc.stdout
    for rev, rule in REFERENCE_LINT.items():
        [lint] = by(doc, "migrate.lint", "postgres", rev)
        assert [f["rule"] for f in lint["findings"]] == [rule] if "findings" in lint else rule in lint["detail"]
    assert proc.returncode == 1  # the lint findings are real
    for target in ("sqlite", "postgres", "mariadb"):
        assert len(by(doc, "migrate.upgrade", target)) == 10
        assert {r["outcome"] for r in by(doc, "migrate.downgrade_restores", target)} == {"pass"}
        assert {r["outcome"] for r in by(doc, "migrate.reupgrade", target)} == {"pass"}
        assert {r["outcome"] for r in by(doc, "migrate.offline_sql", target)} == {"pass"}
        assert [r["outcome"] for r in by(doc, "migrate.model_drift", target)] == ["pass"]
        assert len(by(doc, "migrate.duration", target)) == 10
    assert len(by(doc, "migrate.locks", "postgres")) == 10
    # MariaDB: metadata locks from METADATA_LOCK_INFO (ci/provision installs the plugin), one cell per revision;
    # NOT NULL on users.display_name rebuilds the InnoDB table (a real finding, like lint's on PostgreSQL)
    mariadb_locks = {r["params"]["revision"]: r for r in by(doc, "migrate.locks", "mariadb")}
    rebuilt = mariadb_locks.pop(REBUILT_ON_MARIADB)
    assert rebuilt["outcome"] == "fail" and "users (300 rows) was rewritten (InnoDB table id" in rebuilt["detail"]
    assert len(mariadb_locks) == 9, mariadb_locks
    assert {r["outcome"] for r in mariadb_locks.values()} == {"pass"}, mariadb_locks
    assert any("MDL_EXCLUSIVE on users" in r["detail"] for r in mariadb_locks.values()), mariadb_locks
    assert [r["outcome"] for r in by(doc, "migrate.cross_engine")] == ["pass", "pass"]
    assert leftover_scratch(doc["run"]["id"]) == []


@pytest.mark.parametrize("engine,target", [("sqlite", "sqlite"), ("postgresql", "postgres"), ("mysql", "mariadb")])
def test_reference_yoyo_chain_passes(tmp_path: Path, engine: str, target: str) -> None:
    proc = migrate("--yoyo", str(REFERENCE / "yoyo" / engine), "--models",
                   str(REFERENCE / "alembic" / "reference_models.py") + ":metadata", "--target", target, *SEED,
                   "--out", str(tmp_path))
    doc = results(tmp_path)
    real = {("migrate.lint", rev) for rev in REFERENCE_LINT} | {("migrate.locks", REBUILT_ON_MARIADB)}
    bad = [(r["case"], r["params"], r["detail"]) for r in doc["results"] if r["outcome"] in ("fail", "error")
           and (r["case"], r["params"].get("revision")) not in real]
    assert bad == [], proc.stdout + proc.stderr
    assert len(by(doc, "migrate.downgrade_restores")) == 10
    [book] = by(doc, "migrate.bookkeeping")
    assert book["outcome"] == "pass" and book["metrics"]["lock_rows"] == 0, book
    assert book["metrics"]["log_apply"] == 20 and book["metrics"]["log_rollback"] == 10


def test_planted_defects_are_caught_and_named(tmp_path: Path) -> None:
    chain = CHAINS / "defects"
    proc = migrate("--alembic", str(chain / "alembic.ini"), "--models", str(chain / "models.py") + ":metadata",
                   *ENGINES, *SEED, "--out", str(tmp_path))
    assert proc.returncode == 1, proc.stderr
    doc = results(tmp_path)
    for target in ("sqlite", "postgres", "mariadb"):  # irreversible downgrade: the column it leaves, by name
        [r] = by(doc, "migrate.downgrade_restores", target, "d02_irreversible")
        assert r["outcome"] == "fail" and "accounts.columns.flag: only after" in r["detail"], r
    [rewrite] = by(doc, "migrate.locks", "postgres", "d03_rewrite")  # table rewrite, from relfilenode
    assert rewrite["outcome"] == "fail" and "accounts (300 rows) was rewritten" in rewrite["detail"], rewrite
    [index] = by(doc, "migrate.lint", "postgres", "d04_blocking_index")  # non-concurrent index
    assert index["outcome"] == "fail" and "require-concurrent-index-creation" in index["detail"], index
    [partial] = by(doc, "migrate.partial_failure", "mariadb")  # MariaDB: committed half of a failed revision
    assert partial["outcome"] == "fail" and partial["params"]["revision"] == "d05_partial", partial
    assert "still says d04_blocking_index" in partial["detail"] and "accounts.columns.note" in partial["detail"]
    [up] = by(doc, "migrate.upgrade", "mariadb", "d05_partial")
    assert up["outcome"] == "fail" and "[42000]" in up["detail"] and "d05_partial.py" in up["detail"], up
    [pg_partial] = by(doc, "migrate.partial_failure", "postgres")  # transactional DDL: nothing to report
    assert pg_partial["outcome"] == "pass"
    for target in ("sqlite", "postgres"):  # model drift, each difference named
        [drift] = by(doc, "migrate.model_drift", target)
        assert drift["outcome"] == "fail", drift
        assert "add_table audit" in drift["detail"] and "modify_type accounts name VARCHAR(50) VARCHAR(100)" in \
            drift["detail"], drift
    assert leftover_scratch(doc["run"]["id"]) == []


@pytest.mark.parametrize("kind", ["postgres", "sqlite"])
def test_env_py_connecting_elsewhere_is_stopped_before_touching_it(tmp_path: Path, kind: str) -> None:
    """The app's env.py reads APP_DATABASE_URL; pointed at a sentinel database, nothing there may change."""
    if kind == "postgres":
        sentinel = f"dbmatrix_sentinel_{uuid.uuid4().hex[:8]}"
        admin = psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True)
        admin.execute(f'CREATE DATABASE "{sentinel}"')
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{sentinel}"
    else:
        sentinel_file = tmp_path / "app.db"
        import sqlite3

        sqlite3.connect(sentinel_file).close()
        url = f"sqlite:///{sentinel_file}"
    try:
        proc = migrate("--alembic", str(CHAINS / "foreign_env" / "alembic.ini"), "--target", kind,
                       "--out", str(tmp_path / "out"), env={"APP_DATABASE_URL": url})
        assert proc.returncode == 2, proc.stdout + proc.stderr
        stopped = [ln for ln in proc.stderr.splitlines() if ln.startswith("dbmatrix: STOPPED:")]
        assert len(stopped) == 1 and "instead of dbmatrix's scratch database" in stopped[0], proc.stderr
        assert "Traceback" not in proc.stderr
        assert not (tmp_path / "out").exists()  # nothing half-written
        if kind == "postgres":
            with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{sentinel}") as conn:
                tables = conn.execute("SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace"
                                      ).fetchall()
            assert tables == []
        else:
            import sqlite3

            with sqlite3.connect(sentinel_file) as conn:
                assert conn.execute("SELECT name FROM sqlite_master").fetchall() == []
    finally:
        if kind == "postgres":
            admin.execute(f'DROP DATABASE "{sentinel}"')
            admin.close()


@pytest.mark.parametrize("target", ["sqlite", "postgres", "mariadb"])
def test_async_env_with_prepend_sys_path_and_here(tmp_path: Path, target: str) -> None:
    """alembic's async template; models imported as a module through prepend_sys_path = %(here)s/src."""
    proc = migrate("--alembic", str(CHAINS / "app_project" / "alembic.ini"), "--models", "myapp.models:Base",
                   "--target", target, *SEED, "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = results(tmp_path)
    assert {r["case"] for r in doc["results"]} >= {"migrate.upgrade", "migrate.downgrade_restores",
                                                    "migrate.model_drift", "migrate.offline_sql"}


@pytest.mark.parametrize("args,message", [
    (["--alembic", "no/such/alembic.ini"], "alembic ini not found: no/such/alembic.ini"),
    (["--yoyo", "no/such/dir"], "yoyo migrations directory not found: no/such/dir"),
    (["--alembic", "pyproject.toml"], "cannot read pyproject.toml: ParsingError"),
    (["--alembic", "tests/migrate_chains/no_location.ini"], "has no script_location in [alembic]"),
    (["--alembic", "migrations/alembic/alembic.ini", "--models", "nope"], "expected MODULE:ATTR"),
    (["--alembic", "migrations/alembic/alembic.ini", "--models", "no_such_module_x:Base"], "cannot import"),
    (["--alembic", "migrations/alembic/alembic.ini", "--target", "nosuch"], "unknown target 'nosuch'"),
    (["--alembic", "migrations/alembic/alembic.ini", "--seed-rows", "-1"], "--seed-rows must be 0 or more"),
    ([], "one of the arguments --alembic --yoyo --django is required"),
])
def test_unusable_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    proc = migrate(*args, "--out", str(tmp_path / "out"), timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert not (tmp_path / "out").exists()


def test_multiple_heads_and_a_broken_revision_are_failures_naming_them(tmp_path: Path) -> None:
    """Two heads, then a revision with a syntax error: `fail` results that name the heads / the file."""
    project = tmp_path / "proj"
    (project / "versions").mkdir(parents=True)
    (project / "alembic.ini").write_text("[alembic]\nscript_location = %(here)s\n")
    (project / "env.py").write_text((CHAINS / "defects" / "env.py").read_text())
    rev = '"""r"""\nfrom alembic import op\nrevision = "{r}"\ndown_revision = {d}\n\n' \
          'def upgrade():\n    op.execute("SELECT 1")\n\ndef downgrade():\n    pass\n'
    (project / "versions" / "b1.py").write_text(rev.format(r="b1", d=None))
    (project / "versions" / "b2.py").write_text(rev.format(r="b2", d='"b1"'))
    (project / "versions" / "b3.py").write_text(rev.format(r="b3", d='"b1"'))
    proc = migrate("--alembic", str(project / "alembic.ini"), "--target", "sqlite", "--out", str(tmp_path / "o1"))
    assert proc.returncode == 1
    [head] = by(results(tmp_path / "o1"), "migrate.single_head")
    assert head["outcome"] == "fail" and "2 heads: b2, b3" in head["detail"], head
    (project / "versions" / "b3.py").write_text("revision = 'b3'\ndown_revision = 'b2'\ndef upgrade(:\n")
    proc = migrate("--alembic", str(project / "alembic.ini"), "--target", "sqlite", "--out", str(tmp_path / "o2"))
    assert proc.returncode == 1
    [head] = by(results(tmp_path / "o2"), "migrate.single_head")
    assert head["outcome"] == "fail" and "b3.py" in head["detail"] and "SyntaxError" in head["detail"], head


def pytest_entry(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBMATRIX_")}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args], capture_output=True,
                          text=True, timeout=600, env=env, cwd=cwd)


def test_pytest_entry_runs_the_checks_on_a_users_chain(tmp_path: Path) -> None:
    """``pytest --dbm-alembic path/alembic.ini``: one line in a team's CI; failures name check and revision."""
    ok = pytest_entry("--dbm-alembic", str(CHAINS / "app_project" / "alembic.ini"), "--dbm-models",
                      "myapp.models:Base", "--target", "sqlite", "--target", "mariadb", "--dbm-seed-rows", "50",
                      "--dbm-out", str(tmp_path / "ok"), cwd=tmp_path)
    assert ok.returncode == 0, ok.stdout[-3000:]
    doc = results(tmp_path / "ok")
    assert {(r["case"], r["target"]) for r in doc["results"]} >= {
        ("migrate.upgrade", "sqlite"), ("migrate.downgrade_restores", "mariadb"), ("migrate.model_drift", "mariadb")}
    assert all(r["verdict"] != "deviation" for r in doc["results"])
    bad = pytest_entry("--dbm-alembic", str(CHAINS / "defects" / "alembic.ini"), "--target", "sqlite",
                       "--dbm-seed-rows", "50", "--dbm-out", str(tmp_path / "bad"), cwd=tmp_path)
    assert bad.returncode == 1
    failed = sorted(ln.split("::")[1].split(" ")[0] for ln in bad.stdout.splitlines() if ln.startswith("FAILED"))
    assert failed == ["test_alembic_downgrade_restores[d02_irreversible-sqlite]",
                      "test_alembic_offline_sql[d03_rewrite-sqlite]",
                      "test_alembic_reupgrade[d02_irreversible-sqlite]"], bad.stdout[-3000:]
