"""Run-to-run diff: labels (worse / better / changed), counted coverage differences, warnings, renderings."""

from __future__ import annotations

import pytest
from report_samples import cell, clone, large_document, sample_document

from dbmatrix.report import (
    Change,
    any_worse,
    compare,
    diff_documents,
    render_diff,
    render_diff_html,
    render_diff_markdown,
)


def _doc(*cells: dict) -> dict:
    doc = sample_document()
    doc["results"] = list(cells)
    return doc


def _one(old: dict | None, new: dict | None) -> Change:
    changes = diff_documents(_doc(*([old] if old else [])), _doc(*([new] if new else [])))
    assert len(changes) == 1, changes
    return changes[0]


def test_identical_documents_have_no_changes() -> None:
    doc = sample_document()
    report = compare(doc, clone(doc))
    assert report.changes == [] and not report.any_worse
    assert render_diff(report).splitlines()[-2:] == ["no changes", "summary: 0 worse, 0 better, 0 changed, "
                                                                     "9 cells compared"]


@pytest.mark.parametrize(
    ("old", "new"),
    [("supported", "unsupported"), ("supported", "differs"), ("prevented", "allowed"), ("pass", "fail"),
     ("supported", "error"), ("differs", "unsupported")],
)
def test_worse_transitions(old: str, new: str) -> None:
    change = _one(cell("c.x", "postgres", "psycopg", old), cell("c.x", "postgres", "psycopg", new))
    assert (change.old_outcome, change.new_outcome, change.label, change.worse) == (old, new, "worse", True)


@pytest.mark.parametrize(
    ("old", "new"),
    [("unsupported", "supported"), ("differs", "supported"), ("allowed", "prevented"), ("fail", "pass"),
     ("error", "supported")],
)
def test_better_transitions(old: str, new: str) -> None:
    change = _one(cell("c.x", "postgres", "psycopg", old), cell("c.x", "postgres", "psycopg", new))
    assert (change.label, change.worse) == ("better", False)


@pytest.mark.parametrize(("old", "new"), [("supported", "skipped"), ("allowed", "supported"), ("error", "skipped")])
def test_neutral_transitions_are_changed(old: str, new: str) -> None:
    assert _one(cell("c.x", "postgres", "psycopg", old), cell("c.x", "postgres", "psycopg", new)).label == "changed"


@pytest.mark.parametrize("new", ["error", "fail"])
def test_a_bad_cell_only_in_the_new_run_is_listed_as_new_never_worse(new: str) -> None:
    change = _one(None, cell("c.x", "postgres", "psycopg", new, verdict="deviation"))
    assert (change.old_outcome, change.new_outcome, change.label) == (None, new, "new")
    assert not change.worse


def test_a_run_that_only_adds_a_target_is_not_worse() -> None:
    old = _doc(cell("c.x", "postgres", "psycopg", "supported"))
    added = [cell("c.x", "mariadb", d, o, verdict=v) for d, o, v in (
        ("pymysql", "fail", "as-expected"), ("asyncmy", "error", "deviation"), ("mysqlclient", "supported", None))]
    new = _doc(cell("c.x", "postgres", "psycopg", "supported"), *added)
    report = compare(old, new)
    assert not report.any_worse and [c.label for c in report.changes] == ["new"]
    lines = render_diff(report).splitlines()
    assert lines[-2] == "3 cells only in the new run (targets: mariadb 3; families: c 3)", lines
    assert lines[-1] == ("summary: 0 worse, 0 better, 0 changed, 1 cell compared, 3 cells only in the new run "
                         "(1 of them deviations or errors, listed as new)")
    assert "### new (1)" in render_diff_markdown(report)


def test_cells_in_one_run_only_are_counted_not_listed() -> None:
    report = compare(_doc(cell("c.x", "postgres", "psycopg", "error")), _doc(cell("c.y", "postgres", "psycopg",
                                                                               "supported")))
    assert report.changes == []
    assert (len(report.only_old), len(report.only_new)) == (1, 1)


def test_verdict_turning_into_deviation_is_worse_even_with_same_outcome() -> None:
    old = cell("c.x", "sqlite", "sqlite3", "allowed", expected="allowed", verdict="as-expected")
    new = cell("c.x", "sqlite", "sqlite3", "allowed", expected="prevented", verdict="deviation")
    change = _one(old, new)
    assert change.label == "worse"
    assert "(verdict as-expected -> deviation)" in render_diff([change])


def test_deviation_resolved_is_better() -> None:
    old = cell("c.x", "sqlite", "sqlite3", "differs", verdict="deviation")
    new = cell("c.x", "sqlite", "sqlite3", "supported", verdict="as-expected")
    assert _one(old, new).label == "better"


def test_params_are_part_of_the_cell_key() -> None:
    old = _doc(cell("i.x", "postgres", "psycopg", "prevented", params={"isolation": "serializable"}),
               cell("i.x", "postgres", "psycopg", "prevented", params={"isolation": "read committed"}))
    new = _doc(cell("i.x", "postgres", "psycopg", "prevented", params={"isolation": "serializable"}),
               cell("i.x", "postgres", "psycopg", "allowed", params={"isolation": "read committed"}))
    (change,) = diff_documents(old, new)
    assert change.params == {"isolation": "read committed"} and change.label == "worse"


def test_render_lists_worse_first_then_better_then_changed_and_a_summary() -> None:
    old = sample_document()
    new = clone(old)
    new["results"][0]["outcome"] = "differs"  # types.int_limits postgres/psycopg: worse
    new["results"][6]["outcome"] = "allowed"  # the isolation error is gone: better
    new["results"][5]["outcome"] = "skipped"  # changed
    new["results"] = [r for r in new["results"] if r["case"] != "bench.pk_select"]
    report = compare(old, new)
    assert report.any_worse and any_worse(report.changes)
    lines = render_diff(report).splitlines()
    assert lines[0] == ("old 20250101120000_abc123 (9 cells) -> new 20250101120000_abc123 (8 cells)")
    assert lines[1] == "worse   types.int_limits  postgres/psycopg  supported -> differs"
    assert lines[2].startswith("better  isolation.lost_update [isolation=read committed]  sqlite/sqlite3  "
                               "error -> allowed")
    assert lines[3].startswith("changed isolation.lost_update [isolation=read committed]  postgres/psycopg  "
                               "allowed -> skipped")
    assert lines[4] == "1 cell only in the old run (targets: postgres 1; families: bench 1)"
    assert lines[5] == "summary: 1 worse, 1 better, 1 changed, 8 cells compared, 1 cell only in the old run"


def test_subset_run_is_counted_and_an_incomplete_run_is_named() -> None:
    full = large_document()
    subset = clone(full)
    subset["run"]["complete"] = False
    subset["results"] = [c for c in subset["results"] if c["case"].startswith("types.")]
    report = compare(full, subset)
    text = render_diff(report)
    lines = text.splitlines()
    assert len(lines) < 10, text  # counted, not 684 lines
    missing = sum(1 for c in full["results"] if c["case"].startswith("sql."))
    assert missing == 684
    assert ("warning: the new run 20250101120000_abc123 is incomplete (complete: false): "
            "684 cells of the old run are missing from it") in lines
    assert "684 cells only in the old run (targets: postgres-embedded 456, sqlite 228; families: sql 684)" in lines
    assert lines[-1] == "summary: 0 worse, 0 better, 0 changed, 324 cells compared, 684 cells only in the old run"
    assert not report.any_worse


def test_no_target_in_common_is_a_warning() -> None:
    old = _doc(cell("c.x", "postgres", "psycopg", "supported"))
    new = _doc(cell("c.x", "mariadb", "pymysql", "supported"))
    for doc in (old, new):
        doc["targets"] = []
    text = render_diff(compare(old, new))
    assert "warning: the runs have no target in common (old: postgres; new: mariadb): nothing was compared" in text


def test_markdown_and_html_views() -> None:
    old = sample_document()
    new = clone(old)
    new["results"][0].update(outcome="differs", detail="now <b>differs</b> | badly")
    report = compare(old, new)
    md = render_diff_markdown(report)
    assert "### worse (1)" in md
    assert "| types.int_limits | postgres / psycopg | supported -> differs | now <b>differs</b> \\| badly |" in md
    html = render_diff_html(report)
    assert '<table data-label="worse">' in html and "<b>differs" not in html
    assert "now &lt;b&gt;differs&lt;/b&gt; | badly" in html
    assert "summary: 1 worse, 0 better, 0 changed, 9 cells compared" in html
