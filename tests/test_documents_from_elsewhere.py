"""Documents from elsewhere (a results.json mailed in, a CI artifact, a shard from another machine): every field
that becomes a path or a link is checked before anything is written or rendered; report.html lets only its own
script and style run, so text from a document stays text; ``diff`` refuses to compare against no cells."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from report_samples import clone, sample_document

from dbmatrix.cli import main
from dbmatrix.report import render_html

BAD_FIELDS: dict[str, tuple[str, Any]] = {
    "run id ../x": ("run.id", "../x"),
    "run id with a slash": ("run.id", "a/b"),
    "run id absolute": ("run.id", "/tmp/x"),
    "shard ../../x": ("run.shard", "../../x"),
    "artifact javascript:": ("artifact", "javascript:alert(document.domain)"),
    "artifact JavaScript: with a space": ("artifact", " JavaScript:alert(1)"),
    "artifact ../..": ("artifact", "../../etc/passwd"),
    "artifact absolute": ("artifact", "/etc/passwd"),
    "artifact file:": ("artifact", "file:///etc/passwd"),
    "artifact https:": ("artifact", "https://example.com/x"),
    "artifact with a backslash": ("artifact", "..\\..\\x"),
    "artifact percent-encoded ..": ("artifact", "%2e%2e/x"),
    "artifact a/../b": ("artifact", "a/../../b"),
    "artifact //host": ("artifact", "//example.com/x"),
    "artifact data:": ("artifact", "data:text/html,<script>alert(1)</script>"),
}


def bad_document(field: str, value: Any) -> dict[str, Any]:
    doc = clone(sample_document())
    if field == "artifact":
        doc["results"][0]["artifacts"] = ["ok/plan.txt", value]
    else:
        doc["run"][field.split(".")[1]] = value
    return doc


def one_line(code: int, capsys: pytest.CaptureFixture[str], contains: str) -> str:
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dbmatrix: error: ") and contains in lines[0], err
    return lines[0]


@pytest.mark.parametrize("name", sorted(BAD_FIELDS))
def test_a_path_or_link_field_from_elsewhere_is_refused_by_report_diff_and_merge(
        name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Before: a hand-edited results.json passed validation with a run id ``../x`` (``merge`` then wrote outside
    ``--out``) and with a ``javascript:`` artifact (a link in report.html that ran script when clicked)."""
    bad = tmp_path / "in" / "results.json"
    bad.parent.mkdir()
    bad.write_text(json.dumps(bad_document(*BAD_FIELDS[name])), encoding="utf-8")
    good = tmp_path / "good.json"
    good.write_text(json.dumps(sample_document()), encoding="utf-8")
    out = tmp_path / "out"
    for argv in (["report", str(bad), "--out", str(out)], ["diff", str(good), str(bad)],
                 ["merge", str(bad), "--out", str(out)]):
        one_line(main(argv), capsys, "not a valid")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["good.json", "in", "results.json"]  # nothing written


def test_report_html_carries_a_policy_that_runs_only_its_own_script_and_style() -> None:
    page = render_html(sample_document())
    head = page[:page.index("</head>")]
    assert '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; script-src \'sha256-' in head
    assert head.index("Content-Security-Policy") < head.index("<title>")  # before anything it governs
    assert "'unsafe-inline'" not in head and "'unsafe-eval'" not in head and "form-action 'none'" in head


def test_markup_slipped_into_the_page_does_not_run_but_the_page_script_does(tmp_path: Path) -> None:
    """The policy proved in a browser: script and handlers added to the page (as a renderer bug or a crafted
    document would) stay inert, while the report's own script still runs (it marks <body data-ready>)."""
    from test_report_html_dom import dom

    page = render_html(sample_document())
    evil = ('<script>document.body.dataset.pwned = "script"</script>'
            '<img src="x" onerror="document.body.dataset.pwned = \'handler\'">'
            '<a id="js" href="javascript:document.body.dataset.pwned = \'link\'">x</a>')
    page = page.replace("<body>", "<body>" + evil, 1)
    path = tmp_path / "report.html"
    path.write_text(page, encoding="utf-8")
    body = dom(path, tmp_path).find("body")[0]
    assert body.attrs.get("data-ready") == "1" and "data-pwned" not in body.attrs


def test_diff_refuses_a_document_with_no_cells(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Before: ``diff`` against a new run with 0 cells exited 0 ("no change")."""
    old, empty = tmp_path / "old.json", tmp_path / "empty.json"
    old.write_text(json.dumps(sample_document()), encoding="utf-8")
    doc = clone(sample_document())
    doc["results"] = []
    empty.write_text(json.dumps(doc), encoding="utf-8")
    for argv in (["diff", str(old), str(empty)], ["diff", str(empty), str(old)]):
        line = one_line(main(argv), capsys, "has no cells")
        assert str(empty) in line
