"""Run-to-run diff: which cells changed and which changes are regressions."""

from __future__ import annotations

import pytest
from report_samples import cell, clone, sample_document

from dbmatrix.report import Change, any_worse, diff_documents, render_diff


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
    changes = diff_documents(doc, clone(doc))
    assert changes == []
    assert not any_worse(changes)
    assert render_diff(changes) == "no changes\n"


@pytest.mark.parametrize(
    ("old", "new"),
    [("supported", "unsupported"), ("supported", "differs"), ("prevented", "allowed"), ("pass", "fail")],
)
def test_worse_transitions(old: str, new: str) -> None:
    change = _one(cell("c.x", "postgres", "psycopg", old), cell("c.x", "postgres", "psycopg", new))
    assert (change.old_outcome, change.new_outcome, change.worse) == (old, new, True)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("unsupported", "supported"),
        ("differs", "supported"),
        ("allowed", "prevented"),
        ("fail", "pass"),
        ("error", "supported"),
    ],
)
def test_better_transitions_are_not_worse(old: str, new: str) -> None:
    assert _one(cell("c.x", "postgres", "psycopg", old), cell("c.x", "postgres", "psycopg", new)).worse is False


@pytest.mark.parametrize("new", ["error", "fail"])
def test_new_error_or_fail_is_worse_even_for_a_new_cell(new: str) -> None:
    change = _one(None, cell("c.x", "postgres", "psycopg", new))
    assert (change.old_outcome, change.new_outcome, change.worse) == (None, new, True)


def test_appeared_ok_cell_is_not_worse_and_disappeared_cell_is_not_worse() -> None:
    assert _one(None, cell("c.x", "postgres", "psycopg", "supported")).worse is False
    gone = _one(cell("c.x", "postgres", "psycopg", "error"), None)
    assert (gone.old_outcome, gone.new_outcome, gone.worse) == ("error", None, False)


def test_verdict_turning_into_deviation_is_worse_even_with_same_outcome() -> None:
    old = cell("c.x", "sqlite", "sqlite3", "allowed", expected="allowed", verdict="as-expected")
    new = cell("c.x", "sqlite", "sqlite3", "allowed", expected="prevented", verdict="deviation")
    change = _one(old, new)
    assert change.worse is True
    assert (change.old_verdict, change.new_verdict) == ("as-expected", "deviation")
    assert "(verdict as-expected -> deviation)" in render_diff([change])


def test_deviation_to_as_expected_is_not_worse() -> None:
    old = cell("c.x", "sqlite", "sqlite3", "differs", verdict="deviation")
    new = cell("c.x", "sqlite", "sqlite3", "supported", verdict="as-expected")
    assert _one(old, new).worse is False


def test_params_are_part_of_the_cell_key() -> None:
    old = _doc(cell("i.x", "postgres", "psycopg", "prevented", params={"isolation": "serializable"}))
    new = _doc(
        cell("i.x", "postgres", "psycopg", "prevented", params={"isolation": "serializable"}),
        cell("i.x", "postgres", "psycopg", "allowed", params={"isolation": "read committed"}),
    )
    (change,) = diff_documents(old, new)
    assert change.params == {"isolation": "read committed"}
    assert (change.old_outcome, change.new_outcome, change.worse) == (None, "allowed", False)


def test_render_diff_lines_and_any_worse() -> None:
    old = sample_document()
    new = clone(old)
    new["results"][0]["outcome"] = "differs"  # types.int_limits postgres/psycopg
    new["results"] = [r for r in new["results"] if r["case"] != "bench.pk_select"]
    changes = diff_documents(old, new)
    assert any_worse(changes)
    lines = render_diff(changes).splitlines()
    assert lines == [
        "change bench.pk_select  postgres/asyncpg  measured -> (none)",
        "WORSE  types.int_limits  postgres/psycopg  supported -> differs",
    ]
    assert not any_worse([c for c in changes if not c.worse])
