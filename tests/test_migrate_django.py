"""``dbmatrix migrate --django`` end to end on the live local servers: the reference app's migrations get every
check with the findings that are real (a rewrite, lint rules, an irreversible data migration), each planted defect
is caught and named, a settings module that connects on import is stopped, bad input is one line and exit 2, and
``pytest --dbm-django`` runs the same checks as test cells."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from test_migrate_cli import REFERENCE, by, leftover_scratch, migrate, pytest_entry, results

DJANGO = REFERENCE / "django"
DEFECTS = Path(__file__).resolve().parent / "migrate_chains" / "django_defects"
ENGINES = ["--target", "sqlite", "--target", "postgres", "--target", "mariadb"]
SEED = ["--seed-rows", "300"]
REWRITE = "shop.0007_order_total_decimal"  # integer -> numeric(12, 2): the table is rebuilt on both servers
IRREVERSIBLE = "shop.0005_upper_names"  # RunPython without reverse_code
# squawk's findings on the reference chain's sqlmigrate output that are real
REFERENCE_LINT = {"shop.0002_customer_status": ["ban-drop-default"],
                  "shop.0003_rename_name_full_name": ["renaming-column"],
                  "shop.0007_order_total_decimal": ["changing-column-type"],
                  "shop.0008_customer_full_name_unique": ["constraint-missing-not-valid",
                                                          "disallowed-unique-constraint"]}
# SQLite: Django's table rebuild runs CREATE TABLE with the live table's column order; sqlmigrate renders the
# model state's order (a real difference between what sqlmigrate prints and what runs)
SQLITE_REBUILDS = {"shop.0002_customer_status", "shop.0007_order_total_decimal"}


def test_reference_app_gets_every_check_with_its_real_findings(tmp_path: Path) -> None:
    proc = migrate("--django", str(DJANGO / "manage.py"), *ENGINES, *SEED, "--out", str(tmp_path))
    doc = results(tmp_path)
    assert proc.returncode == 1, proc.stderr[-2000:]
    for target in ("sqlite", "postgres", "mariadb"):
        assert [r["outcome"] for r in by(doc, "migrate.single_leaf", target)] == ["pass"]
        ups = by(doc, "migrate.upgrade", target)
        assert len(ups) == 8 and {r["outcome"] for r in ups} == {"pass"}
        downs = {r["params"]["revision"]: r for r in by(doc, "migrate.downgrade_restores", target)}
        irreversible = downs.pop(IRREVERSIBLE)
        assert irreversible["outcome"] == "fail"
        assert "operation 1 (RunPython without reverse_code)" in irreversible["detail"]
        assert {r["outcome"] for r in downs.values()} == {"pass"} and len(downs) == 7
        reups = {r["params"]["revision"]: r for r in by(doc, "migrate.reupgrade", target)}
        # every check reports for every revision: the irreversible one has nothing to upgrade again, and says so
        assert reups.pop(IRREVERSIBLE)["outcome"] == "skipped"
        assert {r["outcome"] for r in reups.values()} == {"pass"} and len(reups) == 7
        assert [r["outcome"] for r in by(doc, "migrate.model_drift", target)] == ["pass"]
        assert [r["outcome"] for r in by(doc, "migrate.partial_failure", target)] == ["pass"]
        offline = {r["params"]["revision"]: r["outcome"] for r in by(doc, "migrate.offline_sql", target)}
        assert {rev for rev, o in offline.items() if o != "pass"} == (SQLITE_REBUILDS if target == "sqlite" else set())
        data = {r["params"]["revision"]: r for r in by(doc, "migrate.data_migration", target)}
        assert data[IRREVERSIBLE]["metrics"] == {"forward_rows": 300}  # every name upper-cased, no way back
        assert data["shop.0006_note_large_orders"]["metrics"] == {"forward_rows": 201, "backward_rows": 201}
    for target in ("postgres", "mariadb"):
        locks = {r["params"]["revision"]: r for r in by(doc, "migrate.locks", target)}
        rewritten = locks.pop(REWRITE)
        assert rewritten["outcome"] == "fail" and "shop_order (300 rows) was rewritten" in rewritten["detail"]
        assert {r["outcome"] for r in locks.values()} == {"pass"} and len(locks) == 7
    # AddIndexConcurrently: the index is built under SHARE UPDATE EXCLUSIVE, writers go on
    concurrent = by(doc, "migrate.locks", "postgres", "shop.0004_order_total_index")[0]
    assert {f["lock"] for f in concurrent["findings"]} == {"ShareUpdateExclusiveLock"}, concurrent
    lint = {r["params"]["revision"]: r for r in by(doc, "migrate.lint", "postgres")}
    assert {rev: sorted(f["rule"] for f in r.get("findings", [])) for rev, r in lint.items()
            if r["outcome"] == "fail"} == REFERENCE_LINT
    assert lint["shop.0004_order_total_index"]["outcome"] == "pass"  # CONCURRENTLY, outside a transaction
    cross = {r["target"]: r for r in by(doc, "migrate.cross_engine")}
    # the same models give another schema on SQLite (the first engine, the reference): DecimalField(12, 2) is an
    # unsized "decimal" there, so the precision the other engines enforce is not
    for target in ("postgres", "mariadb"):
        assert cross[target]["outcome"] == "fail"
        assert "tables.shop_order.columns.total.type: 'decimal' -> 'numeric(12,2)'" in cross[target]["detail"]
        # names are not compared: SQLite's unnamed inline REFERENCES, InnoDB's own index per foreign key, a unique
        # constraint listed as an index are the same schema
        assert "foreign_keys" not in cross[target]["detail"] and "indexes" not in cross[target]["detail"]
    assert leftover_scratch(doc["run"]["id"]) == []


def test_planted_defects_are_caught_and_named(tmp_path: Path) -> None:
    base = ["--django", "defsite.settings", "--pythonpath", str(DEFECTS), "--seed-rows", "50"]
    proc = migrate(*base, "--app", "conflict", "--app", "drift", "--app", "badreverse",
                   "--target", "sqlite", "--target", "postgres", "--out", str(tmp_path / "a"))
    assert proc.returncode == 1
    doc = results(tmp_path / "a")
    for target in ("sqlite", "postgres"):
        [leaf] = by(doc, "migrate.single_leaf", target)
        assert leaf["outcome"] == "fail" and "app conflict has 2 leaf migrations: 0002_a, 0002_b" in leaf["detail"]
        [drift] = by(doc, "migrate.model_drift", target)
        assert drift["outcome"] == "fail" and "drift: + Add field colour to widget" in drift["detail"], drift
        [leak] = by(doc, "migrate.downgrade_restores", target, "badreverse.0003_leaky_reverse")
        assert leak["outcome"] == "fail" and "indexes.badreverse_leaky: only after" in leak["detail"]
    [plain] = by(doc, "migrate.lint", "postgres", "badreverse.0002_name_index")
    assert [f["rule"] for f in plain["findings"]] == ["require-concurrent-index-creation"]

    proc = migrate(*base, "--app", "halfway", "--target", "postgres", "--target", "mariadb",
                   "--out", str(tmp_path / "b"))
    doc = results(tmp_path / "b")
    [pg] = by(doc, "migrate.partial_failure", "postgres")
    assert pg["outcome"] == "pass" and "left the schema as it was (atomic = True)" in pg["detail"]
    [my] = by(doc, "migrate.partial_failure", "mariadb")
    assert my["outcome"] == "fail" and "mysql cannot roll back DDL" in my["detail"]
    assert "tables.halfway_part.columns.size: only after" in my["detail"]


def test_a_graph_django_cannot_build_is_named(tmp_path: Path) -> None:
    proc = migrate("--django", "defsite.broken_settings", "--pythonpath", str(DEFECTS), "--target", "sqlite",
                   "--out", str(tmp_path))
    assert proc.returncode == 1, proc.stderr
    [leaf] = by(results(tmp_path), "migrate.single_leaf", "sqlite")
    assert leaf["outcome"] == "fail" and "NodeNotFoundError: Migration broken.0001_initial dependencies reference " \
        "nonexistent parent node ('broken', '0000_missing')" in leaf["detail"]


def test_settings_connecting_on_import_are_stopped(tmp_path: Path) -> None:
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as pg:
        pg.execute("DROP TABLE IF EXISTS dbmatrix_sentinel_django")
    proc = migrate("--django", "connecting.settings", "--pythonpath", str(DEFECTS), "--target", "sqlite",
                   "--out", str(tmp_path))
    assert proc.returncode == 2
    assert "STOPPED: the Django settings module connecting.settings opened a database connection" in proc.stderr
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres") as pg:
        assert pg.execute("SELECT to_regclass('dbmatrix_sentinel_django')").fetchone() == (None,)


@pytest.mark.parametrize("args,message", [
    (["--django", "no_such_pkg.settings"], "cannot import no_such_pkg.settings"),
    (["--django", "nowhere/manage.py"], "file not found: nowhere/manage.py"),
    (["--django", "refsite.settings", "--pythonpath", str(DJANGO), "--app", "nope"], "--app nope: no installed app"),
    (["--yoyo", str(REFERENCE / "yoyo" / "sqlite"), "--app", "shop"], "--app and --pythonpath go with --django"),
])
def test_unusable_django_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    proc = migrate(*args, "--target", "sqlite", "--out", str(tmp_path))
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_pytest_entry_runs_the_checks_on_a_django_project(tmp_path: Path) -> None:
    proc = pytest_entry("--dbm-django", "defsite.settings", "--dbm-django-app", "badreverse", "--target", "sqlite",
                        "--dbm-seed-rows", "20", "--dbm-out", str(tmp_path), "--rootdir", str(DEFECTS),
                        cwd=DEFECTS)
    assert proc.returncode == 1, proc.stdout[-3000:]
    failed = sorted(ln.split("::")[1].split(" ")[0] for ln in proc.stdout.splitlines() if ln.startswith("FAILED"))
    assert failed == ["test_django_downgrade_restores[badreverse.0003_leaky_reverse-sqlite]",
                      "test_django_reupgrade[badreverse.0003_leaky_reverse-sqlite]"], proc.stdout[-3000:]
    doc = results(tmp_path)
    assert {r["case"] for r in doc["results"]} >= {"migrate.single_leaf", "migrate.upgrade", "migrate.offline_sql",
                                                   "migrate.model_drift"}
