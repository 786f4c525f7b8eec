"""The README and docs/ stand alone: no file outside the repository, every local link resolves."""

from __future__ import annotations

import os
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
                   "dbmatrix-out/latest/report.html", ".venv/bin/dbmatrix diff baseline/results.json", "exit $code",
                   # the stock mariadb image ships metadata_lock_info without loading it (migrate.locks needs it)
                   "INSTALL SONAME 'metadata_lock_info'", "PLUGIN_STATUS", "job.services.mariadb.id"):
        assert needle in flow, needle


def test_own_case_folder_example_runs_as_documented(tmp_path: Path) -> None:
    """docs/writing-cases.md's own-folder example: written out file by file, run with the documented command."""
    import json
    import shlex
    import subprocess
    import sys

    text = (REPO / "docs" / "writing-cases.md").read_text(encoding="utf-8")
    files = re.findall(r"^`([\w/.]+)`:\n\n```\w+\n(.*?)```", text, re.S | re.M)
    assert [name for name, _ in files] == ["myapp_cases/test_myapp.py", "myapp_cases/expectations/mysql.toml"]
    for name, body in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(body, encoding="utf-8")
    command = next(line for line in text.splitlines() if line.startswith("dbmatrix run myapp_cases"))
    exe = Path(sys.executable).parent / "dbmatrix"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBMATRIX_")}
    proc = subprocess.run([str(exe), *shlex.split(command)[1:], "--out", "out"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr  # "every cell passes"
    cells = json.loads((tmp_path / "out" / "latest" / "results.json").read_text(encoding="utf-8"))["results"]
    by = {(c["case"], c["target"]): c for c in cells}
    assert {c["case"] for c in cells} == {"myapp.text_equality_is_case_sensitive", "myapp.returning_update"}
    assert by["myapp.text_equality_is_case_sensitive", "sqlite"]["outcome"] == "supported"
    equality = by["myapp.text_equality_is_case_sensitive", "mariadb"]
    assert equality["outcome"] == "differs" and "case-insensitively" in equality["expected_reason"]
    # @requires on a target whose profile lacks the capability: the body ran, and the engine's refusal decided
    returning = by["myapp.returning_update", "mariadb"]
    assert (returning["outcome"], returning["mechanism"]) == ("unsupported", "error:1064"), returning
    assert "lacks UPDATE ... RETURNING" in returning["expected_reason"]
    assert by["myapp.returning_update", "sqlite"]["outcome"] == "supported"
    for name in ("report.md", "report.html"):  # the reason reaches both reports
        assert "compare text case-insensitively" in (tmp_path / "out" / "latest" / name).read_text(encoding="utf-8")
