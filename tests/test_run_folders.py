"""Pure logic of run folders, `latest`, scratch names and shard merging (no server needed)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from dbmatrix.errors import UsageError
from dbmatrix.results import find_results, load_document, merge_documents, new_run_id, update_latest
from dbmatrix.targets.scratch import scratch_name


def doc(run_id: str, shard: str | None, cells: list[tuple[str, str, str, str]]) -> dict:
    run = {"id": run_id, "started": f"2026-01-01T00:00:0{len(cells)}", "finished": "2026-01-01T00:01:00",
           "complete": True}
    if shard:
        run["shard"] = shard
    return {"schema": "dbmatrix/results/v1", "run": run,
            "targets": [{"name": t, "kind": "sqlite", "status": "ok", "url": "sqlite://", "reason": None,
                         "server_version": "3"} for t in sorted({c[1] for c in cells})],
            "results": [{"case": c, "target": t, "driver": d, "params": {}, "outcome": o, "verdict": "as-expected"}
                        for c, t, d, o in cells]}


def test_scratch_names_fit_and_never_collide() -> None:
    run_id = new_run_id()
    long_a, long_b = "a-very-long-target-name-" + "x" * 40, "a-very-long-target-name-" + "x" * 39 + "y"
    names = {scratch_name(run_id, t, "gw0", "c0123abcd") for t in ("pg", "pg-2", long_a, long_b)}
    assert len(names) == 4
    assert all(n.startswith(f"dbmatrix_{run_id}_") and len(n) <= 63 for n in names), names
    assert scratch_name(run_id, "postgres") == f"dbmatrix_{run_id}_postgres"
    assert scratch_name(run_id, "postgres", "gw1") == f"dbmatrix_{run_id}_postgres_gw1"


def test_latest_is_a_symlink_or_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for run_id in ("r1", "r2"):
        (tmp_path / run_id).mkdir()
        (tmp_path / run_id / "results.json").write_text(json.dumps(doc(run_id, None, [])))
    update_latest(tmp_path, "r1")
    update_latest(tmp_path, "r2")
    assert os.readlink(tmp_path / "latest") == "r2"
    assert find_results(tmp_path / "latest") == tmp_path / "r2" / "results.json"
    assert find_results(tmp_path) == tmp_path / "r2" / "results.json"  # the output root means its latest run

    def no_symlinks(*args: object, **kw: object) -> None:
        raise OSError("symlinks not supported here")

    monkeypatch.setattr(os, "symlink", no_symlinks)
    update_latest(tmp_path, "r1")
    assert (tmp_path / "latest").read_text().strip() == "r1" and not (tmp_path / "latest").is_symlink()
    assert load_document(tmp_path / "latest")["run"]["id"] == "r1"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".latest")]


def test_find_results_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not found"):
        find_results(tmp_path / "nope.json")
    with pytest.raises(UsageError, match="no results.json"):
        find_results(tmp_path)


def test_merge_is_cell_by_cell_and_order_free() -> None:
    a = doc("r", "gw0", [("sql.a", "sqlite", "sqlite3", "supported"), ("sql.b", "sqlite", "sqlite3", "differs")])
    b = doc("r", "gw1", [("sql.a", "pg", "psycopg", "supported")])
    merged, again = merge_documents([a, b]), merge_documents([b, a])
    assert merged == again
    assert [(r["case"], r["target"]) for r in merged["results"]] == [
        ("sql.a", "sqlite"), ("sql.b", "sqlite"), ("sql.a", "pg")]
    assert "shard" not in merged["run"] and [s["name"] for s in merged["run"]["shards"]] == ["gw0", "gw1"]
    assert merged["run"]["started"] == "2026-01-01T00:00:01"
    b["run"]["complete"] = False
    assert merge_documents([a, b])["run"]["complete"] is False
    with pytest.raises(ValueError, match="different runs"):
        merge_documents([a, doc("other", "gw1", [])])
