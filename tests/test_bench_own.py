"""``dbmatrix bench`` for pgbench users: own workloads (a pgbench-style script, a Python callable), ``--rate``,
``--duration`` and the per-second series. The documented example in docs/bench.md is run as written (SQLite and
PostgreSQL, quick-sized); the rate is checked loosely (operations within ±30% of rate × duration), never a speed.
"""

from __future__ import annotations

import html
import json
import re
import shlex
import time
from pathlib import Path
from typing import Any

import pytest
from test_bench import DBMATRIX, bench, run_dir

from dbmatrix.bench.custom import build_custom_op, resolve
from dbmatrix.bench.ops import Op
from dbmatrix.bench.runner import BenchConfig, CellSpec, plan_target, series_of
from dbmatrix.bench.script import parse_script
from dbmatrix.bench.worker import buckets_of, timed_rate_sync
from dbmatrix.bench.workloads import WORKLOADS
from dbmatrix.errors import UsageError
from dbmatrix.report.bench import bench_html, bench_markdown
from dbmatrix.results import MEASURED, SKIPPED, CellResult, RunDocument

DOC = Path(__file__).resolve().parents[1] / "docs" / "bench.md"


def doc_example() -> tuple[str, str, list[str]]:
    """The script, the callable's module and the command of docs/bench.md's pgbench section, as written there."""
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## For pgbench users"):]
    section = section[: section.index("\n## ", 1)]
    blocks = dict(re.findall(r"```(sql|python|sh)\n(.*?)```", section, re.S))
    command = shlex.split(blocks["sh"])
    assert command[:2] == ["dbmatrix", "bench"]
    return blocks["sql"], blocks["python"], command[2:]


def test_documented_example_runs_on_sqlite_and_postgres(tmp_path: Path) -> None:
    sql, module, args = doc_example()
    (tmp_path / "lookup.sql").write_text(sql, encoding="utf-8")
    (tmp_path / "myapp_bench.py").write_text(module, encoding="utf-8")
    started = time.monotonic()
    proc = bench([*args, "--out", str(tmp_path / "out")], tmp_path, timeout=300)
    took = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads((run_dir(tmp_path / "out") / "results.json").read_text())
    cells = doc["results"]
    rate, duration = float(args[args.index("--rate") + 1]), float(args[args.index("--duration") + 1])
    assert {(c["case"], c["target"], c["driver"]) for c in cells} == {
        (case, target, driver) for case in ("bench.lookup", "bench.touch")
        for target, driver in (("sqlite", "sqlite3"), ("postgres", "psycopg"))}
    for c in cells:
        m, where = c["metrics"], (c["case"], c["target"], c["driver"], c["detail"])
        assert c["outcome"] == MEASURED and m["errors"] == 0, where
        assert c["params"]["knobs"] == ({"script": "lookup.sql"} if c["case"] == "bench.lookup"
                                        else {"callable": "myapp_bench:touch"}), where
        # the rate is honoured (loosely: a busy machine may fall behind) and the schedule's lag is reported
        assert 0.7 * rate * duration <= m["ops"] <= 1.3 * rate * duration, (m["ops"], where)
        assert m["rate_ops_s"] == rate and 0 <= m["lag_mean_us"] <= m["lag_max_us"] and m["late_ops"] >= 0, where
        assert 0 < m["p50_us"] <= m["p99_us"], where
        series = m["series"]
        assert series["bucket_s"] == 1 and len(series["t_s"]) >= 2 and series["t_s"] == sorted(series["t_s"]), where
        assert len(series["ops_s"]) == len(series["p99_us"]) == len(series["t_s"]), where
        assert all(p50 <= p99 for p50, p99 in zip(series["p50_us"], series["p99_us"], strict=True)), where
    page = (run_dir(tmp_path / "out") / "report.html").read_text()
    assert "bench.lookup: P99 over time" in page and "bench.touch: ops/s over time" in page
    assert "src=" not in page.split('id="bench-performance"', 1)[1]  # inline SVG: nothing fetched
    assert "At --rate 100 ops/s" in (run_dir(tmp_path / "out") / "report.md").read_text()
    assert took < 120, took  # a budget for CI, not a measurement


@pytest.mark.parametrize("script, why", [
    ("\\sleep 10 ms\nSELECT 1;", "line 1: unsupported meta-command \\sleep"),
    ("\\set id random_zipfian(1, 10, 1.5)\nSELECT :id;", "unsupported \\set function random_zipfian()"),
    ("\\set hi :lo + 1\nSELECT :hi;", "variable :lo is used before it is \\set"),
    ("SELECT 1;\nSELECT :nope;", "line 2: :nope is never \\set"),
    ("\\set x 1 +\nSELECT :x;", "cannot read the \\set expression"),
])
def test_script_refusals_name_the_line(script: str, why: str) -> None:
    with pytest.raises(UsageError, match=re.escape(why)):
        parse_script(script, "w.sql")


def test_script_statements_variables_and_pgbench_arithmetic() -> None:
    script = parse_script(
        "-- a comment; not a statement\n\\set id random(1, 50)\n\\set q (-7) / 2\n\\set r -7 % 3\n"
        "\\set hi :id + 10 * 2\nBEGIN;\nSELECT ';' AS semi, :id,\n  :hi;\nUPDATE t SET x = :q WHERE y = :r;\nEND;\n",
        "w.sql")
    assert [s.sql for s in script.statements] == [
        "BEGIN", "SELECT ';' AS semi, :id,\n  :hi", "UPDATE t SET x = :q WHERE y = :r", "COMMIT"]
    assert script.statements[1].names == ("id", "hi")
    ring = script.parameter_ring(3, 200)
    assert ring == script.parameter_ring(3, 200)  # seeded: the same sequence for every driver
    assert {v["q"] for v in ring} == {-3} and {v["r"] for v in ring} == {-1}  # truncation toward zero, as pgbench
    assert all(1 <= v["id"] <= 50 and v["hi"] == v["id"] + 20 for v in ring)
    assert len({v["id"] for v in ring}) > 10


def test_workload_names_resolve_and_bad_ones_are_usage_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.sql").write_text("\\set id random(1, 10)\nSELECT :id;\n")
    (tmp_path / "pk_select.sql").write_text("SELECT 1;\n")
    (tmp_path / "ownmod.py").write_text("def op(session):\n    return session.execute('SELECT 1')\nnot_callable = 3\n")
    cfg = BenchConfig.from_args(["pk_select", "mine.sql", "ownmod:op"], "1", None, None, quick=True, duration=3.0,
                                rate=50.0)
    assert cfg.workloads == ["pk_select", "mine", "op"] and cfg.case("mine") == "bench.mine"
    assert cfg.case("op") == "bench.op" and cfg.rate == 50.0 and cfg.seconds == pytest.approx(1.0)
    assert cfg.bucket_s() == 1
    assert BenchConfig.from_args([], None, None, None, quick=False).bucket_s() == 0  # 3 x 0.3 s: no series
    assert BenchConfig.from_args([], None, None, 3, quick=False, duration=3600).bucket_s() == 12  # <= 300 points
    for args, kw, why in ((["nofile.sql"], {}, "no such file"), (["pk_select.sql"], {}, "built-in workload"),
                          (["ownmod:not_callable"], {}, "no callable"), (["nomod_xyz:f"], {}, "cannot import"),
                          ([], {"duration": 2.0, "seconds": 1.0}, "give one of them"), ([], {"rate": 0.0}, "--rate")):
        seconds = kw.pop("seconds", None)
        with pytest.raises(UsageError, match=why):
            BenchConfig.from_args(args, None, seconds, None, quick=True, **kw)
    assert set(WORKLOADS) >= {"pk_select"}


def test_bad_own_workload_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "bad.sql").write_text("SELECT 1;\n\\shell echo hi\n")
    proc = bench(["--target", "sqlite", "--workload", "bad.sql", "--out", str(tmp_path / "out")], tmp_path, timeout=60)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stderr.splitlines() == [
        "dbmatrix: error: --workload bad.sql: line 2: unsupported meta-command \\shell (dbmatrix runs \\set only)"]
    assert not (tmp_path / "out").exists() and DBMATRIX.exists()


def test_rate_loop_keeps_the_schedule_and_counts_from_it() -> None:
    """At a fixed rate a fast call runs about rate x seconds times; a call slower than the interval makes the
    calls behind it late, and their latency (from the schedule) grows instead of being hidden."""
    fast = timed_rate_sync(Op(lambda: None, False), 0.3, 5_000_000, 0, repr)
    assert 0.7 * 60 <= fast["ops"] <= 1.3 * 60 and fast["errors"] == 0
    assert fast["lag_max_ns"] >= 0 and fast["late"] <= fast["ops"]
    assert fast["elapsed_ns"] >= 0.3e9  # the window counts its idle time
    slow = timed_rate_sync(Op(lambda: time.sleep(0.01), False), 0.1, 5_000_000, 0, repr)
    assert slow["late"] >= slow["ops"] - 2 >= 1
    assert slow["samples"][-1] > slow["samples"][0] + 0.02e9  # queued behind slow calls: the wait counts
    # the window ends on time: what is still queued is not run, and is counted
    assert slow["ops"] + slow["missed"] == 20 and slow["missed"] >= 5 and slow["elapsed_ns"] < 0.2e9
    buckets = buckets_of(fast["start"], fast["ends"], fast["samples"], 100_000_000)
    assert sum(b[0] for b in buckets) == fast["ops"] and 3 <= len(buckets) <= 4


def test_series_merges_workers_per_second_and_lays_repeats_end_to_end() -> None:
    def window(start: int, latencies_by_second: list[list[int]]) -> dict[str, Any]:
        ends = [start + k * 1_000_000_000 + 1000 * i for k, lat in enumerate(latencies_by_second)
                for i in range(len(lat))]
        samples = [x for lat in latencies_by_second for x in lat]
        return {"buckets": buckets_of(start, ends, samples, 1_000_000_000)}

    stall = [[10_000] * 100, [900_000] * 5]  # the second second: few calls, slow ones
    runs = [[window(0, stall), window(0, [[10_000] * 100, [900_000] * 5])], [window(50, [[20_000] * 10])]]
    s = series_of(runs, 2.0, 1)
    assert s["t_s"] == [0.0, 1.0, 2.0] and s["ops_s"] == [200.0, 10.0, 10.0]
    assert s["p99_us"][1] == pytest.approx(900.0, rel=0.01) and s["p50_us"][0] == pytest.approx(10.0, rel=0.01)
    # calls that ended past a 1.5 s window fold into its last (half-second) bucket instead of a bucket of their own
    s = series_of([[window(0, [[10_000] * 100, [10_000] * 50, [80_000] * 5])]], 1.5, 1)
    assert s["t_s"] == [0.0, 1.0] and s["ops_s"] == [100.0, 110.0] and s["p99_us"][1] == pytest.approx(80.0, rel=0.01)


def test_report_charts_the_series_and_names_the_slowest_second() -> None:
    series = {"bucket_s": 1, "t_s": [0, 1, 2, 3], "ops_s": [100.0, 100.0, 20.0, 100.0],
              "p50_us": [100.0, 110.0, 5000.0, 100.0], "p99_us": [200.0, 210.0, 90000.0, None]}
    cell = CellResult("bench.lookup", "pg", "psycopg", MEASURED, params={"concurrency": 2, "variant": "default",
                                                                          "knobs": {"script": "lookup.sql"}},
                      metrics={"qps": 80.0, "qps_ci95": 5.0, "p50_us": 100.0, "p99_us": 9000.0, "series": series,
                               "rate_ops_s": 100.0, "lag_mean_us": 50.0, "lag_max_us": 70000.0, "late_ops": 12,
                               "latency_us": [[50.0, 100.0], [99.0, 9000.0]]})
    doc = RunDocument()
    doc.results = [cell]
    page, md = bench_html(doc.to_dict()), bench_markdown(doc.to_dict())
    assert "pg bench.lookup: P99 over time" in page and "pg bench.lookup: ops/s over time" in page
    assert page.count("<polyline") == 3  # the latency curve, ops/s and P99 over time (one cell each)
    line = "Slowest second: psycopg default c=2 at t=2 s, P99 90,000 µs against a median second's 210 µs."
    assert line in md and html.escape(line) in page
    assert "12 calls started more than one interval late; worst start lag 70,000 µs" in md


def test_script_op_runs_through_a_real_driver(tmp_path: Path) -> None:
    """The script's statements through sqlite3's hot path and SQLAlchemy Core's text(), with a transaction."""
    from dbmatrix.drivers import get_adapter
    from dbmatrix.drivers.base import ConnectInfo

    db = tmp_path / "t.db"
    import sqlite3

    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE bench_users (id INTEGER PRIMARY KEY, score INTEGER)")
        conn.executemany("INSERT INTO bench_users VALUES (?, 0)", [(i,) for i in range(1, 11)])
    (tmp_path / "w.sql").write_text("\\set id random(1, 10)\nBEGIN;\nUPDATE bench_users SET score = score + 1"
                                    " WHERE id = :id;\nSELECT score FROM bench_users WHERE id = :id;\nEND;\n")
    workload = resolve(str(tmp_path / "w.sql"), set(WORKLOADS))
    from sqlalchemy.engine import make_url

    info = ConnectInfo(kind="sqlite", url=make_url(f"sqlite:///{db}"), engine="sqlite")
    for driver in ("sqlite3", "sa-core+sqlite3"):
        session = get_adapter(driver).connect(info)
        try:
            op = build_custom_op(session, workload, seed=1)
            for _ in range(25):
                op.call()
        finally:
            session.close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT sum(score) FROM bench_users").fetchone()[0] == 50  # committed, every call


def test_own_workloads_are_planned_like_built_in_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every driver, the default variant naming the source, each concurrency; no ceiling (it runs the built-in
    statements); an ``async def`` callable is a skipped cell on a blocking driver, with the reason."""
    from dbmatrix.matrix import MatrixRun

    monkeypatch.chdir(tmp_path)
    (tmp_path / "w.sql").write_text("SELECT 1;\n")
    (tmp_path / "amod.py").write_text("async def op(session):\n    pass\n")
    run = MatrixRun.from_options(["sqlite", "postgres"], ["sqlite3", "aiosqlite", "psycopg"], [], [], "unused")
    cfg = BenchConfig.from_args(["w.sql", "amod:op", "pk_select"], "1,2", None, None, quick=True)
    steps = [st for t in run.targets for st in plan_target(run, t, cfg)]
    cells = {(st.target.name, st.workload, st.driver, st.concurrency): st.knobs for st in steps
             if isinstance(st, CellSpec)}
    assert cells[("sqlite", "w", "sqlite3", 2)] == {"script": "w.sql"} and ("postgres", "w", "psycopg", 1) in cells
    assert ("sqlite", "op", "aiosqlite", 1) in cells and ("postgres", "op", "psycopg", 1) not in cells
    skipped = {(st.target, st.driver): st.detail for st in steps if isinstance(st, CellResult)}
    assert skipped[("sqlite", "sqlite3")] == "amod:op is an async def: it runs on asyncio drivers only"
    assert all(st.outcome == SKIPPED and st.case == "bench.op" for st in steps if isinstance(st, CellResult))
    ceilings = [st for st in steps if not isinstance(st, CellSpec | CellResult)]
    assert [c.workload for c in ceilings] == ["pk_select"]  # pgbench on postgres, for the built-in workload only
