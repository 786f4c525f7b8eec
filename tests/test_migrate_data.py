"""docs/migrate.md's worked example, run as a user would: its waiver config in pyproject.toml and its data-migration
test beside it, on tests/migrate_chains/people, on sqlite and postgres. The documented test passes once per target
(a wrong expectation fails on each), the waived findings keep the run green, and no scratch database is left."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
from test_migrate_cli import CHAINS, REPO, pytest_entry, results

DOC = REPO / "docs" / "migrate.md"
TEST = "test_split_name_fills_first_and_last_name"


def block(lang: str) -> str:
    """The first fenced ``lang`` block of docs/migrate.md."""
    found = re.search(rf"^```{lang}\n(.*?)^```$", DOC.read_text(encoding="utf-8"), re.M | re.S)
    assert found, f"docs/migrate.md has no {lang} block"
    return found.group(1)


def test_the_documented_example_runs_on_every_target(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(block("toml"))
    example = block("python")
    (tmp_path / "test_people_migration.py").write_text(example)
    wrong = example.replace('("Ada", "Lovelace")', '("Ada Lovelace", None)')
    assert wrong != example
    (tmp_path / "test_people_wrong.py").write_text(wrong)  # proves the documented assertion can fail
    proc = pytest_entry("test_people_migration.py", "test_people_wrong.py", "-rA", "--rootdir", str(tmp_path),
                        "--dbm-alembic",
                        str(CHAINS / "people" / "alembic.ini"), "--target", "sqlite", "--target", "postgres",
                        "--dbm-seed-rows", "10", "--dbm-out", str(tmp_path / "out"), cwd=tmp_path)
    out = proc.stdout
    for target in ("sqlite", "postgres"):
        assert f"PASSED test_people_migration.py::{TEST}[{target}]" in out, out[-3000:]
        assert f"FAILED test_people_wrong.py::{TEST}[{target}]" in out, out[-3000:]
    failed = sorted(ln.split(" ")[1] for ln in out.splitlines() if ln.startswith("FAILED "))
    assert failed == [f"test_people_wrong.py::{TEST}[postgres]", f"test_people_wrong.py::{TEST}[sqlite]"], out[-3000:]
    doc = results(tmp_path / "out")  # the chain's checks ran too: the documented waivers keep them green
    waived = sorted((r["case"], r["target"]) for r in doc["results"] if r["outcome"] == "fail")
    assert waived == [("migrate.downgrade_restores", "postgres"), ("migrate.downgrade_restores", "sqlite"),
                      ("migrate.lint", "postgres"), ("migrate.offline_sql", "postgres"),
                      ("migrate.offline_sql", "sqlite")], waived
    assert all(r["verdict"] == "as-expected" for r in doc["results"] if r["outcome"] == "fail")
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres") as pg:
        left = pg.execute("SELECT datname FROM pg_database WHERE datname LIKE %s",
                          (f"dbmatrix_{doc['run']['id']}%",)).fetchall()
    assert left == []
