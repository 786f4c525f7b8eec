"""Branched alembic chains (tests/migrate_chains/branched: a branch point with two children, two branches, a
``depends_on`` across them, a merge) and the stock ``alembic init`` env.py, which builds its own engine.

The walk must follow the graph as alembic does: no false alarm on a merge or its parents, a non-restoring
downgrade on one branch still caught, several heads named with their branches; the lock probe must see the
migration through that env.py (ACCESS EXCLUSIVE and the rewrite on PostgreSQL, the metadata lock on MariaDB),
and a probe that saw nothing is ``unsupported``, never ``pass``.
"""

from __future__ import annotations

import contextlib
import shutil
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from test_migrate_cli import by, leftover_scratch, migrate, results

from dbmatrix.engines.base import LOCK_TIMEOUT_S
from dbmatrix.migrate.alembic_project import AlembicProject
from dbmatrix.migrate.checks import locks
from dbmatrix.migrate.guard import scratch_guard
from dbmatrix.migrate.locks import seeded_run
from dbmatrix.migrate.walk import Step, Walk

BRANCHED = Path(__file__).resolve().parent / "migrate_chains" / "branched"
ORDER_FREE = ["r1_items", "r2a_tags", "r2b_notes", "r3a_tag_color", "r3b_note_tags", "m4_merge", "r5_rewrite"]
# lint findings of the chain that are real (a plain CREATE INDEX; a column type change rewrites the table)
REAL_LINT = {"m4_merge", "r5_rewrite"}


def copy_chain(tmp_path: Path) -> Path:
    chain = tmp_path / "chain"
    shutil.copytree(BRANCHED, chain)
    return chain


def test_steps_follow_the_graph_in_a_topological_order() -> None:
    steps = AlembicProject(BRANCHED / "alembic.ini").steps(make_url("sqlite://"))
    order = [s.id for s in steps]
    assert sorted(order) == sorted(ORDER_FREE)
    for s in steps:  # every revision after all it revises and all it depends on
        assert all(order.index(n) < order.index(s.id) for n in s.needs), (s, order)
    by_id = {s.id: s for s in steps}
    assert by_id["m4_merge"].parents == ("r3a_tag_color", "r3b_note_tags")
    assert by_id["m4_merge"].label == "m4_merge (merge of r3a_tag_color, r3b_note_tags)"
    assert by_id["r1_items"].label == "r1_items (branch point of 2 branches)"
    assert by_id["r3b_note_tags"].needs == ("r2b_notes", "r2a_tags")
    assert by_id["r3b_note_tags"].label == "r3b_note_tags (depends on r2a_tags)"


def test_merge_gives_no_false_alarm_and_a_planted_branch_defect_is_caught(tmp_path: Path) -> None:
    """The clean chain: every revision's downgrade restores and re-upgrade reproduces, merge and parents included.
    Then r3a_tag_color's downgrade is made to leave its column: that revision alone fails, naming the column."""
    proc = migrate("--alembic", str(BRANCHED / "alembic.ini"), "--target", "sqlite", "--target", "postgres",
                   "--seed-rows", "0", "--out", str(tmp_path / "clean"))
    doc = results(tmp_path / "clean")
    bad = [(r["case"], r["target"], r["params"].get("revision"), r["detail"]) for r in doc["results"]
           if r["outcome"] in ("fail", "error") and not (r["case"] == "migrate.lint" and
                                                           r["params"].get("revision") in REAL_LINT)]
    assert bad == [], proc.stdout + proc.stderr
    for target in ("sqlite", "postgres"):
        for check in ("migrate.upgrade", "migrate.downgrade_restores", "migrate.reupgrade"):
            assert sorted(r["params"]["revision"] for r in by(doc, check, target)) == sorted(ORDER_FREE), check
        [merge] = by(doc, "migrate.downgrade_restores", target, "m4_merge")
        assert merge["detail"] == ("revision m4_merge (merge of r3a_tag_color, r3b_note_tags): downgrade restores "
                                   "the catalog")

    chain = copy_chain(tmp_path)
    rev = chain / "versions" / "r3a_tag_color.py"
    text = rev.read_text()
    planted = "def downgrade() -> None:\n    pass  # PLANTED: leaves tags.color\n"
    rev.write_text(text[:text.index("def downgrade")] + planted)
    proc = migrate("--alembic", str(chain / "alembic.ini"), "--target", "sqlite", "--target", "postgres",
                   "--seed-rows", "0", "--out", str(tmp_path / "planted"))
    assert proc.returncode == 1
    doc = results(tmp_path / "planted")
    for target in ("sqlite", "postgres"):
        failed = {r["params"]["revision"]: r for r in by(doc, "migrate.downgrade_restores", target)
                  if r["outcome"] != "pass"}
        assert list(failed) == ["r3a_tag_color"], failed
        assert "tables.tags.columns.color: only after" in failed["r3a_tag_color"]["detail"], failed
        # the walk went on past it (the downgrade changed nothing, so it marked the revision applied)
        assert {r["outcome"] for r in by(doc, "migrate.downgrade_restores", target, "m4_merge")} == {"pass"}
    assert leftover_scratch(doc["run"]["id"]) == []


def test_several_heads_are_named_with_their_branches_and_still_walked(tmp_path: Path) -> None:
    chain = copy_chain(tmp_path)
    (chain / "versions" / "m4_merge.py").unlink()
    (chain / "versions" / "r5_rewrite.py").unlink()
    proc = migrate("--alembic", str(chain / "alembic.ini"), "--target", "sqlite", "--seed-rows", "0",
                   "--out", str(tmp_path / "out"))
    assert proc.returncode == 1
    doc = results(tmp_path / "out")
    [head] = by(doc, "migrate.single_head")
    assert head["outcome"] == "fail"
    assert head["detail"] == ("2 heads: r3a_tag_color, r3b_note_tags: r3a_tag_color (branch r2a_tags -> "
                              "r3a_tag_color); r3b_note_tags (branch r2b_notes -> r3b_note_tags)"), head
    assert {r["params"]["revision"]: r["outcome"] for r in by(doc, "migrate.downgrade_restores")} == {
        r: "pass" for r in ORDER_FREE if r not in ("m4_merge", "r5_rewrite")}


@pytest.mark.parametrize("target", ["postgres", "mariadb"])
def test_lock_probe_sees_through_the_stock_env_py(tmp_path: Path, target: str) -> None:
    """50,000 rows: int -> bigint on items, run by the engine env.py builds for itself."""
    proc = migrate("--alembic", str(BRANCHED / "alembic.ini"), "--target", target, "--seed-rows", "50000",
                   "--out", str(tmp_path))
    doc = results(tmp_path)
    [cell] = by(doc, "migrate.locks", target, "r5_rewrite")
    assert cell["outcome"] == "fail", proc.stdout + proc.stderr
    assert "items (50000 rows) was rewritten" in cell["detail"], cell
    held = {f["lock"] for f in cell["findings"] if f.get("table") == "items" and "lock" in f}
    if target == "postgres":
        assert "AccessExclusiveLock" in held and "relfilenode" in cell["detail"], cell
        assert any(f.get("access_exclusive") and f["rows"] == 50000 for f in cell["findings"]), cell
    else:
        assert held & {"MDL_EXCLUSIVE", "MDL_SHARED_NO_WRITE"}, cell
        assert "InnoDB table id" in cell["detail"], cell
    # every revision has a verdict the probe earned: none of them unseen
    assert {r["outcome"] for r in by(doc, "migrate.locks", target)} <= {"pass", "fail"}


class _Elsewhere:
    """A chain whose tool runs its migration where the probe cannot see it (here: nowhere at all)."""

    tool, version_table = "elsewhere", "none"

    def steps(self) -> list[Step]:
        return [Step("e1", (), "e1.sql")]

    def up(self, step: Step) -> None:
        pass

    def observe(self, hook: Any) -> Any:  # no statement ever reaches the hook
        return contextlib.nullcontext()


def test_a_probe_that_saw_nothing_is_unsupported_not_pass() -> None:
    name = f"migr_probe_{uuid.uuid4().hex[:8]}"  # a database of this test's own: the probe watches all of it
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        engine = sa.create_engine(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}", poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as conn:
                seeded = seeded_run(_Elsewhere(), conn, engine, 10, None)  # type: ignore[arg-type]
        finally:
            engine.dispose()
            admin.execute(f'DROP DATABASE "{name}"')
    walk = Walk(target="postgres", engine="postgresql", tool="elsewhere", extra={"seeded": seeded})
    [cell] = locks(walk)
    assert cell.outcome == "unsupported", cell
    assert "the probe saw no statement of this revision's migration" in (cell.detail or ""), cell


@pytest.mark.parametrize("url,query,want", [
    ("postgresql+psycopg://postgres@127.0.0.1:5432/postgres", "SHOW lock_timeout", f"{LOCK_TIMEOUT_S}s"),
    ("mysql+pymysql://root@127.0.0.1:3306/mysql", "SELECT @@lock_wait_timeout", LOCK_TIMEOUT_S),
])
def test_a_connection_env_py_opens_itself_gets_the_engines_bounds(url: str, query: str, want: Any) -> None:
    """An engine built inside the migration (as env.py's engine_from_config does) is bounded by the engine's own
    lock timeout (engines/), not left at the server's default (MariaDB: a year)."""
    with scratch_guard(sa.make_url(url)):
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        with engine.connect() as conn:
            assert conn.execute(sa.text(query)).scalar_one() == want
        engine.dispose()
