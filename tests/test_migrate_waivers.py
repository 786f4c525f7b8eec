"""``[tool.dbmatrix.migrate]``: findings a project accepts with a reason (a knowingly irreversible downgrade, a lint
rule, a check of one revision). Waived cells stay ``fail`` (counted), carry the reason, and no longer make the run
red; a finding nobody accepted still does; bad waiver config is one line and exit 2."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from test_migrate_cli import CHAINS, DBMATRIX, by, pytest_entry, results

from dbmatrix.errors import UsageError
from dbmatrix.migrate.alembic_project import AlembicProject
from dbmatrix.migrate.waivers import Waiver, load_waivers, waived_by

PEOPLE = CHAINS / "people" / "alembic.ini"
IRREVERSIBLE = """[tool.dbmatrix.migrate.irreversible]
p03_drop_full_name = "full_name is dropped for good; its names are not restored"
"""
ACCEPT_LINT = """[[tool.dbmatrix.migrate.accept]]
check = "lint"
revision = "p03_drop_full_name"
rule = "ban-drop-column"
reason = "no client reads full_name since release 4"
"""
ACCEPT_OFFLINE = """[[tool.dbmatrix.migrate.accept]]
check = "offline_sql"
revision = "p02_split_name"
reason = "the backfill reads rows: this revision runs online only"
"""


def migrate_in(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBMATRIX_")}
    return subprocess.run([str(DBMATRIX), "migrate", "--alembic", str(PEOPLE), *args], capture_output=True,
                          text=True, timeout=300, env=env, cwd=cwd)


def test_waived_findings_are_shown_with_their_reason_counted_and_not_red(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(IRREVERSIBLE + ACCEPT_OFFLINE)
    proc = migrate_in(tmp_path, "--target", "sqlite", "--target", "postgres", "--seed-rows", "10", "--out", "o1")
    assert proc.returncode == 1, proc.stdout + proc.stderr  # the lint finding is not accepted yet
    doc = results(tmp_path / "o1")
    [lint] = by(doc, "migrate.lint", "postgres", "p03_drop_full_name")
    assert lint["outcome"] == "fail" and lint["verdict"] == "deviation", lint
    for target in ("sqlite", "postgres"):
        [down] = by(doc, "migrate.downgrade_restores", target, "p03_drop_full_name")
        assert down["outcome"] == "fail" and down["verdict"] == "as-expected", down  # still a fail: counted
        assert down["detail"].startswith("waived (full_name is dropped for good; its names are not restored): "
                                         "revision p03_drop_full_name: downgrade left 1 difference(s)"), down
        assert {"waived": "full_name is dropped for good; its names are not restored"} in down["findings"]
        [offline] = by(doc, "migrate.offline_sql", target, "p02_split_name")
        assert offline["verdict"] == "as-expected" and "runs online only" in offline["detail"], offline
    assert "WAIVED migrate.downgrade_restores [p03_drop_full_name] on sqlite: waived (full_name" in proc.stdout
    assert "4 waived" in proc.stdout.splitlines()[-1] and " 1 failed" in proc.stdout.splitlines()[-1], proc.stdout

    (tmp_path / "pyproject.toml").write_text(IRREVERSIBLE + ACCEPT_OFFLINE + ACCEPT_LINT)
    proc = migrate_in(tmp_path, "--target", "postgres", "--seed-rows", "10", "--out", "o2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 failed, 3 waived" in proc.stdout.splitlines()[-1], proc.stdout
    report = (tmp_path / "o2" / "latest" / "report.md").read_text()
    assert "waived (no client reads full_name since release 4)" in report


def test_pytest_entry_honours_the_waivers(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(IRREVERSIBLE + ACCEPT_OFFLINE)
    proc = pytest_entry("--dbm-alembic", str(PEOPLE), "--target", "sqlite", "--dbm-seed-rows", "10",
                        "--dbm-out", str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:]
    doc = results(tmp_path / "out")
    waived = [r for r in doc["results"] if r["outcome"] == "fail"]
    assert sorted((r["case"], r["params"]["revision"]) for r in waived) == [
        ("migrate.downgrade_restores", "p03_drop_full_name"), ("migrate.offline_sql", "p02_split_name")]
    assert all(r["verdict"] == "as-expected" and r["detail"].startswith("waived (") for r in waived), waived


def test_a_lint_cell_is_waived_only_when_every_rule_it_found_is_accepted() -> None:
    found = [{"rule": "ban-drop-column"}, {"rule": "renaming-column"}]
    one = Waiver(("lint",), "r1", "dropping is fine", rule="ban-drop-column")
    other = Waiver(("lint",), "r1", "the rename is deliberate", rule="renaming-column")
    assert waived_by([one], "lint", "r1", "postgres", "fail", found) == []
    assert waived_by([one, other], "lint", "r1", "postgres", "fail", found) == [one, other]
    assert waived_by([one, other], "lint", "r2", "postgres", "fail", found) == []  # another revision
    assert waived_by([one, other], "lint", "r1", "postgres", "error", found) == []  # an error is our bug


@pytest.mark.parametrize("config,message", [
    ('[tool.dbmatrix.migrate.irreversible]\np09_nope = "gone"\n', "irreversible: no revision 'p09_nope' in the chain"),
    ('[tool.dbmatrix.migrate.irreversible]\np03_drop_full_name = ""\n', "needs its reason"),
    ('[[tool.dbmatrix.migrate.accept]]\ncheck = "lint"\nrevision = "p03_drop_full_name"\n', "needs its reason"),
    ('[[tool.dbmatrix.migrate.accept]]\ncheck = "lnt"\nrevision = "p01_people"\nreason = "x"\n',
     "check must be one of"),
    ('[[tool.dbmatrix.migrate.accept]]\ncheck = "locks"\nreason = "x"\n', "name the revision"),
    ('[[tool.dbmatrix.migrate.accept]]\ncheck = "locks"\nrevision = "p01_people"\nrule = "x"\nreason = "x"\n',
     "rule names a squawk rule"),
    ('[tool.dbmatrix.migrate]\nirreversable = {}\n', "unknown key 'irreversable'"),
])
def test_bad_waiver_config_is_refused_naming_the_file_and_the_entry(tmp_path: Path, config: str, message: str) -> None:
    (tmp_path / "pyproject.toml").write_text(config)
    with pytest.raises(UsageError) as err:
        load_waivers(tmp_path, AlembicProject(PEOPLE).revision_ids())
    assert message in str(err.value) and "pyproject.toml" in str(err.value), err.value


def test_bad_waiver_config_is_one_line_and_exit_2_before_anything_runs(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.dbmatrix.migrate.irreversible]\np09_nope = "gone"\n')
    proc = migrate_in(tmp_path, "--target", "sqlite", "--out", "o")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "no revision 'p09_nope' in the chain" in lines[0], proc.stderr
    assert not (tmp_path / "o").exists()
