"""A schedules.* search that found nothing renders as "not found" with its budget, never as prevented."""

from __future__ import annotations

from dbmatrix.docschema import document_problem
from dbmatrix.report.html import render_html
from dbmatrix.report.isolation import isolation_sections

NOT_FOUND_CELL = {
    "case": "schedules.serializable_history", "target": "postgres", "driver": "psycopg",
    "params": {"isolation": "serializable"}, "outcome": "not-found", "mechanism": "abort:40001",
    "metrics": {"schedules": 114, "schedules_per_s": 120.0, "budget": {"profile": "ci", "programs": 10}},
    "findings": [], "verdict": "as-expected", "expected": "not-found", "detail": "no counterexample in 114 schedules",
}
DOC = {"schema": "dbmatrix/results/v1", "run": {"id": "x", "started": "s", "finished": "f", "complete": True},
       "targets": [{"name": "postgres", "kind": "postgresql", "status": "ok"}], "results": [NOT_FOUND_CELL]}


def test_a_not_found_cell_is_valid_and_reads_as_not_found():
    assert document_problem(DOC) is None
    row = next(line for line in isolation_sections(DOC) if line.startswith("| postgres |"))
    assert "not found in 114 schedules" in row and "prevented" not in row


def test_the_html_report_gives_not_found_its_own_pale_class_without_the_prevented_tick():
    html = render_html(DOC)
    assert '<td class="not tb">' in html
    assert "#matrix td.not,.sw.not,b.not{background:#e8eedf;color:#333}" in html
    assert '#matrix td.not::after{content:"?"}' in html
