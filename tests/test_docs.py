"""The README and docs/ stand alone: no file outside the repository, every local link resolves."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
IDS = [str(p.relative_to(REPO)) for p in DOCS]
# Internal notes of the project's authors that users do not have; code and docs must give the reason instead.
OUTSIDE = re.compile(r"\.\./shared|DESIGN\.md|STYLE\.md|probe\.py|/work/")


@pytest.mark.parametrize("path", DOCS, ids=IDS)
def test_doc_links_resolve_inside_the_repository(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert not OUTSIDE.search(text), OUTSIDE.search(text)
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if "://" in target:
            continue
        resolved = (path.parent / target).resolve()
        assert resolved.is_relative_to(REPO), target
        assert resolved.exists(), f"{path.name}: broken link {target}"


def test_no_source_comment_cites_files_outside_the_repository() -> None:
    offenders = []
    for folder in ("framework", "cases", "tests", "ci", "docker"):
        for path in (REPO / folder).rglob("*"):
            if path.is_file() and path.suffix in {".py", ".toml", ".yml", ".yaml", ".sh", ""} and \
                    path.name != "test_docs.py" and "egg-info" not in str(path):
                text = path.read_text(encoding="utf-8", errors="replace")
                offenders += [f"{path.relative_to(REPO)}: {m.group(0)}" for m in OUTSIDE.finditer(text)]
    assert not offenders, offenders


def test_readme_opens_with_the_two_commands() -> None:
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    block = lines[lines.index("```sh") + 1: lines.index("```")]
    assert block[0].startswith("ci/setup && .venv/bin/dbmatrix run")
    assert block[1].startswith("ci/setup && ci/provision && .venv/bin/python -m pytest tests cases --require")


def test_example_workflow_runs_the_matrix_and_fails_on_worse_cells() -> None:
    flow = (REPO / "docs" / "github-actions.yml").read_text(encoding="utf-8")
    assert "\t" not in flow  # YAML forbids tabs
    for needle in ("services:", "image: postgres:", "image: mariadb:", "DBMATRIX_POSTGRES_URL", "DBMATRIX_MARIADB_URL",
                   "ci/setup --no-apt", ".venv/bin/dbmatrix run --require", "actions/upload-artifact",
                   "dbmatrix-out/latest/report.html", ".venv/bin/dbmatrix diff baseline/results.json", "exit $code"):
        assert needle in flow, needle
