"""The bench section of the reports and the console summary: ranks only where intervals part, tuned variants as
rows, no raw negative overhead, a --quick run said as such (rendered from documents alone)."""

from __future__ import annotations

from typing import Any

from dbmatrix.report.bench import bench_html, bench_markdown, ranks, summary_lines, table_rows


def cell(driver: str, qps: float, ci: float, variant: str = "default", conc: int = 1, **metrics: Any) -> dict:
    return {"case": "bench.pk_select", "target": "pg", "driver": driver, "outcome": "measured",
            "params": {"concurrency": conc, "variant": variant, "knobs": {}},
            "metrics": {"qps": qps, "qps_ci95": ci, "p50_us": 10.0, "p99_us": 20.0, **metrics}}


def doc(*cells: dict) -> dict:
    return {"schema": "dbmatrix/results/v1", "run": {"id": "r", "complete": True}, "results": list(cells)}


def test_ranks_are_shared_where_intervals_overlap_and_ceilings_are_not_ranked() -> None:
    cells = [cell("a", 1000, 50), cell("b", 960, 50), cell("c", 500, 20), cell("pgbench", 2000, 10, "ceiling")]
    got = {r["driver"]: ranks(cells).get(id(r)) for r in cells}
    assert got == {"a": "=1", "b": "=1", "c": "3", "pgbench": None}  # a and b cannot be told apart
    apart = [cell("a", 1000, 10), cell("b", 900, 10)]
    assert [ranks(apart)[id(r)] for r in apart] == ["1", "2"]


def test_tuned_variant_is_a_row_of_its_own_and_negative_overhead_is_not_shown_raw() -> None:
    cells = [cell("asyncpg", 900, 5, overhead_pct=-2.4), cell("asyncpg", 1000, 5, "tuned", tuned_gain_pct=11.1,
                                                              overhead_pct=3.2)]
    rows = {r[0]: r for r in table_rows(cells)}
    assert set(rows) == {"asyncpg", "asyncpg (tuned)"}
    assert rows["asyncpg (tuned)"][2:4] == ["1,000 ± 5", "1"] and rows["asyncpg"][3] == "2"
    assert rows["asyncpg (tuned)"][8] == "+11%" and rows["asyncpg"][8] == ""
    assert rows["asyncpg"][-1] == "≈0 (within noise)" and rows["asyncpg (tuned)"][-1] == "3.2"
    assert "-2.4" not in bench_markdown(doc(*cells))
    overlapping = [cell("d", 900, 80), cell("d", 950, 80, "tuned", tuned_gain_pct=5.6)]
    assert {r[0]: r[8] for r in table_rows(overlapping)}["d (tuned)"] == "+6% (within noise)"


def test_a_quick_run_says_so_in_both_reports_and_the_summary_ranks() -> None:
    full = doc(cell("a", 1000, 10), cell("b", 900, 10), cell("c", 890, 30), cell("pgbench", 3000, 5, "ceiling"))
    assert "--quick" not in bench_markdown(full)
    assert summary_lines(full) == ["pg pk_select c=1: 1. a 1,000 ± 10; =2. b 900 ± 10; =2. c 890 ± 30 "
                                   "(ceiling pgbench 3,000)"]
    quick = doc(*(dict(c, metrics={**c["metrics"], "quick": True}) for c in full["results"]))
    assert "**A `--quick` run**" in bench_markdown(quick) and "A --quick run" in bench_html(quick)
