"""The isolation report section renders the Hermitage-style table and the shrunk schedules from results only."""

from __future__ import annotations

from dbmatrix.report.isolation import isolation_sections
from dbmatrix.report.markdown import render_markdown


def result(case, target, driver, level, outcome, mechanism=None, **extra):
    return {"case": case, "target": target, "driver": driver, "params": {"isolation": level}, "outcome": outcome,
            "mechanism": mechanism, "metrics": extra.pop("metrics", {}), "findings": extra.pop("findings", []),
            "verdict": "as-expected", "expected": outcome, "detail": ""}


DOC = {"results": [
    result("isolation.lost_update", "mariadb", "mysqlclient", "repeatable read", "allowed"),
    result("isolation.lost_update", "mariadb", "sa-core+pymysql", "repeatable read", "allowed"),
    result("isolation.lost_update", "mariadb", "mysqlclient", "serializable", "prevented", "abort:1213"),
    result("isolation.lost_update", "mariadb", "sa-core+pymysql", "serializable", "allowed"),
    result("isolation.lost_update", "mariadb", "mysqlclient", "deferred", "unsupported", "error:IsolationUnsupported"),
    result("isolation.effective_level", "mariadb", "mysqlclient", "serializable", "supported"),
    result("isolation.effective_level", "mariadb", "pymysql", "serializable", "differs"),
    result("isolation.effective_level", "mariadb", "sa-orm+asyncmy", "repeatable read", "unsupported"),
    result("schedules.serializable_history", "mariadb", "mysqlclient", "repeatable read", "allowed",
           metrics={"schedules": 45, "schedules_per_s": 5.1, "first_counterexample_s": 1.05},
           findings=[{"anomaly": "lost update", "program": "T1: w(1,+1); T2: w(1,+1)",
                      "script": "-- s1  -- s2\nbegin;  -- b1: ok\n"}]),
]}


def test_table_rows_are_anomalies_columns_levels_and_differing_drivers_are_named():
    text = "\n".join(isolation_sections(DOC))
    assert "| anomaly | repeatable read | serializable | drivers that differ |" in text
    assert "deferred" not in text.split("### mariadb")[1].split("\n")[4]  # an unsupported level gets no column
    p4 = next(line for line in text.splitlines() if line.startswith("| P4 |"))
    assert "| allowed |" in p4 and "sa-core+pymysql @ serializable: allowed" in p4
    assert "| G0 |" in text  # every anomaly has its row, empty where nothing ran
    # a driver that silently runs another level than asked shows up under the anomalies
    given = next(line for line in text.splitlines() if line.startswith("| level given |"))
    assert given == ("| level given | as asked (0/1 drivers) | as asked (1/2 drivers) | sa-orm+asyncmy: unsupported "
                     "at repeatable read; pymysql: silently another level at serializable |"), given


def test_schedules_show_rate_first_counterexample_and_script():
    text = "\n".join(isolation_sections(DOC))
    assert "| mariadb | repeatable read | allowed | 45 | 5.1 | 1.05 s | T1: w(1,+1); T2: w(1,+1) |" in text
    assert "```sql\n-- s1  -- s2\nbegin;  -- b1: ok\n```" in text


def test_no_section_without_isolation_results_and_hooked_into_markdown():
    assert isolation_sections({"results": []}) == []
    doc = {"schema": "dbmatrix/results/v1", "run": {"id": "x", "started": "s", "finished": "f", "complete": True},
           "targets": [], **DOC}
    assert "## Isolation: anomaly x level per engine" in render_markdown(doc)


def test_html_section_has_the_same_table_escaped():
    from dbmatrix.report.isolation import isolation_html

    html = isolation_html({"results": [*DOC["results"], result("isolation.write_skew", "<b>x</b>", "psycopg",
                                                                 "serializable", "prevented", "abort:40001")]})
    assert "<th>anomaly</th><th>repeatable read</th><th>serializable</th>" in html
    assert "<td>prevented (abort:1213)</td>" in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html
    assert "<pre>-- s1  -- s2\nbegin;  -- b1: ok</pre>" in html
    assert isolation_html({"results": []}) == ""


def test_cells_link_their_sql_transcripts_html_everywhere_markdown_where_a_cell_deviates():
    from dbmatrix.report.isolation import isolation_html

    allowed = result("isolation.read_skew_write_1", "mariadb", "mysqlclient", "repeatable read", "allowed")
    allowed["artifacts"] = ["artifacts/isolation.read_skew_write_1-mariadb-mysqlclient-1/transcript.sql"]
    allowed["verdict"] = "deviation"
    prevented = result("isolation.read_skew_write_1", "mariadb", "mysqlclient", "serializable", "prevented",
                       "abort:1213")
    prevented["artifacts"] = ["artifacts/other.json", "artifacts/isolation.read_skew_write_1-x-2/transcript.sql"]
    doc = {"results": [allowed, prevented]}
    text = "\n".join(isolation_sections(doc))
    row = next(line for line in text.splitlines() if line.startswith("| G-single-write-1 |"))
    assert row == ("| G-single-write-1 | [allowed](artifacts/isolation.read_skew_write_1-mariadb-mysqlclient-1/"
                   "transcript.sql) | prevented (abort:1213) | — |"), row
    html = isolation_html(doc)
    assert '<td><a href="artifacts/isolation.read_skew_write_1-x-2/transcript.sql">prevented (abort:1213)</a></td>' \
        in html
    # the variants follow their Hermitage column: PMP, PMP-write, P4, ..., G2, G2-two-edges
    names = [line.split(" | ")[0][2:] for line in text.splitlines() if line.startswith("| G") or line.startswith(
        "| P") or line.startswith("| O")]
    assert names == ["G0", "G1a", "G1b", "G1c", "OTV", "PMP", "PMP-write", "P4", "G-single", "G-single-dependencies",
                     "G-single-write-1", "G-single-write-2", "G2-item", "G2", "G2-two-edges (read-only)"], names
