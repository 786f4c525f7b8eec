"""Sharded runs: pytest-xdist workers and CI-style shards write one shard document each (same run id), and the
merge of the shards equals the unsharded run cell by cell. Live servers (SQLite, PostgreSQL), real cases.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

REPO = Path(__file__).resolve().parents[1]
CASES = REPO / "cases"
DBMATRIX = Path(sys.executable).parent / "dbmatrix"
SELECTION = ["--target", "sqlite", "--target", "postgres",
             "--driver", "sqlite3,aiosqlite,psycopg,asyncpg,sa-core+psycopg",
             "--case", "sql.cte*", "--case", "types.int_limits", "--case", "sql.upsert*"]


def env() -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("DBMATRIX_")}
    e.update(COLUMNS="200", NO_COLOR="1")
    return e


def pytest_run(out: Path, *extra: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(CASES), "-q", "-p", "no:randomly", "-p", "no:cacheprovider",
         f"--rootdir={REPO}", "--dbm-out", str(out), *SELECTION, *extra],
        cwd=REPO, env=env(), capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode in (0, 1), proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def cells(doc: dict[str, Any]) -> dict[tuple[str, str, str, str], tuple[Any, ...]]:
    """Cell identity -> what must agree between a sharded and an unsharded run."""
    out = {}
    for r in doc["results"]:
        key = (r["case"], r["target"], r["driver"], json.dumps(r["params"], sort_keys=True))
        assert key not in out, f"cell {key} twice"
        out[key] = (r["outcome"], r["verdict"], r["expected"], r["mechanism"])
    return out


def latest(out: Path) -> dict[str, Any]:
    return json.loads((out / "latest" / "results.json").read_text())


@pytest.fixture(scope="module")
def unsharded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("unsharded")
    pytest_run(out)
    doc = latest(out)
    assert len(doc["results"]) > 20 and not (out / doc["run"]["id"] / "shards").exists()
    return doc


def scratch_left(run_id: str) -> list[str]:
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        return [r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (f"%{run_id}%",))]


def test_xdist_run_merged_equals_unsharded(unsharded: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = pytest_run(out, "-n", "2")
    doc = latest(out)
    run_id = doc["run"]["id"]
    shards = sorted(p.name for p in (out / run_id / "shards").iterdir())
    assert shards == ["gw0.json", "gw1.json"], shards
    for name in shards:  # every worker joined the controller's run
        shard = json.loads((out / run_id / "shards" / name).read_text())
        assert shard["run"]["id"] == run_id and shard["run"]["shard"] == name.removesuffix(".json")
        assert shard["results"], f"{name} ran no cell (the split proves nothing)"
    assert cells(doc) == cells(unsharded)
    assert doc["run"]["complete"] is True and [s["name"] for s in doc["run"]["shards"]] == ["gw0", "gw1"]
    assert (out / run_id / "report.md").is_file() and (out / run_id / "report.html").is_file()
    assert run_id in proc.stdout  # the controller reports the merged run
    assert scratch_left(run_id) == []  # each worker dropped its own scratch (names carry the worker id)


def test_ci_shards_merge_with_dbmatrix_merge(unsharded: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_id = "ci_shard_test_1"
    env_run = ["--dbm-run-id", run_id]
    # two "jobs" of one run, split by target
    pytest_run(out, *env_run, "--dbm-shard", "job-sqlite", "-k", "sqlite")
    pytest_run(out, *env_run, "--dbm-shard", "job-postgres", "-k", "postgres")
    assert not (out / run_id / "results.json").exists(), "a shard must not write the run's results.json"
    proc = subprocess.run([str(DBMATRIX), "merge", str(out / run_id)], cwd=tmp_path, env=env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    doc = latest(out)
    assert doc["run"]["id"] == run_id
    assert cells(doc) == cells(unsharded)
    # merging is a pure function of the shards: the same files in another order give the same cells
    files = sorted((out / run_id / "shards").glob("*.json"), reverse=True)
    again = tmp_path / "again"
    proc = subprocess.run([str(DBMATRIX), "merge", *map(str, files), "--out", str(again)], cwd=tmp_path, env=env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert latest(again)["results"] == doc["results"]


def test_merge_refuses_shards_of_different_runs(tmp_path: Path) -> None:
    for i in (1, 2):
        doc = {"schema": "dbmatrix/results/v1", "run": {"id": f"run{i}", "started": "x", "finished": "y",
                                                         "complete": True, "shard": f"s{i}"},
               "targets": [], "results": []}
        (tmp_path / f"s{i}.json").write_text(json.dumps(doc))
    proc = subprocess.run([str(DBMATRIX), "merge", "s1.json", "s2.json", "--out", "o"], cwd=tmp_path, env=env(),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "different runs" in proc.stderr and not (tmp_path / "o").exists()


def test_bad_run_id_is_a_usage_error(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(CASES), "-q", "-p", "no:cacheprovider", "--target", "sqlite",
         "--dbm-run-id", "../../etc", "--dbm-out", str(tmp_path / "out")],
        cwd=REPO, env=env(), capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR, proc.stdout + proc.stderr
    assert "run id" in proc.stderr and not (tmp_path / "out").exists()


def test_an_old_document_still_reports_and_diffs(unsharded: dict[str, Any], tmp_path: Path) -> None:
    """Documents written before findings, artifacts, versions, pooler and replica_of existed."""
    old = json.loads(json.dumps(unsharded))
    for key in ("libraries", "python_implementation"):
        old["run"].pop(key, None)
    old["run"]["host"] = {"cpus": 2}
    for t in old["targets"]:
        t.pop("pooler", None)
        t.pop("replica_of", None)
    for r in old["results"]:
        r.pop("findings", None)
        r.pop("artifacts", None)
    (tmp_path / "old.json").write_text(json.dumps(old))
    (tmp_path / "new.json").write_text(json.dumps(unsharded))
    for args in (["report", "old.json"], ["diff", "old.json", "new.json"]):
        proc = subprocess.run([str(DBMATRIX), *args], cwd=tmp_path, env=env(), capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
    assert "types.int_limits" in (tmp_path / "report.md").read_text()
