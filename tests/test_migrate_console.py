"""What a user of ``dbmatrix migrate`` sees: the console is dbmatrix's lines, not alembic's INFO log (``-v`` shows
it); a pytest failure is one line about the cell; and after a failed revision every check still reports for every
revision, saying why it could not run."""

from __future__ import annotations

from pathlib import Path

from test_migrate_cli import CHAINS, by, migrate, pytest_entry, results

BRANCHED = CHAINS / "branched" / "alembic.ini"  # alembic init's env.py: fileConfig sends INFO lines to stderr
PER_REVISION = {"upgrade", "downgrade_restores", "reupgrade", "offline_sql", "duration"}


def test_tool_logging_is_quiet_unless_verbose(tmp_path: Path) -> None:
    quiet = migrate("--alembic", str(BRANCHED), "--target", "sqlite", "--seed-rows", "0", "--out", str(tmp_path / "q"))
    assert quiet.returncode == 0, quiet.stdout + quiet.stderr
    assert "INFO  [alembic" not in quiet.stderr + quiet.stdout
    assert len(quiet.stderr.splitlines()) <= 4, quiet.stderr  # preparing, walking, seeded run
    loud = migrate("-v", "--alembic", str(BRANCHED), "--target", "sqlite", "--seed-rows", "0",
                   "--out", str(tmp_path / "v"))
    assert loud.returncode == 0
    assert "INFO  [alembic.runtime.migration] Running upgrade r1_items -> r2a_tags" in loud.stderr


def test_pytest_failure_is_one_line_without_the_plugins_source(tmp_path: Path) -> None:
    bad = pytest_entry("--dbm-alembic", str(CHAINS / "defects" / "alembic.ini"), "--target", "sqlite",
                       "--dbm-seed-rows", "10", "--dbm-out", str(tmp_path / "out"), "-k", "downgrade_restores",
                       cwd=tmp_path)
    assert bad.returncode == 1
    assert "def pytest_runtest_call" not in bad.stdout and "plugin.py" not in bad.stdout, bad.stdout
    assert "INFO  [alembic" not in bad.stdout
    block = bad.stdout.split("test_alembic_downgrade_restores[d02_irreversible-sqlite] _")[1].splitlines()[1]
    assert block.startswith("migrate.downgrade_restores on sqlite/alembic: outcome 'fail', expected 'pass' — "
                            "revision d02_irreversible: downgrade left 1 difference(s): tables.accounts.columns.flag")


def broken_chain(tmp_path: Path) -> Path:
    """b1 creates a table, b2 fails on every engine, b3 comes after it."""
    project = tmp_path / "proj"
    (project / "versions").mkdir(parents=True)
    (project / "alembic.ini").write_text("[alembic]\nscript_location = %(here)s\n")
    (project / "env.py").write_text((CHAINS / "defects" / "env.py").read_text())
    rev = '"""r"""\nimport sqlalchemy as sa\nfrom alembic import op\nrevision = "{r}"\ndown_revision = {d}\n\n' \
          'def upgrade():\n    {up}\n\ndef downgrade():\n    {down}\n'
    (project / "versions" / "b1.py").write_text(rev.format(
        r="b1", d=None, up='op.create_table("t", sa.Column("id", sa.Integer, primary_key=True))',
        down='op.drop_table("t")'))
    (project / "versions" / "b2.py").write_text(rev.format(r="b2", d='"b1"', up='op.execute("SELECT * FROM nowhere")',
                                                           down="pass"))
    (project / "versions" / "b3.py").write_text(rev.format(r="b3", d='"b2"', up='op.add_column("t", sa.Column("n", '
                                                           'sa.Integer))', down='op.drop_column("t", "n")'))
    (project / "models.py").write_text("import sqlalchemy as sa\nmetadata = sa.MetaData()\n")
    return project


def test_after_a_failed_revision_every_check_says_why_it_could_not_run(tmp_path: Path) -> None:
    project = broken_chain(tmp_path)
    proc = migrate("--alembic", str(project / "alembic.ini"), "--models", str(project / "models.py") + ":metadata",
                   "--target", "sqlite", "--target", "postgres", "--seed-rows", "10", "--out", str(tmp_path / "o"))
    assert proc.returncode == 1, proc.stderr
    doc = results(tmp_path / "o")
    for target, checks in (("sqlite", PER_REVISION), ("postgres", PER_REVISION | {"locks", "lint"})):
        for check in checks:  # every revision has a cell for every check that applies to the engine
            cells = {r["params"]["revision"]: r for r in by(doc, f"migrate.{check}", target)}
            assert sorted(cells) == ["b1", "b2", "b3"], (check, target, sorted(cells))
        [up] = by(doc, "migrate.upgrade", target, "b2")
        assert up["outcome"] == "fail"
        [later] = by(doc, "migrate.upgrade", target, "b3")
        assert later["outcome"] == "skipped" and "not reached: revision b2 failed to upgrade" in later["detail"]
        [down] = by(doc, "migrate.downgrade_restores", target, "b2")
        assert down["outcome"] == "skipped" and "it failed to upgrade on this target" in down["detail"], down
        for r in by(doc, "migrate.duration", target):  # no seeded run: each revision says so
            assert r["outcome"] == "skipped" and "seeded run needs the whole chain, and revision b2 failed" in \
                r["detail"], r
        [cross] = by(doc, "migrate.cross_engine", target)
        assert cross["outcome"] == "skipped" and "revision b2 failed to upgrade" in cross["detail"], cross
        [drift] = by(doc, "migrate.model_drift", target)
        assert drift["outcome"] == "skipped" and "did not reach its head" in drift["detail"], drift
    assert {r["outcome"] for r in by(doc, "migrate.locks", "postgres")} == {"skipped"}
    [b1] = by(doc, "migrate.downgrade_restores", "postgres", "b1")
    assert b1["outcome"] == "pass"  # what was reached is still judged
