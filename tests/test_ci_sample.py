"""The bounded CI profile (DBMATRIX_CI_SAMPLE=1): which layered cells it generates, deterministically."""

from __future__ import annotations

import pytest

from dbmatrix import sampling
from dbmatrix.drivers import all_driver_ids, get_adapter

CASES = [f"types.case_{i}" for i in range(200)]


def test_dbapi_drivers_and_older_layers_keep_every_cell() -> None:
    for driver_id in ("aiomysql", "mysql-connector", "mariadb-connector", "sa-core+pymysql", "sa-orm+asyncpg"):
        adapter = get_adapter(driver_id)
        assert all(sampling.keeps(case, adapter) for case in CASES), driver_id


def test_layers_over_the_new_rung_keep_about_one_case_in_four_always_the_same() -> None:
    sampled = [d for d in all_driver_ids() if "+" in d and getattr(get_adapter(d).under, "ci_sample_layers", False)]
    assert {"sa-core+aiomysql", "sa-orm+mysql-connector-pure", "sa-core+mariadb-connector"} <= set(sampled)
    for driver_id in sampled:
        adapter = get_adapter(driver_id)
        kept = [c for c in CASES if sampling.keeps(c, adapter)]
        assert 0.15 < len(kept) / len(CASES) < 0.35, (driver_id, len(kept))
        assert kept == [c for c in CASES if sampling.keeps(c, get_adapter(driver_id))]  # deterministic


def test_the_new_rung_leaves_the_stream_case_to_the_full_run() -> None:
    for driver_id in ("aiomysql", "mysql-connector", "sa-core+aiomysql", "sa-orm+mariadb-connector"):
        assert not sampling.keeps(sampling.STREAM_CASE, get_adapter(driver_id)), driver_id
    for driver_id in ("pymysql", "asyncmy", "sa-core+pymysql", "sa-orm+asyncpg", "psycopg"):
        assert sampling.keeps(sampling.STREAM_CASE, get_adapter(driver_id)), driver_id



@pytest.mark.parametrize(("value", "active"), [("", False), ("0", False), ("1", True)])
def test_the_profile_is_named_in_the_run_record_only_when_active(
        monkeypatch: pytest.MonkeyPatch, value: str, active: bool) -> None:
    monkeypatch.setenv(sampling.CI_SAMPLE_ENV, value)
    assert sampling.active() is active
    assert (sampling.profile() is not None) is active
