"""Markdown report: summary first, findings grouped by reason, narrow tables; rendered from the document alone."""

from __future__ import annotations

import json

from report_samples import LEAKED_PASSWORD, cell, clone, large_document, sample_document

from dbmatrix import redaction
from dbmatrix.report import render_html, render_markdown, sections, write_reports
from dbmatrix.results import load_document

MAX_LINE = 180  # a pull-request comment stays readable without horizontal scrolling


def _section(md: str, title: str) -> str:
    """The text under a heading, up to the next heading of the same or a higher level."""
    level = title.split(" ", 1)[0]
    body = md.split(f"\n{title}\n", 1)[1]
    for stop in {"\n## ", f"\n{level} "}:
        body = body.split(stop, 1)[0]
    return body


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
    cells.append(cur.strip())
    return cells


def test_summary_comes_first_with_counts_and_skipped_targets() -> None:
    md = render_markdown(sample_document())
    lines = md.splitlines()
    assert lines[0] == "# dbmatrix report — run `20250101120000_abc123`"
    assert lines[2] == ("**9 cells** on 2 targets in 5 min 0 s: supported 2, unsupported 1, differs 1, allowed 1, "
                        "prevented 1, pass 1, measured 1, error 1; **deviations: 1**.")
    assert "Skipped target **mariadb**: connection refused" in md
    assert md.index("## Needs attention") < md.index("## Findings") < md.index("## Matrix by target")
    assert md.index("## Matrix by target") < md.index("## Targets") < md.index("## Run")


def test_incomplete_run_is_flagged_at_the_top() -> None:
    doc = sample_document()
    doc["run"]["complete"] = False
    md = render_markdown(doc)
    assert "**Incomplete run — partial results**" in md.split("## ", 1)[0]
    assert "- Complete: **no — partial results**" in md


def test_needs_attention_lists_deviations_and_errors_only() -> None:
    redaction.register_secret(LEAKED_PASSWORD)
    attention = _section(render_markdown(sample_document()), "## Needs attention")
    items = [line for line in attention.splitlines() if line.startswith("- ")]
    assert items == [
        "- types.int_limits · sqlite/sqlite3: differs — 9223372036854775808 | overflowed to REAL "
        "[expected supported, verdict deviation]",
        "- isolation.lost_update [isolation=read committed] · sqlite/sqlite3: error — connection failed: "
        "password=*** rejected",
    ]


def test_no_attention_section_when_all_is_as_expected() -> None:
    assert "## Needs attention" not in render_markdown(large_document())


def test_one_finding_line_per_reason_with_the_cells_it_covers() -> None:
    md = render_markdown(large_document())
    sql = _section(md, "### sql")
    # case 00 is unsupported on sqlite for all six drivers: one line, not six
    hits = [line for line in sql.splitlines() if "capability number 0," in line]
    assert len(hits) == 1, hits
    assert hits[0].startswith("- **unsupported** `capability:cap_0` ×6 — sqlite 3.40.1 lacks capability number 0")
    where = sql.splitlines()[sql.splitlines().index(hits[0]) + 1]
    assert where == "  sql.case_00_with_a_realistic_name: sqlite (all 6 drivers)"
    # the psycopg2 difference names exactly its three drivers, and two cases share one line
    psycopg2 = [line for line in sql.splitlines() if line.startswith("- **differs**")]
    assert len(psycopg2) == 1 and "×18" in psycopg2[0], psycopg2
    assert "sa-core+psycopg2, sa-orm+psycopg2" in sql
    assert "38 rows × 18 columns" in sql


def test_lines_stay_narrow_for_a_full_run() -> None:
    md = render_markdown(large_document())
    longest = max(md.splitlines(), key=len)
    assert len(longest) <= MAX_LINE, longest
    run = _section(md, "## Run")
    assert "- Libraries: aiosqlite 1.23.456, asyncmy 1.23.456," in run and "not-installed" not in run


def test_narrow_tables_have_one_column_per_target_and_count_disagreements() -> None:
    md = render_markdown(large_document())
    rows = _table_rows(_section(md, "## Matrix by target").split("### sql", 1)[1].split("###", 1)[0])
    assert _split_row(rows[0]) == ["case", "sqlite (6)", "postgres-embedded (12)"]
    body = {_split_row(r)[0]: _split_row(r)[1:] for r in rows[2:]}
    assert body["sql.case_00_with_a_realistic_name"] == ["unsupported", "supported 9, differs 3"]
    assert body["sql.case_01_with_a_realistic_name"] == ["supported", "supported"]


def test_deviation_marked_and_pipes_newlines_escaped_in_tables() -> None:
    md = render_markdown(sample_document())
    rows = _table_rows(_section(md, "## Matrix by target").split("### types", 1)[1])
    width = len(_split_row(rows[0]))
    assert all(len(_split_row(r)) == width for r in rows), rows
    assert _split_row(rows[2]) == ["types.int_limits", "supported", "differs ⚠1"]
    assert "9223372036854775808 \\| overflowed to REAL" in _section(md, "### types")


def test_params_rendered_compactly_as_separate_rows() -> None:
    md = render_markdown(sample_document())
    rows = _table_rows(_section(md, "## Matrix by target").split("### isolation", 1)[1].split("###", 1)[0])
    assert [_split_row(r)[0] for r in rows[2:]] == [
        "isolation.lost_update (isolation=read committed)",
        "isolation.lost_update (isolation=repeatable read)",
    ]


def test_cell_findings_and_artifacts_are_rendered_when_present() -> None:
    doc = sample_document()
    doc["results"].append(cell("migrate.add_column", "postgres", "psycopg", "fail", verdict="deviation",
                               findings=[{"revision": "3f2a9c1b7d20", "table": "users",
                                          "lock": "AccessExclusiveLock", "held_ms": 812}],
                               artifacts=["counterexamples/add_column.sql"],
                               metrics={"locks": ["AccessExclusiveLock"], "by_table": {"users": 1}}))
    md = render_markdown(doc)
    migrate = _section(md, "### migrate")
    assert "| revision | table | lock | held_ms |" in migrate.replace("case | cell | ", "")
    assert "| 3f2a9c1b7d20 | users | AccessExclusiveLock | 812 |" in migrate
    assert "- `counterexamples/add_column.sql` (migrate.add_column on postgres)" in migrate
    html = render_html(doc)
    assert "AccessExclusiveLock" in html and "counterexamples/add_column.sql" in html


def test_family_section_hook_adds_a_section() -> None:
    sections.register("bench", markdown=lambda fam, doc: [f"BENCH TABLE {len(fam.rows)} rows"],
                      html=lambda fam, doc: f"<p>bench chart {len(fam.rows)}</p>")
    try:
        md = render_markdown(sample_document())
        assert "BENCH TABLE 1 rows" in _section(md, "### bench")
        assert '<section class="extra" data-f="bench"><p>bench chart 1</p></section>' in render_html(
            sample_document())
    finally:
        sections._registry.pop("bench", None)


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


def test_target_properties_shown() -> None:
    doc = sample_document()
    doc["targets"][0].update(pooler="transaction", replica_of="primary")
    rows = {_split_row(r)[0]: _split_row(r) for r in _table_rows(_section(render_markdown(doc), "## Targets"))}
    assert rows["postgres"][3] == "pooler transaction, replica of primary"
    assert rows["mariadb"][5:] == ["skipped", "connection refused"]


def test_empty_document() -> None:
    doc = sample_document()
    doc["results"] = []
    doc["targets"] = []
    md = render_markdown(doc)
    assert "No results." in md and "**0 cells** on 0 targets" in md


def test_write_reports_round_trip(tmp_path) -> None:
    src = tmp_path / "results.json"
    src.write_text(json.dumps(clone(sample_document())), encoding="utf-8")
    doc = load_document(src)
    paths = write_reports(doc, tmp_path / "out")
    assert [p.name for p in paths] == ["report.md", "report.html"]
    assert paths[0].read_text(encoding="utf-8") == render_markdown(doc)
    assert paths[1].read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["report.html", "report.md"]  # no temp leftovers


def test_exit_status_is_explained_and_expected_reasons_shown() -> None:
    doc = sample_document()
    doc["results"] = [c for c in doc["results"] if c.get("verdict") != "deviation" and c["outcome"] != "error"]
    doc["results"].append(cell("pooling.session_state", "pgbouncer", "psycopg", "fail", expected="fail",
                               verdict="as-expected", detail="SET leaked into the next client",
                               expected_reason="a transaction pooler hands the server connection to the next client"))
    md = render_markdown(doc)
    head = md.split("## ", 1)[0]
    assert "**Exit status 0:** every cell is as expected." in head
    assert "fail (1)" in head and "only a deviation from an expectation or a harness error fails a run" in head
    assert "*Expected because:* a transaction pooler hands the server connection to the next client" in md
    doc["results"].append(cell("types.x", "sqlite", "sqlite3", "error", verdict="deviation", detail="boom"))
    assert "**Exit status 1:** 0 deviations and 1 harness error" in render_markdown(doc)


def test_combinations_that_cannot_exist_are_counted_not_listed() -> None:
    doc = sample_document()
    impossible = [cell("isolation.dirty_write", "postgres", d, "unsupported", mechanism="error:IsolationUnsupported",
                       params={"isolation": "deferred"}, expected="unsupported", verdict="as-expected",
                       detail="IsolationUnsupported: postgresql has no isolation level 'deferred' (it offers: …)")
                  for d in ("psycopg", "asyncpg")]
    doc["results"] += impossible
    md = render_markdown(doc)
    assert "Not listed: 2 cells of combinations that cannot exist" in md
    assert "has no isolation level" not in md  # neither a finding nor a table row
    assert "dirty_write (isolation=deferred)" not in md


def test_a_family_section_never_closes_its_family() -> None:
    sections.register("migrate", markdown=lambda fam, doc: ["## Extra for migrate", "", "text", "### Sub", "",
                                                            "```", "# not a heading", "```"])
    try:
        md = render_markdown(sample_document())
    finally:
        sections._registry.pop("migrate", None)
    assert "\n#### Extra for migrate\n" in md and "\n##### Sub\n" in md and "\n# not a heading\n" in md
    findings = _section(md, "## Findings")
    assert "### types" in findings  # the family after migrate is still under Findings, at its own level


def test_a_full_run_fits_a_pull_request_comment() -> None:
    doc = large_document()
    for c in doc["results"]:  # long details everywhere: every finding a reason of its own
        c["detail"] = f"{c['case']} on {c['target']}/{c['driver']}: " + "a long server message " * 12
        c["outcome"] = "differs" if c["outcome"] == "supported" else c["outcome"]
    md = render_markdown(doc)
    assert len(md) <= 60_000, len(md)
    assert md.startswith("# dbmatrix report") and "## Findings" in md and "## Run" in md
    assert "## Left out to fit a pull-request comment" in md and "report.html" in md
    small = render_markdown(sample_document())
    assert "Left out" not in small and "## Matrix by target" in small


def test_a_finding_names_each_case_once_with_the_parameter_values_it_covers() -> None:
    doc = sample_document()
    doc["results"] = [cell("isolation.write_skew", "postgres", "psycopg", "allowed", params={"isolation": lvl},
                           expected="allowed", verdict="as-expected", detail="G2-item write skew")
                      for lvl in ("read committed", "repeatable read")]
    doc["results"].append(cell("isolation.write_skew", "postgres", "psycopg", "prevented", expected="prevented",
                               params={"isolation": "serializable"}, verdict="as-expected", mechanism="abort:40001"))
    md = render_markdown(doc)
    assert "isolation.write_skew (isolation=read committed | repeatable read): postgres (psycopg)" in md, md
    doc["results"] = doc["results"][:2]  # now the finding covers every row of the family
    assert "every isolation row: postgres (psycopg)" in render_markdown(doc)
