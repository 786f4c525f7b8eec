"""``dbmatrix bench``: the document it writes (shape, consistency of the numbers), its options and its pieces.

Numbers are checked for consistency only (qps > 0, p50 <= p99 <= p99.9, ratios computed from the document's own
rows), never against a wall-clock threshold: speed is reported by ``dbmatrix bench``, not asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dbmatrix.bench.ceilings import slap_statements
from dbmatrix.bench.compare import annotate
from dbmatrix.bench.ops import DEFAULT, TUNED, Op, variants
from dbmatrix.bench.runner import BenchConfig, CellSpec, estimate_seconds, plan_target
from dbmatrix.bench.timesplit import part_of, split_profile
from dbmatrix.bench.worker import OVERHEAD_MIN_ROUNDS, WARMUP_CHUNKS, Worker, overhead_sync, settled
from dbmatrix.bench.workloads import BATCH_ROWS, WORKLOADS, pgbench_script
from dbmatrix.drivers import all_driver_ids, get_adapter
from dbmatrix.errors import UsageError
from dbmatrix.report.bench import bench_html, bench_markdown, noise_line
from dbmatrix.report.ladder import gap_line, largest_gaps
from dbmatrix.report.ladder import ladders as ladder_rows
from dbmatrix.report.markdown import render_markdown
from dbmatrix.results import MEASURED, CellResult, RunDocument
from dbmatrix.timing import cv_pct, histogram_of, mean_ci95, merge_encoded, percentiles_us, ratio_ci95

DBMATRIX = Path(sys.executable).parent / "dbmatrix"
# what the default bench measures on SQLite per workload: every driver and builder there, the ORM rung over its own
# default driver on its default workloads; a newer rung's SQLAlchemy pairs and the rest run when named
SQLITE_BY_WORKLOAD = {w: {d for d in all_driver_ids() if (a := get_adapter(d)).supports("sqlite")
                          and a.benched_by_default(w)} for w in WORKLOADS}
SQLITE_DRIVERS = set().union(*SQLITE_BY_WORKLOAD.values())


def bench(args: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([str(DBMATRIX), "bench", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def run_dir(out: Path) -> Path:
    """Where a run wrote its files: ``<out>/latest`` with per-run output folders, else ``<out>`` itself."""
    return out / "latest" if (out / "latest").exists() else out


def check_measured(cell: dict[str, Any]) -> None:
    m = cell["metrics"]
    where = f"{cell['case']} {cell['target']}/{cell['driver']} {cell['params']}"
    assert m["qps"] > 0, where
    assert m["qps_ci95"] >= 0 and m["cv_pct"] >= 0, where
    assert len(m["qps_repeats"]) >= 3, where
    assert m["qps"] == pytest.approx(sum(m["qps_repeats"]) / len(m["qps_repeats"]), rel=0.01, abs=0.2), where
    if cell["driver"] != "mysqlslap":
        assert 0 < m["p50_us"] <= m["p99_us"] <= m["p999_us"], where
        curve = [us for _, us in m["latency_us"]]
        assert curve == sorted(curve), where
    assert m["wall_ms"] > 0, where
    if cell["params"]["variant"] == "ceiling":
        return
    assert m["errors"] == 0, (where, cell["detail"])
    assert m["ops"] > 0 and m["cpu_us_per_op"] > 0, where
    assert 0 <= m["cpu_wait_pct"] <= 100 * cell["params"]["concurrency"] and m["load_1m"] >= 0, where
    assert m["rss_peak_mb"] > 0 and len(m["rss_peak_mb_workers"]) == cell["params"]["concurrency"], where
    if cell["params"]["concurrency"] == 1:
        assert isinstance(m["overhead_pct"], float), where
    if cell["params"]["concurrency"] == 1 and cell["params"]["variant"] == DEFAULT:
        assert sum(m["time_split_pct"].values()) == pytest.approx(100.0, abs=1.0), where
        assert cell["detail"], where  # the bottleneck from the profile


@pytest.fixture(scope="module")
def sqlite_quick(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    cwd = tmp_path_factory.mktemp("bench-sqlite")
    proc = bench(["--quick", "--target", "sqlite", "--out", str(cwd / "out")], cwd)
    return proc, cwd / "out"


def test_quick_sqlite_document(sqlite_quick: tuple[subprocess.CompletedProcess, Path]) -> None:
    proc, out = sqlite_quick
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads((run_dir(out) / "results.json").read_text())
    assert doc["schema"] == "dbmatrix/results/v1" and doc["run"]["complete"] is True
    cells = doc["results"]
    assert {c["case"] for c in cells} == {w.case for w in WORKLOADS.values()}
    assert {c["driver"] for c in cells} == SQLITE_DRIVERS
    assert all(c["outcome"] == MEASURED for c in cells), [c["detail"] for c in cells if c["outcome"] != MEASURED]
    for c in cells:
        check_measured(c)
        assert c["params"]["concurrency"] == 1
    # every variant the layer offers is there, and a tuned cell carries its gain over the default one
    for w in WORKLOADS:
        assert {c["driver"] for c in cells if c["case"] == f"bench.{w}"} == SQLITE_BY_WORKLOAD[w], w
        for d in SQLITE_BY_WORKLOAD[w]:
            assert {c["params"]["variant"] for c in cells if c["case"] == f"bench.{w}" and c["driver"] == d} \
                == set(variants(d, w)), (w, d)
    by_key = {(c["case"], c["driver"], c["params"]["variant"]): c for c in cells}
    for (case, driver, variant), c in by_key.items():
        if variant == TUNED:
            base = by_key[(case, driver, DEFAULT)]["metrics"]["qps"]
            assert c["metrics"]["tuned_gain_pct"] == pytest.approx(100 * (c["metrics"]["qps"] / base - 1), abs=0.2)
    md = (run_dir(out) / "report.md").read_text()
    assert "## Performance (dbmatrix bench)" in md and "### sqlite · bench.pk_select" in md
    page = (run_dir(out) / "report.html").read_text()
    assert page.count("<svg") >= 2 * len(WORKLOADS) and "cdn" not in page.lower()
    # the estimate up front, a progress line per cell, the noise summary at the end
    lines = proc.stderr.splitlines()
    assert any(f"{len(cells)} cells and 0 ceilings on sqlite: about " in ln for ln in lines), proc.stderr[:500]
    assert sum("left)" in ln for ln in lines) == len(cells)
    assert any(f"[{len(cells)}/{len(cells)}] " in ln for ln in lines) and "median CV " in proc.stderr


def test_quick_sqlite_ladder(sqlite_quick: tuple[subprocess.CompletedProcess, Path]) -> None:
    """The ladder from the same small run: sqlite3, then its builders (pypika, SQLAlchemy Core), then its ORMs
    (SQLAlchemy ORM, Peewee), each with numbers; % of the raw driver recomputed from this run's own QPS; the
    largest gap named on the console and in the reports; the chart in report.html."""
    proc, out = sqlite_quick
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads((run_dir(out) / "results.json").read_text())
    cells = [c for c in doc["results"] if c["outcome"] == MEASURED]
    raw = {(c["case"], c["driver"]): c for c in cells if c["params"]["variant"] == DEFAULT}
    for c in cells:
        lad = c["metrics"]["ladder"]
        adapter = get_adapter(c["driver"])
        assert (lad["rung"], lad["over"]) == (adapter.rung, adapter.dbapi), c["driver"]
        if c["driver"] == adapter.dbapi and c["params"]["variant"] == DEFAULT:
            assert "raw_pct" not in lad  # the raw driver's own row is the 100%
            continue
        under = raw[(c["case"], adapter.dbapi)]["metrics"]
        assert lad["raw_pct"] == pytest.approx(100 * c["metrics"]["qps"] / under["qps"], rel=0.02), c["driver"]
        assert lad["x_ci95"][0] <= lad["x_slower"] <= lad["x_ci95"][1], c["driver"]
        cpu, raw_cpu = c["metrics"]["cpu_us_per_op_repeats"], under["cpu_us_per_op_repeats"]
        assert lad["cpu_x"] == pytest.approx(c["metrics"]["cpu_us_per_op"] / under["cpu_us_per_op"], rel=0.02)
        assert min(cpu) - 0.01 <= c["metrics"]["cpu_us_per_op"] <= max(cpu) + 0.01 and min(raw_cpu) > 0, c["driver"]
        assert lad["cpu_x_ci95"][0] <= lad["cpu_x"] <= lad["cpu_x_ci95"][1], c["driver"]
    assert {get_adapter(d).rung for d in SQLITE_BY_WORKLOAD["pk_select"]} == {"driver", "builder", "orm"}
    ladders = {(t, case): shown for t, case, _, shown in ladder_rows(doc)}
    pk = ladders[("sqlite", "bench.pk_select")]["sqlite3"]
    rungs = [r["metrics"]["ladder"]["rung"] for r in pk]
    assert rungs == sorted(rungs, key=["driver", "builder", "orm"].index) and pk[0]["driver"] == "sqlite3"
    assert {"pypika+sqlite3", "sa-core+sqlite3", "sa-orm+sqlite3", "peewee+sqlite3"} <= {r["driver"] for r in pk}
    md = (run_dir(out) / "report.md").read_text()
    table = md.split("Ladder · sqlite · bench.pk_select", 1)[1].split("\n\n", 2)[1].splitlines()[2:]
    stacks = [line.split(" | ")[1] for line in table if line.startswith("| sqlite3 |")]
    assert stacks[0] == "sqlite3" and stacks.index("pypika+sqlite3") < stacks.index("peewee+sqlite3")
    assert stacks.index("sa-core+sqlite3") < stacks.index("sa-orm+sqlite3")
    orm_row = next(line for line in table if line.startswith("| sqlite3 | sa-orm+sqlite3 | orm | default |"))
    assert "x (" in orm_row and "%" in orm_row and "row → object" in orm_row, orm_row
    (target, worst), = largest_gaps(doc)
    assert target == "sqlite" and worst["metrics"]["ladder"]["x_ci95"][0] == max(  # the gap it is surest of
        c["metrics"]["ladder"]["x_ci95"][0] for c in cells if "x_ci95" in c["metrics"]["ladder"]
        and c["params"]["variant"] == DEFAULT)
    assert gap_line(target, worst) in proc.stdout and gap_line(target, worst) in md
    page = (run_dir(out) / "report.html").read_text()
    assert page.count('class="bench-chart ladder-chart"><svg') == len(ladders)
    assert "% of the raw driver" in page
    # a report.md too long for a pull-request comment drops the per-workload tables but keeps the ladder
    short = render_markdown(doc, max_chars=len(md) // 2)
    assert "Ladder · sqlite · bench.pk_select" in short and "| sa-orm+sqlite3 | orm | default |" in short
    assert "| driver | conc. |" in md and "| driver | conc. |" not in short  # the per-workload tables went


@pytest.mark.parametrize("form", ["file", "folder", "latest"])
def test_compare_marks_changes_beyond_noise(sqlite_quick: tuple[subprocess.CompletedProcess, Path],
                                            tmp_path: Path, form: str) -> None:
    """--compare against a copy whose pk_select numbers are ten times higher with tight intervals, named as a
    results.json, as its run folder, or as ``<out>/latest``."""
    _, out = sqlite_quick
    old = json.loads((run_dir(out) / "results.json").read_text())
    for c in old["results"]:
        if c["case"] == "bench.pk_select":
            c["metrics"]["qps"], c["metrics"]["qps_ci95"] = c["metrics"]["qps"] * 10, 0.0
    run_folder = tmp_path / "old" / "20260101000000_abcdef"
    run_folder.mkdir(parents=True)
    (run_folder / "results.json").write_text(json.dumps(old))
    (tmp_path / "old" / "latest").symlink_to(run_folder.name, target_is_directory=True)
    old_path = {"file": run_folder / "results.json", "folder": run_folder, "latest": tmp_path / "old" / "latest"}[form]
    proc = bench(["--quick", "--target", "sqlite", "--workload", "pk_select", "--driver", "sqlite3",
                  "--compare", str(old_path), "--out", str(tmp_path / "new")], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    new = json.loads((run_dir(tmp_path / "new") / "results.json").read_text())
    assert new["results"] and all(c["metrics"]["compare"]["verdict"] == "slower" for c in new["results"])
    assert "changed beyond the noise" in proc.stdout


def test_quick_postgres_with_pgbench_ceiling(tmp_path: Path) -> None:
    proc = bench(["--quick", "--target", "postgres", "--workload", "pk_select", "--workload", "update_txn",
                  "--workload", "insert_batch", "--driver", "asyncpg", "--driver", "psycopg",
                  "--driver", "sa-orm+psycopg", "--concurrency", "1,2", "--out", str(tmp_path / "out")], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads((run_dir(tmp_path / "out") / "results.json").read_text())
    cells = doc["results"]
    assert {c["driver"] for c in cells} == {"pgbench", "asyncpg", "psycopg", "sa-orm+psycopg"}
    assert {c["params"]["concurrency"] for c in cells} == {1, 2}
    ceilings = {(c["case"], c["params"]["concurrency"]): c["metrics"]["qps"] for c in cells if c["driver"] == "pgbench"}
    cases = ("bench.pk_select", "bench.update_txn", "bench.insert_batch")
    assert set(ceilings) == {(case, n) for case in cases for n in (1, 2)}
    for c in cells:
        assert c["outcome"] == MEASURED, c["detail"]
        check_measured(c)
        if c["driver"] != "pgbench":
            expected = 100 * c["metrics"]["qps"] / ceilings[(c["case"], c["params"]["concurrency"])]
            assert c["metrics"]["ceiling_pct"] == pytest.approx(expected, abs=0.2)
    assert "pgbench (ceiling)" in (run_dir(tmp_path / "out") / "report.md").read_text()
    insert = next(c for c in cells if c["driver"] == "pgbench" and c["case"] == "bench.insert_batch")
    assert insert["params"]["knobs"]["mode"] == "-M simple", insert["params"]


def test_quick_mariadb_with_mysqlslap_ceilings(tmp_path: Path) -> None:
    """mysqlslap ceilings for a read and for insert_batch (its 1,000-row multi-VALUES transaction)."""
    proc = bench(["--quick", "--target", "mariadb", "--workload", "pk_select", "--workload", "insert_batch",
                  "--driver", "pymysql", "--out", str(tmp_path / "out")], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    cells = json.loads((run_dir(tmp_path / "out") / "results.json").read_text())["results"]
    ceilings = {c["case"]: c for c in cells if c["driver"] == "mysqlslap"}
    assert set(ceilings) == {"bench.pk_select", "bench.insert_batch"}
    for c in cells:
        assert c["outcome"] == MEASURED, c["detail"]
        check_measured(c)
        if c["driver"] == "pymysql":
            top = ceilings[c["case"]]["metrics"]["qps"]
            assert c["metrics"]["ceiling_pct"] == pytest.approx(100 * c["metrics"]["qps"] / top, abs=0.2)


@pytest.mark.parametrize("args", [
    ["--workload", "nope"], ["--repeats", "2"], ["--concurrency", "0"], ["--concurrency", "x"],
    ["--seconds", "0"], ["--driver", "nosuch"], ["--compare", "missing.json"], ["--compare", "."],
])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str]) -> None:
    proc = bench(["--target", "sqlite", *args, "--out", str(tmp_path / "out")], tmp_path, timeout=60)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith("dbmatrix: error: "), proc.stderr
    assert not (tmp_path / "out").exists()


def test_a_named_driver_without_a_target_of_its_kind_is_exit_2(tmp_path: Path) -> None:
    proc = bench(["--target", "sqlite", "--driver", "asyncpg", "--out", str(tmp_path / "out")], tmp_path, timeout=60)
    assert proc.returncode == 2 and "asyncpg" in proc.stderr, proc.stderr


# --- the pieces -------------------------------------------------------------------------------------------------
def test_ratio_interval() -> None:
    """x slower: the ratio of two means, its interval from both sides' repeats, around it and wider with noise."""
    x, lo, hi = ratio_ci95([100.0, 110.0, 90.0], [10.0, 11.0, 9.0])
    assert x == pytest.approx(10.0) and lo < 10.0 < hi and lo * hi == pytest.approx(100.0)
    _, lo2, hi2 = ratio_ci95([100.0, 130.0, 70.0], [10.0, 11.0, 9.0])
    assert lo2 < lo and hi2 > hi
    assert ratio_ci95([50.0, 50.0, 50.0], [5.0, 5.0, 5.0]) == (10.0, 10.0, 10.0)


def test_the_orm_rung_in_the_default_bench() -> None:
    """By default the ORM rung runs over each ORM's own default driver, on its default workloads, at the lowest
    concurrency; named, any pair runs everything asked; --driver all (cfg.every) plans every pair."""
    from dbmatrix.matrix import MatrixRun

    cfg = BenchConfig.from_args([], None, None, None, quick=False)
    implicit = MatrixRun.from_options(["postgres"], [], [], [], "unused")
    steps = [st for st in plan_target(implicit, implicit.targets[0], cfg) if isinstance(st, CellSpec)]
    orm = {(st.driver, st.workload, st.concurrency) for st in steps if get_adapter(st.driver).rung == "orm"}
    assert {d for d, _, _ in orm} == {"sa-orm+psycopg2", "peewee+psycopg2", "django+psycopg", "tortoise+asyncpg",
                                      "piccolo+asyncpg"}  # each ORM's own default driver; SQLModel when named
    assert {w for _, w, _ in orm} == set(get_adapter("peewee+psycopg2").bench_workloads_by_default)
    assert {c for _, _, c in orm} == {1} and {st.concurrency for st in steps} == {1, 4}
    assert {"sa-core+psycopg", "pypika+psycopg"} <= {st.driver for st in steps}
    named = MatrixRun.from_options(["postgres"], ["peewee+psycopg"], [], [], "unused")
    steps = [st for st in plan_target(named, named.targets[0], cfg) if isinstance(st, CellSpec)]
    assert {(st.workload, st.concurrency) for st in steps} == {(w, c) for w in WORKLOADS for c in (1, 4)}
    cfg.every = True
    steps = [st for st in plan_target(implicit, implicit.targets[0], cfg) if isinstance(st, CellSpec)]
    assert {"sqlmodel+asyncpg", "peewee+psycopg", "sa-orm+pg8000"} <= {st.driver for st in steps}


def test_histograms_merge_across_workers() -> None:
    a, b = histogram_of([1000] * 90), histogram_of([100_000] * 10)
    merged = merge_encoded([a.encode(), b.encode()])
    assert merged.get_total_count() == 100
    p = percentiles_us(merged)
    assert p["p50_us"] == pytest.approx(1.0, rel=0.01) and p["p99_us"] == pytest.approx(100.0, rel=0.01)


def test_repeat_statistics() -> None:
    mean, half = mean_ci95([100.0, 110.0, 90.0])
    assert mean == 100.0 and half == pytest.approx(4.303 * 10 / 3**0.5, rel=1e-3)
    assert cv_pct([100.0, 110.0, 90.0]) == pytest.approx(10.0)
    assert mean_ci95([5.0]) == (5.0, 0.0)


def test_config_defaults_and_validation() -> None:
    cfg = BenchConfig.from_args([], None, None, None, quick=False)
    assert cfg.workloads == list(WORKLOADS) and cfg.concurrency == [1, 4] and cfg.repeats >= 3 and cfg.rows == 100_000
    quick = BenchConfig.from_args(["pk_select,json_select"], "4,1", None, None, quick=True)
    assert quick.workloads == ["pk_select", "json_select"] and quick.concurrency == [1, 4]
    with pytest.raises(UsageError):
        BenchConfig.from_args([], None, None, 1, quick=False)


def test_insert_batch_ceiling_statements() -> None:
    """The ceilings' insert_batch: one transaction around one INSERT of 1,000 literal rows."""
    script = pgbench_script("insert_batch", 1000).splitlines()
    assert script[0] == "BEGIN;" and script[-1] == "END;" and len(script) == 3
    assert script[1].startswith("INSERT INTO bench_events (user_id, payload) VALUES (")
    assert script[1].count("),(") == BATCH_ROWS - 1
    stmts, per_op = slap_statements("insert_batch", 1000, seed=7)
    assert per_op == 3 and len(stmts) % 3 == 0 and stmts[:3:2] == ["START TRANSACTION", "COMMIT"]
    assert stmts[1].count("),(") == BATCH_ROWS - 1


def test_default_full_bench_is_planned_within_15_minutes() -> None:
    """The default configuration's own estimate for the full bench (postgres, mariadb, sqlite, every driver,
    concurrency 1 and 4): the budget the defaults were chosen for; the run itself prints the same estimate."""
    from dbmatrix.matrix import MatrixRun

    run = MatrixRun.from_options(["postgres", "mariadb", "sqlite"], [], [], [], "unused")
    cfg = BenchConfig.from_args([], None, None, None, quick=False)
    plans = {t.name: plan_target(run, t, cfg) for t in run.targets}
    cells = [st for steps in plans.values() for st in steps if isinstance(st, CellSpec)]
    assert len(cells) > 300 and {c.concurrency for c in cells} == {1, 4} and cfg.repeats >= 3
    assert estimate_seconds(plans, cfg) <= 15 * 60
    quick = BenchConfig.from_args([], None, None, None, quick=True)
    for name in ("sqlite", "postgres"):
        target = next(t for t in run.targets if t.name == name)
        assert estimate_seconds({name: plan_target(run, target, quick)}, quick) <= 2 * 60


def test_a_newer_rungs_layers_are_benched_when_named() -> None:
    """The default bench gives a newer rung's driver its own rows but leaves the SQLAlchemy pairs over it to be
    named (bench_layers_by_default), so its 15 minutes hold; named, the pair is planned like any other."""
    from dbmatrix.matrix import MatrixRun

    cfg = BenchConfig.from_args(["pk_select"], "1", None, None, quick=True)
    implicit = MatrixRun.from_options(["postgres"], [], [], [], "unused")
    drivers = {st.driver for st in plan_target(implicit, implicit.targets[0], cfg) if isinstance(st, CellSpec)}
    assert {"pg8000", "psycopg", "sa-core+psycopg"} <= drivers and "sa-core+pg8000" not in drivers
    named = MatrixRun.from_options(["postgres"], ["sa-core+pg8000"], [], [], "unused")
    assert {st.driver for st in plan_target(named, named.targets[0], cfg) if isinstance(st, CellSpec)} == {
        "sa-core+pg8000"}


def test_overhead_pass_is_bounded_by_its_budget() -> None:
    """Slow calls make long rounds: the pass stops at its budget, after at least OVERHEAD_MIN_ROUNDS rounds."""
    import time

    slow = Op(lambda: time.sleep(0.02), False)
    pairs = overhead_sync(slow, 0.001, 10, budget=0.05)
    assert len(pairs) == OVERHEAD_MIN_ROUNDS and all(p[0] >= 1 for p in pairs)
    fast = Op(lambda: None, False)
    assert len(overhead_sync(fast, 0.001, 10, budget=5.0)) == 10


def test_warmup_ends_once_the_rate_settles() -> None:
    assert not settled(None, 100.0) and not settled(0.0, 100.0)
    assert settled(100.0, 109.0) and settled(100.0, 91.0) and not settled(100.0, 120.0)
    worker = Worker()
    worker.op = Op(lambda: sum(range(50)), False)
    assert 2 <= worker.warmup(0.2)["chunks"] <= WARMUP_CHUNKS  # at least two chunks to compare, at most all


def test_every_layer_has_a_default_and_names_its_tuned_knobs() -> None:
    for w in WORKLOADS:
        for d in ("asyncpg", "psycopg", "pymysql", "sqlite3", "sa-core+psycopg", "sa-orm+asyncmy"):
            v = variants(d, w)
            assert DEFAULT in v
            assert all(v[TUNED].values()) if TUNED in v else True
    assert TUNED in variants("sa-orm+psycopg", "pk_select") and TUNED in variants("psycopg", "insert_batch")


def test_profile_parts() -> None:
    mods = get_adapter("psycopg").profile_modules
    layer = get_adapter("sa-orm+psycopg").profile_parts  # the layer says which modules are its parts
    assert part_of("/x/site-packages/sqlalchemy/orm/session.py", "get", mods, layer) == "sqlalchemy-orm"
    assert part_of("/x/site-packages/sqlalchemy/engine/base.py", "execute", mods, layer) == "sqlalchemy-core"
    assert part_of("~", "<method 'switch' of 'greenlet.greenlet' objects>", mods, layer) == "sqlalchemy-core"
    assert part_of("/x/site-packages/sqlalchemy/engine/base.py", "execute", mods) == "other"  # no layer: not its
    assert part_of("/x/site-packages/psycopg/cursor.py", "execute", mods) == "driver"
    assert part_of("/x/site-packages/psycopg/connection.py", "wait", mods) == "wait"
    assert part_of("~", "<method 'poll' of 'select.epoll' objects>", mods) == "wait"
    assert part_of("~", "<method 'execute' of 'sqlite3.Cursor' objects>", ("sqlite3",)) == "driver"

    import cProfile
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    sum(i * i for i in range(10000))
    prof.disable()
    split = split_profile(pstats.Stats(prof), "sqlite3")
    assert sum(split["split_pct"].values()) == pytest.approx(100.0, abs=1.0) and split["top"]


def test_profile_stages_split_peewee_by_function() -> None:
    """Peewee builds SQL and makes model objects in one module: its result wrappers, model construction and field
    conversion are charged to row -> object by function, the rest of peewee.py to SQL building, on a real profile
    of 100-row selects as model objects (the per-row work is mostly objects) and of SQL built per call."""
    import cProfile
    import pstats

    import peewee as pw

    from dbmatrix.bench.timesplit import stage_split

    db = pw.SqliteDatabase(":memory:")

    class Row(pw.Model):
        a = pw.IntegerField()
        b = pw.CharField()

        class Meta:
            database = db

    db.create_tables([Row])
    Row.insert_many([{"a": i, "b": str(i)} for i in range(200)]).execute()
    prof = cProfile.Profile()
    prof.enable()
    for i in range(50):
        list(Row.select().where(Row.a < 100 + i))
    prof.disable()
    stages = stage_split(split_profile(pstats.Stats(prof), "peewee+sqlite3")["split_pct"], "peewee+sqlite3")
    assert set(stages) <= {"driver", "sql", "objects", "other"} and stages["objects"] > stages["sql"] > 0, stages
    sa = stage_split({"driver": 20.0, "wait": 10.0, "sqlalchemy-core": 40.0, "sqlalchemy-orm": 25.0,
                      "harness": 5.0}, "sa-orm+psycopg")
    assert sa == {"driver": 30.0, "sql": 40.0, "objects": 25.0, "other": 5.0}


def _doc_with(cells: list[CellResult]) -> dict[str, Any]:
    doc = RunDocument()
    doc.results = cells
    return doc.to_dict()


def test_compare_uses_interval_overlap() -> None:
    def cell(qps: float, ci: float) -> CellResult:
        return CellResult("bench.pk_select", "t", "d", MEASURED, params={"concurrency": 1, "variant": DEFAULT},
                          metrics={"qps": qps, "qps_ci95": ci})

    old = _doc_with([cell(1000.0, 50.0)])
    for qps, ci, verdict in ((1080.0, 40.0, "within noise"), (1200.0, 40.0, "faster"), (800.0, 10.0, "slower")):
        new = RunDocument()
        new.results = [cell(qps, ci)]
        annotate(new, old)
        assert new.results[0].metrics["compare"]["verdict"] == verdict


def test_report_section_renders_from_the_document_alone() -> None:
    cells = [CellResult("bench.pk_select", "pg", d, MEASURED, params={"concurrency": 1, "variant": v, "knobs": {}},
                        detail="wait 80%", metrics={"qps": q, "qps_ci95": 1.0, "p50_us": 10.0, "p99_us": 20.0,
                                                    "latency_us": [[50.0, 10.0], [99.0, 20.0]]})
             for d, v, q in (("asyncpg", DEFAULT, 900.0), ("asyncpg", TUNED, 1000.0), ("pgbench", "ceiling", 1200.0))]
    doc = _doc_with(cells)
    md = bench_markdown(doc)
    assert "### pg · bench.pk_select" in md and "| asyncpg | 1 | 900 ± 1 |" in md
    page = bench_html(doc)
    assert page.count("<svg") == 2 and "<script" not in page
    assert bench_markdown(_doc_with([])) == "" and bench_html(_doc_with([])) == ""


def test_noise_line_sums_up_cv_cpu_wait_and_load() -> None:
    """The report's and the run's last line: medians over measured cells, ceilings left out."""
    def cell(driver: str, variant: str, cv: float, wait: float, load: float) -> CellResult:
        return CellResult("bench.pk_select", "pg", driver, MEASURED, params={"concurrency": 1, "variant": variant},
                          metrics={"qps": 1.0, "qps_ci95": 0.0, "cv_pct": cv, "cpu_wait_pct": wait, "load_1m": load})

    doc = _doc_with([cell("a", DEFAULT, 2.0, 10.0, 1.0), cell("a", TUNED, 4.0, 30.0, 3.0),
                     cell("b", DEFAULT, 30.0, 50.0, 2.0), cell("pgbench", "ceiling", 90.0, 90.0, 9.0)])
    line = noise_line(doc["results"])
    assert line.startswith("Noise: median CV 4.0% over 3 cells; the load generator waited for a CPU 30% ")
    assert "load average 2.0 (median" in line
    assert line in bench_markdown(doc) and noise_line([]) == ""


def test_charts_render_in_headless_chromium(tmp_path: Path) -> None:
    """The report's bench charts are inline SVG that a browser draws: bars, percentile curves, scaling lines."""
    from test_report_html_dom import dom as browser_dom

    from dbmatrix.report import render_html

    cells = [CellResult("bench.pk_select", "pg", d, MEASURED, params={"concurrency": c, "variant": v, "knobs": {}},
                        metrics={"qps": q * c, "qps_ci95": 5.0, "p50_us": 10.0, "p99_us": 20.0,
                                 "latency_us": [[50.0, 10.0], [99.0, 20.0], [99.9, 40.0]]})
             for c in (1, 4)
             for d, v, q in (("asyncpg", DEFAULT, 900.0), ("asyncpg", TUNED, 1000.0), ("pgbench", "ceiling", 1200.0))]
    path = tmp_path / "report.html"
    path.write_text(render_html(_doc_with(cells)), encoding="utf-8")
    root = browser_dom(path, tmp_path)  # the DOM as headless Chromium built it
    assert len(root.find("svg", "chart")) == 3
    assert len(root.find("rect")) == 3  # asyncpg default + tuned, pgbench at c=1
    assert len(root.find("polyline")) == 4  # 2 latency curves + 2 scaling lines


def test_every_run_cell_records_wall_ms() -> None:
    """``dbmatrix run`` cells carry ``wall_ms`` whatever their outcome, so suite timings land in the matrix too."""
    from sqlalchemy.engine import make_url

    from dbmatrix.cell import Cell
    from dbmatrix.drivers import get_adapter
    from dbmatrix.results import SKIPPED
    from dbmatrix.targets.model import Target

    target = Target("sqlite", "sqlite", make_url("sqlite://"))
    for outcome in (SKIPPED, "supported", "error"):
        cell = Cell("types.x", target, get_adapter("sqlite3"))
        result = cell.error(RuntimeError("x")) if outcome == "error" else cell.record(outcome, "why")
        assert result.metrics["wall_ms"] >= 0


def test_unclaimed_time_goes_to_the_callers_parts() -> None:
    """Standard-library and builtin time no part claims is charged to the parts of its callers, in proportion to the
    time each call spent; what nothing above claims stays ``other``."""
    peewee_fn = ("/venv/site-packages/peewee.py", 10, "execute")
    driver_fn = ("~", 0, "<method 'execute' of 'sqlite3.Cursor' objects>")
    deepcopy = ("/usr/lib/python3.11/copy.py", 5, "deepcopy")
    length = ("~", 0, "<built-in method builtins.len>")
    orphan = ("/usr/lib/python3.11/re.py", 7, "compile")

    class Stats:  # pstats' layout: {key: (cc, nc, tottime, cumtime, {caller: (nc, cc, tottime, cumtime)})}
        stats = {
            peewee_fn: (1, 1, 1.0, 6.0, {}),
            driver_fn: (1, 1, 1.0, 1.0, {}),
            deepcopy: (4, 4, 2.0, 3.0, {peewee_fn: (3, 3, 1.5, 2.0), driver_fn: (1, 1, 0.5, 1.0)}),
            length: (2, 2, 1.0, 1.0, {deepcopy: (2, 2, 1.0, 1.0)}),  # two levels up: 3/4 peewee, 1/4 driver
            orphan: (1, 1, 1.0, 1.0, {}),
        }

    split = split_profile(Stats(), "peewee+sqlite3")["split_pct"]  # type: ignore[arg-type]
    # peewee 1 + 1.5 (deepcopy) + 0.75 (len via deepcopy); driver 1 + 0.5 + 0.25; other: re.compile's 1; of 6
    assert split == {"peewee": pytest.approx(54.2, abs=0.1), "driver": pytest.approx(29.2, abs=0.1),
                     "other": pytest.approx(16.7, abs=0.1)}, split
