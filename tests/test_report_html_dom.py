"""HTML report: static checks, then the DOM as headless Chromium renders it (proves the inline JS runs),
then screenshots at two widths."""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest
from report_samples import LEAKED_PASSWORD, cell, large_document, sample_document

from dbmatrix import redaction
from dbmatrix.report import render_html

CHROMIUM = "/usr/bin/chromium"
VOID = {"meta", "input", "br", "col", "img", "hr", "link"}
SIZE_LIMIT = 300_000  # bytes for ~1000 cells (the one-table report of old took 1.5 MB)


@dataclass
class Node:
    tag: str
    attrs: dict[str, str | None]
    children: list[Node] = field(default_factory=list)
    parts: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.parts) + "".join(c.text for c in self.children)

    @property
    def classes(self) -> set[str]:
        return set((self.attrs.get("class") or "").split())

    @property
    def hidden(self) -> bool:
        return "hidden" in self.attrs

    def iter(self):  # noqa: ANN201 - generator of nodes
        yield self
        for c in self.children:
            yield from c.iter()

    def find(self, tag: str, cls: str | None = None, **attrs: str) -> list[Node]:
        return [n for n in self.iter() if n.tag == tag and (cls is None or cls in n.classes)
                and all(n.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items())]

    def by_id(self, ident: str) -> Node:
        (node,) = [n for n in self.iter() if n.attrs.get("id") == ident]
        return node


class _Tree(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.root = Node("root", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, dict(attrs))
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].parts.append(data)


def parse(html: str) -> Node:
    tree = _Tree()
    tree.feed(html)
    return tree.root


def chromium(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    exe = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if not exe:
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium package (ci/setup does) for the HTML tests")
    profile = Path(tempfile.mkdtemp(prefix="chromium-profile-", dir=tmp_path))  # fresh profile per launch
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"chromium failed ({proc.returncode}): {proc.stderr[-2000:]}"
    return proc


def dom(path: Path, tmp_path: Path, fragment: str = "") -> Node:
    proc = chromium(["--dump-dom", path.resolve().as_uri() + fragment], tmp_path)
    root = parse(proc.stdout)
    assert [b.attrs.get("data-ready") for b in root.find("body")] == ["1"], "the report's script did not finish"
    return root


def rows(root: Node) -> dict[str, Node]:
    return {tr.attrs["data-c"]: tr for tr in root.find("tr", "r")}


def column(root: Node, target: str, driver: str) -> int:
    heads = root.find("th")
    drivers = [th for th in heads if "data-driver" in th.attrs]
    return next(i for i, th in enumerate(drivers) if (th.attrs["data-target"], th.attrs["data-driver"]) == (target,
                                                                                                         driver))


def cells_of(tr: Node) -> list[Node]:
    return [c for c in tr.children if c.tag == "td"]


def rich_document() -> dict:
    """The sample, plus a supported cell with list/dict metrics, findings and artifacts."""
    doc = sample_document()
    doc["results"].append(cell("sql.upsert_update", "postgres", "psycopg", "supported", expected="supported",
                               verdict="as-expected", detail="rowcount 2 for 1 insert + 1 update",
                               metrics={"rowcount_mixed": 2, "locks": ["RowExclusiveLock"], "by_table": {"t": 1}},
                               findings=[{"table": "t", "lock": "RowExclusiveLock"}], artifacts=["upsert/plan.txt"]))
    doc["results"].append(cell("sql.upsert_update", "sqlite", "sqlite3", "supported", expected="supported",
                               verdict="as-expected"))
    return doc


@pytest.fixture(scope="module")
def report_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    redaction.register_secret(LEAKED_PASSWORD)
    path = tmp_path_factory.mktemp("html") / "report.html"
    path.write_text(render_html(rich_document()), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def large_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("html-large") / "report.html"
    path.write_text(render_html(large_document()), encoding="utf-8")
    return path


# --- static -----------------------------------------------------------------------------------------------------


def test_self_contained_and_escaped(report_file: Path) -> None:
    html = report_file.read_text(encoding="utf-8")
    # Nothing may reach the network: no src/href attributes in markup, imports, url() or http(s) references.
    markup = re.sub(r"<script\b.*?</script>", "", html, flags=re.S)
    assert not re.search(r"\b(src|href)\s*=|@import|url\(", markup, re.I)
    assert not re.search(r"https?://|\bimport\(|fetch\(|XMLHttpRequest", html, re.I)
    assert LEAKED_PASSWORD not in html
    assert "postgresql://postgres:***@127.0.0.1:5432/postgres" in html
    doc = sample_document()
    doc["results"][0]["detail"] = '<script>alert("x")</script>'
    doc["results"][0]["case"] = 'types.<b>"evil"'
    evil = render_html(doc)
    assert "<script>alert" not in evil and "<b>" not in evil
    assert "&lt;b&gt;&quot;evil&quot;" in evil
    data = re.search(r'<script type="application/json" id="dbm-data">(.*?)</script>', evil, re.S).group(1)
    assert '<script>alert("x")</script>' in json.loads(data)["s"]


def test_size_of_a_full_run(large_file: Path) -> None:
    size = large_file.stat().st_size
    assert len(large_document()["results"]) == 1008
    assert size < SIZE_LIMIT, f"report.html is {size} bytes for 1008 cells"


def test_legend_lists_only_outcomes_used(report_file: Path, large_file: Path) -> None:
    legend = [b.attrs["data-o"] for b in parse(large_file.read_text()).find("button") if "data-o" in b.attrs]
    assert legend == ["supported", "unsupported", "differs"]
    legend = [b.text for b in parse(report_file.read_text()).find("button") if "data-o" in b.attrs]
    assert legend == ["supported 4", "unsupported 1", "differs 1", "allowed 1", "prevented 1", "pass 1",
                      "measured 1", "error 1"]


# --- rendered DOM -------------------------------------------------------------------------------------------------


def test_heat_map_cells_and_alike_rows_folded(report_file: Path, tmp_path: Path) -> None:
    root = dom(report_file, tmp_path)
    families = [tb.attrs["data-f"] for tb in root.by_id("matrix").find("tbody")]
    assert families == ["bench", "isolation", "migrate", "sql", "types"]
    by_case = rows(root)
    # every cell is a td with its outcome's class; the deviation is marked
    tr = by_case["types.int_limits"]
    c = column(root, "sqlite", "sqlite3")
    assert cells_of(tr)[c].classes == {"dif", "dv", "tb"}
    assert cells_of(tr)[column(root, "postgres", "psycopg")].classes - {"tb"} == {"sup"}
    # rows alike in every column are folded by default, and the family header says so; a lone cell never is
    assert by_case["sql.upsert_update"].hidden
    assert not by_case["types.int_limits"].hidden and not by_case["migrate.up_down_up"].hidden
    sql = root.find("tbody", data_f="sql")[0]
    assert "1 row alike in every column hidden — show" in sql.text
    assert root.by_id("shown").text == "6 of 7 rows shown"


def test_alike_rows_shown_and_columns_filtered_from_the_url(report_file: Path, tmp_path: Path) -> None:
    root = dom(report_file, tmp_path, "#alike=1&target=sqlite")
    by_case = rows(root)
    assert not by_case["sql.upsert_update"].hidden
    for th in root.find("th"):
        if "data-driver" in th.attrs:
            assert th.hidden == (th.attrs["data-target"] != "sqlite"), th.attrs
    pg = column(root, "postgres", "psycopg")
    assert cells_of(by_case["types.int_limits"])[pg].hidden
    assert not cells_of(by_case["types.int_limits"])[column(root, "sqlite", "sqlite3")].hidden
    # rows with no sqlite cell disappear, and the filter controls show the state read from the URL
    assert by_case["bench.pk_select"].hidden and root.find("tbody", data_f="bench")[0].hidden


def test_findings_follow_the_filters(report_file: Path, tmp_path: Path) -> None:
    everything = dom(report_file, tmp_path)
    counts = {li.attrs["data-o"]: li.find("span", "n")[0].text for li in everything.find("li")
              if "data-cells" in li.attrs}
    assert counts["unsupported"] == "×1" and counts["differs"] == "×1"
    pg_only = dom(report_file, tmp_path, "#target=postgres")
    visible = [li.attrs["data-o"] for li in pg_only.find("li") if "data-cells" in li.attrs and not li.hidden]
    # sqlite's differs/unsupported/error are not counted; the supported upsert cell reported findings
    assert sorted(visible) == ["allowed", "prevented", "supported"], visible
    types = pg_only.find("details", data_f="types")[0]
    assert types.hidden


def test_deviation_filter(report_file: Path, tmp_path: Path) -> None:
    root = dom(report_file, tmp_path, "#dev=1")
    shown = [case for case, tr in rows(root).items() if not tr.hidden]
    assert shown == ["types.int_limits"]
    visible = [li.attrs["data-o"] for li in root.find("li") if "data-cells" in li.attrs and not li.hidden]
    assert visible == ["differs"]


def test_outcome_filter_dims_other_cells(report_file: Path, tmp_path: Path) -> None:
    root = dom(report_file, tmp_path, "#outcome=unsupported")
    assert root.by_id("matrix").attrs["data-o"] == "uns"
    assert [case for case, tr in rows(root).items() if not tr.hidden] == ["types.timestamptz_roundtrip"]


def test_details_panel_for_a_supported_cell(report_file: Path, tmp_path: Path) -> None:
    first = dom(report_file, tmp_path, "#alike=1")
    r = rows(first)["sql.upsert_update"].attrs["data-r"]
    c = column(first, "postgres", "psycopg")
    root = dom(report_file, tmp_path, f"#alike=1&sel={r}.{c}")
    panel = root.by_id("cell")
    assert not panel.hidden
    text = panel.text
    for expected in ("sql.upsert_update", "postgres (postgresql, 15.18)", "psycopg", "supported",
                     "rowcount 2 for 1 insert + 1 update", "rowcount_mixed", '["RowExclusiveLock"]', '{"t":1}',
                     "upsert/plan.txt"):
        assert expected in text, (expected, text)
    assert [a.attrs.get("href") for a in panel.find("a")] == ["upsert/plan.txt"]
    selected = [td for tr in root.find("tr", "r") for td in cells_of(tr) if "sel" in td.classes]
    assert len(selected) == 1


def test_details_panel_masks_secrets(report_file: Path, tmp_path: Path) -> None:
    first = dom(report_file, tmp_path)
    r = rows(first)["isolation.lost_update (isolation=read committed)"].attrs["data-r"]
    root = dom(report_file, tmp_path, f"#sel={r}.{column(first, 'sqlite', 'sqlite3')}")
    text = root.by_id("cell").text
    assert "password=***" in text and LEAKED_PASSWORD not in text


# --- screenshots ------------------------------------------------------------------------------------------------


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", head[16:24])


@pytest.mark.parametrize("width", [1400, 800])
def test_screenshot(large_file: Path, tmp_path: Path, width: int) -> None:
    shot = tmp_path / f"report-{width}.png"
    chromium(["--hide-scrollbars", f"--window-size={width},900", f"--screenshot={shot}",
              large_file.resolve().as_uri()], tmp_path)
    assert png_size(shot) == (width, 900)
    assert shot.stat().st_size > 20_000  # a blank page compresses to a few kB


def test_header_row_and_case_column_are_sticky(report_file: Path) -> None:
    css = re.search(r"<style>(.*?)</style>", report_file.read_text(encoding="utf-8"), re.S).group(1)
    rules: dict[str, str] = {}
    for selector, body in re.findall(r"([^{}]+)\{([^}]*)\}", css):
        rules.setdefault(selector.strip(), body)  # the main rule, not a narrow-screen override
    assert "position:sticky" in rules["#matrix thead th"]
    assert "position:sticky" in rules["#matrix th.case"] and "left:0" in rules["#matrix th.case"]
    assert "overflow:auto" in rules["#wrap"] and "max-height" in rules["#wrap"]


# --- filters select what they show; labels and counts -------------------------------------------------------------


def labelled_document() -> dict:
    """rich_document plus rows that differ only in a parameter, alike in every column (folded by default)."""
    doc = rich_document()
    for level in ("read committed", "read uncommitted"):
        for target, driver in (("postgres", "psycopg"), ("sqlite", "sqlite3")):
            doc["results"].append(cell("isolation.dirty_read", target, driver, "prevented", expected="prevented",
                                       verdict="as-expected", params={"isolation": level},
                                       expected_reason=f"no engine shows dirty reads at {level}"))
    long_params = {"options": {"prepared_statement_cache_size": 0, "prepared_statement_name_func": "uuid4 names"},
                   "state": "temp_table"}
    doc["results"].append(cell("pooling.session_state", "postgres", "asyncpg", "pass", params=long_params))
    return doc


@pytest.fixture(scope="module")
def labelled_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("html-labelled") / "report.html"
    path.write_text(render_html(labelled_document()), encoding="utf-8")
    return path


def test_an_outcome_filter_unfolds_the_alike_rows_it_selects(labelled_file: Path, tmp_path: Path) -> None:
    folded = rows(dom(labelled_file, tmp_path))
    assert folded["sql.upsert_update"].hidden  # alike in every column: folded without a filter
    root = dom(labelled_file, tmp_path, "#outcome=prevented")
    shown = [case for case, tr in rows(root).items() if not tr.hidden]
    assert shown == ["isolation.dirty_read (isolation=read committed)",
                     "isolation.dirty_read (isolation=read uncommitted)",
                     "isolation.lost_update (isolation=repeatable read)"], shown
    assert root.by_id("shown").text == f"3 of {len(folded)} rows shown"
    text = dom(labelled_file, tmp_path, "#q=upsert")  # a case-text filter too
    assert not rows(text)["sql.upsert_update"].hidden


def test_case_labels_keep_rows_that_differ_in_a_parameter_apart(labelled_file: Path, tmp_path: Path) -> None:
    root = dom(labelled_file, tmp_path, "#alike=1")
    labels = {case: tr.find("th", "case")[0] for case, tr in rows(root).items()}
    committed = labels["isolation.dirty_read (isolation=read committed)"]
    uncommitted = labels["isolation.dirty_read (isolation=read uncommitted)"]
    assert committed.text == "dirty_read · read committed" and uncommitted.text == "dirty_read · read uncommitted"
    assert committed.attrs["title"] == "isolation.dirty_read (isolation=read committed)"
    assert layout(labelled_file, tmp_path, 1400, "#alike=1")["cut"] == []  # no label is cut short


def test_counts_follow_the_filter(labelled_file: Path, tmp_path: Path) -> None:
    root = dom(labelled_file, tmp_path, "#target=postgres")
    legend = {b.attrs["data-o"]: b.find("span", "c")[0].text for b in root.find("button") if "data-o" in b.attrs}
    results = labelled_document()["results"]
    on_pg = {o: sum(1 for c in results if c["target"] == "postgres" and c["outcome"] == o) for o in legend}
    assert legend == {o: str(n) for o, n in on_pg.items()}, legend
    for details in root.find("details"):
        if "data-f" in details.attrs and not details.hidden:
            visible = [li for li in details.find("li") if "data-cells" in li.attrs and not li.hidden]
            noun = "reason" if len(visible) == 1 else "reasons"
            assert details.find("span", "nr")[0].text == f"{len(visible)} {noun}", details.attrs


def test_findings_say_why_the_outcome_is_expected(labelled_file: Path, tmp_path: Path) -> None:
    root = dom(labelled_file, tmp_path)
    whys = [s.text for s in root.find("small", "why")]
    assert "expected because: no engine shows dirty reads at read committed" in whys, whys
    r = rows(root)["isolation.dirty_read (isolation=read committed)"].attrs["data-r"]
    panel = dom(labelled_file, tmp_path, f"#alike=1&sel={r}.{column(root, 'postgres', 'psycopg')}").by_id("cell")
    assert "why expected" in panel.text and "no engine shows dirty reads at read committed" in panel.text


def layout(path: Path, tmp_path: Path, width: int, fragment: str = "") -> dict:
    """Boxes as Chromium lays the page out at ``width``: a copy of the report with a probe script appended that
    writes them into the body (run after the report's own script; the copy drops any CSP meta so it may run)."""
    html = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", path.read_text(encoding="utf-8"))
    probe = """<script>document.addEventListener("DOMContentLoaded", function () { setTimeout(function () {
      function box(e) { var b = e.getBoundingClientRect(); return {top: b.top, bottom: b.bottom}; }
      var out = {main: box(document.querySelector("main")), findings: box(document.getElementById("findings")),
        wrap: box(document.getElementById("wrap")), aside: box(document.querySelector("aside")),
        extras: box(document.getElementById("extras")),
        cut: [].filter.call(document.querySelectorAll("th.case"), function (th) {
          return th.offsetParent !== null && th.scrollWidth > th.clientWidth; }).map(function (th) {
          return th.title; })};
      document.body.setAttribute("data-layout", JSON.stringify(out)); }, 0); });</script>"""
    copy = Path(tempfile.mkdtemp(prefix="layout-", dir=tmp_path)) / "report.html"
    copy.write_text(html.replace("</body>", probe + "</body>"), encoding="utf-8")
    proc = chromium([f"--window-size={width},900", "--hide-scrollbars", "--virtual-time-budget=5000", "--dump-dom",
                     copy.resolve().as_uri() + fragment], tmp_path)
    (body,) = parse(proc.stdout).find("body")
    assert body.attrs.get("data-layout"), "the layout probe did not run"
    return json.loads(body.attrs["data-layout"])


@pytest.fixture(scope="module")
def sectioned_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The large document with a tall section of the family's own (as isolation and bench add)."""
    from dbmatrix.report import sections

    sections.register("types", html=lambda fam, doc: '<div style="height:2400px">types section</div>')
    try:
        path = tmp_path_factory.mktemp("html-sectioned") / "report.html"
        path.write_text(render_html(large_document()), encoding="utf-8")
    finally:
        sections._registry.pop("types", None)
    return path


@pytest.mark.parametrize("width", [1400, 800])
def test_no_blank_gap_between_matrix_and_findings(sectioned_file: Path, tmp_path: Path, width: int) -> None:
    box = layout(sectioned_file, tmp_path, width)
    if width < 1100:  # one column: the findings follow the matrix at once, the families' sections after them
        assert 0 <= box["findings"]["top"] - box["wrap"]["bottom"] <= 40, box
    else:  # side by side: both start at the top of the layout
        assert abs(box["findings"]["top"] - box["wrap"]["top"]) <= 40, box
    assert box["main"]["bottom"] - box["wrap"]["bottom"] <= 40, box  # nothing blank below the matrix either
    assert box["extras"]["top"] >= max(box["aside"]["bottom"], box["wrap"]["bottom"]) - 1, box
    # a filter that leaves few findings leaves no empty panel behind (the panel is as tall as what it shows)
    few = layout(sectioned_file, tmp_path, width, "#dev=1")
    assert few["aside"]["bottom"] - few["findings"]["bottom"] <= 40, few
    if width < 1100:
        assert few["extras"]["top"] - few["aside"]["bottom"] <= 40, few
