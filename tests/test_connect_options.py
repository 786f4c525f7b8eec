"""``DriverAdapter.connect(info, options=...)`` hands per-connection options to the driver's own connect call
(what ``cell.connect(options=...)`` uses): each option below has an effect the server or driver shows."""

from __future__ import annotations

import pytest
from live import installed_adapter, mariadb_info, postgres_info

CASES = {
    "psycopg": ({"application_name": "dbm_opt_psycopg"}, "SHOW application_name", "dbm_opt_psycopg"),
    "psycopg-async": ({"application_name": "dbm_opt_pa"}, "SHOW application_name", "dbm_opt_pa"),
    "psycopg2": ({"application_name": "dbm_opt_psycopg2"}, "SHOW application_name", "dbm_opt_psycopg2"),
    "asyncpg": ({"server_settings": {"application_name": "dbm_opt_asyncpg"}, "statement_cache_size": 0},
                "SHOW application_name", "dbm_opt_asyncpg"),
    "sa-core+psycopg": ({"application_name": "dbm_opt_sa"}, "SHOW application_name", "dbm_opt_sa"),
    "pymysql": ({"init_command": "SET @dbm_opt := 7"}, "SELECT @dbm_opt", 7),
    "mysqlclient": ({"init_command": "SET @dbm_opt := 8"}, "SELECT @dbm_opt", 8),
    "asyncmy": ({"init_command": "SET @dbm_opt := 9"}, "SELECT @dbm_opt", 9),
}


@pytest.mark.parametrize("driver_id", list(CASES))
def test_options_reach_the_driver(driver_id: str) -> None:
    adapter = installed_adapter(driver_id)
    options, query, expected = CASES[driver_id]
    info = mariadb_info() if "mysql" in adapter.kinds else postgres_info()
    session = adapter.connect(info, options=options)
    try:
        assert session.execute(query).scalar() == expected
    finally:
        session.close()
    plain = adapter.connect(info)  # and nothing sticks to the next connection
    try:
        assert session.info.options == options and plain.info.options == {}
    finally:
        plain.close()
