"""The catalog snapshot and diff behind every migrate check, and the offline/online statement comparison."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from dbmatrix.migrate.catalog import diff_catalogs, portable, snapshot
from dbmatrix.migrate.sqltext import compare_statements, split_offline


def _snap(path: Path, *ddl: str) -> dict:
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        for stmt in ddl:
            conn.exec_driver_sql(stmt)
    with engine.connect() as conn:
        cat = snapshot(conn)
    engine.dispose()
    return cat


def test_snapshot_reads_partial_and_expression_indexes_checks_and_defaults(tmp_path: Path) -> None:
    cat = _snap(tmp_path / "a.db",
                "CREATE TABLE t (id INTEGER PRIMARY KEY, name VARCHAR(20) NOT NULL DEFAULT 'x', "
                "n INT CONSTRAINT ck_n CHECK (n > 0))",
                "CREATE INDEX ix_partial ON t (name) WHERE n > 10",
                "CREATE INDEX ix_expr ON t (lower(name))",
                "CREATE TABLE alembic_version (version_num VARCHAR(32))")
    t = cat["tables"]["t"]
    assert set(cat["tables"]) == {"t"}  # the tool's version table is not the user's schema
    assert t["columns"]["name"] == {"type": "VARCHAR(20)", "nullable": False, "default": "'x'", "comment": None}
    assert t["checks"] == {"ck_n": "n > 0"}
    assert t["indexes"]["ix_partial"]["definition"] == "CREATE INDEX ix_partial ON t (name) WHERE n > 10"
    assert t["indexes"]["ix_expr"]["definition"] == "CREATE INDEX ix_expr ON t (lower(name))"


def test_diff_names_each_difference_with_its_path(tmp_path: Path) -> None:
    before = _snap(tmp_path / "b.db", "CREATE TABLE t (id INTEGER PRIMARY KEY, a VARCHAR(10))")
    after = _snap(tmp_path / "c.db", "CREATE TABLE t (id INTEGER PRIMARY KEY, a VARCHAR(12) NOT NULL, b INT)")
    assert diff_catalogs(before, before) == []
    assert diff_catalogs(before, after) == [
        "tables.t.columns.a.nullable: True -> False",
        "tables.t.columns.a.type: 'VARCHAR(10)' -> 'VARCHAR(12)'",
        "tables.t.columns.b: only after ({'type': 'INTEGER', 'nullable': True, 'default': None, 'comment': None})",
    ]


def test_portable_reads_an_in_list_check_as_the_enum_it_spells(tmp_path: Path) -> None:
    cat = _snap(tmp_path / "d.db", "CREATE TABLE e (id INTEGER PRIMARY KEY, kind VARCHAR(4) NOT NULL "
                                   "CONSTRAINT kind_enum CHECK (kind IN ('a', 'bb')), flag BOOLEAN)")
    cols = portable(cat)["tables"]["e"]["columns"]
    assert cols["kind"]["type"] == "enum(a, bb)" and cols["flag"]["type"] == "boolean"
    assert portable(cat)["tables"]["e"]["checks"] == []


def test_portable_keys_foreign_keys_and_indexes_by_columns_not_names(tmp_path: Path) -> None:
    cat = _snap(tmp_path / "f.db", "CREATE TABLE p (id INTEGER PRIMARY KEY)",
                "CREATE TABLE c (id INTEGER PRIMARY KEY, p_id INT REFERENCES p (id), code VARCHAR(5), "
                "slug VARCHAR(5) UNIQUE, CONSTRAINT c_code_uniq UNIQUE (code))",
                "CREATE INDEX ix_c_p_id ON c (p_id)")
    assert cat["tables"]["c"]["unique"] == {"c_code_uniq": ["code"], "(unnamed slug)": ["slug"]}
    c = portable(cat)["tables"]["c"]
    assert c["foreign_keys"] == {"(p_id) -> p(id)": {"ondelete": "NO ACTION"}}  # unnamed on SQLite: no matter
    # the FK's own index is left out; the constraints are in, the column-level one too
    assert c["indexes"] == {"(code)": {"unique": True}, "(slug)": {"unique": True}}


def test_offline_statements_match_online_ones_up_to_their_parameters() -> None:
    offline = ("BEGIN;\n\n-- Running upgrade  -> r1\n\nCREATE TABLE t (\n    id INTEGER\n);\n\n"
               "INSERT INTO alembic_version (version_num) VALUES ('r1');\n\nUPDATE t SET id = 1 WHERE id = 2;\n\n"
               "COMMIT;\n")
    assert split_offline(offline)[1:3] == ["CREATE TABLE t (\n    id INTEGER\n)",
                                           "INSERT INTO alembic_version (version_num) VALUES ('r1')"]
    online = ["CREATE TABLE t (id INTEGER)", "SELECT 1", "UPDATE t SET id = %(p)s WHERE id = 2"]
    assert compare_statements(offline, online) == ([], [])
    assert compare_statements(offline, ["CREATE TABLE u (id INTEGER)"]) == (
        ["create table t (id integer)", "update t set id = 1 where id = 2"], ["create table u (id integer)"])
