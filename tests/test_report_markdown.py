"""Markdown report: rendered from the results document alone."""

from __future__ import annotations

import json

from report_samples import LEAKED_PASSWORD, cell, clone, sample_document

from dbmatrix import redaction
from dbmatrix.report import render_markdown, write_reports
from dbmatrix.results import load_document


def _section(md: str, family: str) -> str:
    return md.split(f"\n## {family}\n", 1)[1].split("\n## ", 1)[0]


def _table_rows(section: str) -> list[str]:
    return [line for line in section.splitlines() if line.startswith("|")]


def _split_row(line: str) -> list[str]:
    # Split on unescaped pipes only, as a GFM renderer would.
    cells, cur, prev = [], "", ""
    for ch in line.strip()[1:-1]:
        if ch == "|" and prev != "\\":
            cells.append(cur.strip())
            cur = ""
        else:
            cur += ch
        prev = ch
    return [*cells, cur.strip()]


def test_header_and_summary() -> None:
    md = render_markdown(sample_document())
    assert md.startswith("# dbmatrix report — run `20250101120000_abc123`")
    for text in ("2025-01-01T12:00:00+00:00", "2025-01-01T12:05:00+00:00", "Complete: yes", "3.11.7", "0.1.0"):
        assert text in md
    assert "9 cells: supported 2, unsupported 1, differs 1, allowed 1, prevented 1, pass 1, measured 1, error 1" in md
    assert "deviations: 1" in md


def test_incomplete_run_is_flagged() -> None:
    doc = sample_document()
    doc["run"]["complete"] = False
    assert "Complete: **no — partial results**" in render_markdown(doc)


def test_targets_table_keeps_redacted_url_and_reason() -> None:
    md = render_markdown(sample_document())
    rows = {_split_row(r)[0]: _split_row(r) for r in _table_rows(_section(md, "Targets"))}
    assert rows["postgres"] == [
        "postgres",
        "postgresql",
        "15.18",
        "postgresql://postgres:***@127.0.0.1:5432/postgres",
        "ok",
        "",
    ]
    assert rows["mariadb"][4:] == ["skipped", "connection refused"]


def test_one_matrix_per_family_sorted_columns_and_empty_cells() -> None:
    md = render_markdown(sample_document())
    families = [line[3:] for line in md.splitlines() if line.startswith("## ") and line != "## Targets"]
    assert families == ["bench", "isolation", "migrate", "types"]
    rows = _table_rows(_section(md, "types"))
    assert _split_row(rows[0]) == ["case", "postgres / asyncpg", "postgres / psycopg", "sqlite / sqlite3"]
    body = {_split_row(r)[0]: _split_row(r)[1:] for r in rows[2:]}
    assert body["types.int_limits"][0] == "·"  # no asyncpg cell for this case
    assert body["types.int_limits"][1] == "supported"
    assert body["types.timestamptz_roundtrip"] == ["supported", "·", "unsupported"]


def test_deviation_marked_and_pipes_newlines_escaped() -> None:
    md = render_markdown(sample_document())
    rows = _table_rows(_section(md, "types"))
    width = len(_split_row(rows[0]))
    assert all(len(_split_row(r)) == width for r in rows), rows
    assert _split_row(rows[2])[3] == "differs ⚠"


def test_params_rendered_compactly_as_separate_rows() -> None:
    md = render_markdown(sample_document())
    labels = [_split_row(r)[0] for r in _table_rows(_section(md, "isolation"))[2:]]
    assert labels == [
        "isolation.lost_update (isolation=read committed)",
        "isolation.lost_update (isolation=repeatable read)",
    ]


def test_details_list_non_quiet_cells_and_deviations() -> None:
    md = render_markdown(sample_document())
    types = _section(md, "types")
    assert (
        "- types.int_limits · sqlite/sqlite3: differs — 9223372036854775808 | overflowed to REAL "
        "[expected supported, verdict deviation]"
    ) in types
    assert "- types.timestamptz_roundtrip · sqlite/sqlite3: unsupported — no time zone type" in types
    assert "postgres/psycopg: supported" not in types  # quiet outcomes are not repeated below the table
    iso = _section(md, "isolation")
    assert (
        "- isolation.lost_update [isolation=repeatable read] · postgres/psycopg: prevented (abort:40001) — "
        "could not serialize access due to concurrent update [expected prevented, verdict as-expected]"
    ) in iso
    assert "**Details**" not in _section(md, "bench")  # measured only: nothing to explain


def test_supported_deviation_still_gets_a_detail_line() -> None:
    doc = sample_document()
    doc["results"].append(
        cell("sql.upsert", "sqlite", "sqlite3", "supported", expected="unsupported", verdict="deviation")
    )
    assert "- sql.upsert · sqlite/sqlite3: supported [expected unsupported, verdict deviation]" in render_markdown(doc)


def test_registered_password_never_rendered() -> None:
    redaction.register_secret(LEAKED_PASSWORD)
    md = render_markdown(sample_document())
    assert LEAKED_PASSWORD not in md
    assert "connection failed: password=*** rejected" in md
    assert "postgresql://postgres:***@127.0.0.1:5432/postgres" in md


def test_unregistered_url_password_is_masked() -> None:
    doc = sample_document()
    doc["targets"][1]["url"] = "postgresql://bob:s3cretNotRegistered@db/x"
    md = render_markdown(doc)
    assert "s3cretNotRegistered" not in md
    assert "postgresql://bob:***@db/x" in md


def test_empty_document() -> None:
    doc = sample_document()
    doc["results"] = []
    doc["targets"] = []
    md = render_markdown(doc)
    assert "No results." in md and "0 cells: no cells; deviations: 0" in md


def test_write_reports_round_trip(tmp_path) -> None:
    src = tmp_path / "results.json"
    src.write_text(json.dumps(clone(sample_document())), encoding="utf-8")
    doc = load_document(src)
    paths = write_reports(doc, tmp_path / "out")
    assert [p.name for p in paths] == ["report.md", "report.html"]
    assert paths[0].read_text(encoding="utf-8") == render_markdown(doc)
    assert paths[1].read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["report.html", "report.md"]  # no temp leftovers
