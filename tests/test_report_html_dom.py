"""HTML report: static checks, then the DOM as headless Chromium renders it (proves the inline JS runs)."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest
from report_samples import LEAKED_PASSWORD, sample_document

from dbmatrix import redaction
from dbmatrix.report import render_html

CHROMIUM = "/usr/bin/chromium"


class _Elements(HTMLParser):
    """Collect (tag, attrs) of every start tag, plus the text of each <option> and <td>."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.texts: list[tuple[str, dict[str, str | None], str]] = []
        self._open: tuple[str, dict[str, str | None], list[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))
        if tag in ("option", "td"):
            self._open = (tag, dict(attrs), [])

    def handle_data(self, data: str) -> None:
        if self._open:
            self._open[2].append(data)

    def handle_endtag(self, tag: str) -> None:
        if self._open and self._open[0] == tag:
            self.texts.append((tag, self._open[1], "".join(self._open[2])))
            self._open = None

    def find(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [
            a for t, a in self.elements if t == tag and all(a.get(k.replace("_", "-")) == v for k, v in attrs.items())
        ]


def _parse(html: str) -> _Elements:
    p = _Elements()
    p.feed(html)
    return p


def _dump_dom(path: Path, tmp_path: Path, fragment: str = "") -> str:
    exe = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if not exe:
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium package (CI does) to run the HTML DOM test")
    profile = Path(tempfile.mkdtemp(prefix="chromium-profile-", dir=tmp_path))  # fresh profile per launch
    cmd = [
        exe,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--dump-dom",
        path.resolve().as_uri() + fragment,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"chromium failed ({proc.returncode}): {proc.stderr[-2000:]}"
    assert "<table" in proc.stdout, f"chromium dumped no DOM; stderr: {proc.stderr[-2000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def report_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    redaction.register_secret(LEAKED_PASSWORD)
    path = tmp_path_factory.mktemp("html") / "report.html"
    path.write_text(render_html(sample_document()), encoding="utf-8")
    return path


def test_self_contained_and_escaped(report_file: Path) -> None:
    html = report_file.read_text(encoding="utf-8")
    # Nothing may reach the network: no src/href attributes, imports, url() or http(s) references.
    assert not re.search(r"\b(src|href)\s*=|@import|url\(|https?://", html, re.I)
    assert LEAKED_PASSWORD not in html
    assert "postgresql://postgres:***@127.0.0.1:5432/postgres" in html
    doc = sample_document()
    doc["results"][0]["detail"] = '<script>alert("x")</script>'
    doc["results"][0]["case"] = 'types.<b>"evil"'
    evil = render_html(doc)
    assert "<script>alert" not in evil and "<b>" not in evil
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in evil


def test_rendered_dom_has_matrices_cells_and_ran_js(report_file: Path, tmp_path: Path) -> None:
    dom = _parse(_dump_dom(report_file, tmp_path))
    assert [b.get("data-ready") for b in dom.find("body")] == ["1"]
    families = [t["data-family"] for t in dom.find("table") if "matrix" in (t.get("class") or "").split()]
    assert families == ["bench", "isolation", "migrate", "types"]

    cells = [a for t, a in dom.elements if t == "td" and "cell" in (a.get("class") or "").split()]
    assert len(cells) == len(sample_document()["results"])
    differs = dom.find("td", data_case="types.int_limits", data_target="sqlite", data_driver="sqlite3")
    assert len(differs) == 1
    assert differs[0]["data-outcome"] == "differs"
    assert set(differs[0]["class"].split()) == {"cell", "outcome-differs", "deviation"}
    assert "verdict: deviation" in differs[0]["title"] and "expected: supported" in differs[0]["title"]
    bench = dom.find("td", data_case="bench.pk_select")[0]
    assert "wall_ms: 12.5" in bench["title"]
    err = dom.find("td", data_outcome="error")[0]
    assert LEAKED_PASSWORD not in err["title"] and "password=***" in err["title"]

    # The JS fills the filter selects from the matrix columns.
    options = {}
    for tag, attrs, text in dom.texts:
        if tag == "option":
            options.setdefault(text, attrs.get("value"))
    assert {"postgres", "sqlite", "asyncpg", "psycopg", "sqlite3", "bench", "types"} <= set(options)
    assert not dom.find("td", hidden="")  # no filter applied: nothing hidden


def test_filters_from_url_fragment_hide_columns_and_families(report_file: Path, tmp_path: Path) -> None:
    dom = _parse(_dump_dom(report_file, tmp_path, "#target=sqlite&family=types"))
    assert [b.get("data-ready") for b in dom.find("body")] == ["1"]
    sections = {a["data-family"]: "hidden" in a for a in dom.find("section")}
    assert sections == {"bench": True, "isolation": True, "migrate": True, "types": False}
    for td in dom.find("td", data_target="postgres"):
        assert "hidden" in td, td
    for td in dom.find("td", data_target="sqlite"):
        assert "hidden" not in td, td
    assert [s.get("id") for s in dom.find("select")] == ["filter-target", "filter-driver", "filter-family"]


def test_deviation_filter_hides_rows_details_and_empty_families(report_file: Path, tmp_path: Path) -> None:
    dom = _parse(_dump_dom(report_file, tmp_path, "#deviations=1"))
    sections = {a["data-family"]: "hidden" in a for a in dom.find("section")}
    assert sections == {"bench": True, "isolation": True, "migrate": True, "types": False}
    visible_details = [a for a in dom.find("li") if "data-target" in a and "hidden" not in a]
    assert visible_details == [{"data-target": "sqlite", "data-driver": "sqlite3", "data-deviation": "1"}]
