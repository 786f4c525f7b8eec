"""``DriverAdapter.connect(info, options=...)`` hands per-connection options to the driver's own connect call
(what ``cell.connect(options=...)`` uses): each option below has an effect the server or driver shows."""

from __future__ import annotations

import pytest
from live import installed_adapter, mariadb_info, postgres_info

SEARCH_PATH = {"options": "-csearch_path=dbm_opt"}  # a libpq keyword
CASES = {
    "psycopg": ({**SEARCH_PATH, "prepare_threshold": None}, "SHOW search_path", "dbm_opt"),
    "psycopg-async": (SEARCH_PATH, "SHOW search_path", "dbm_opt"),
    "psycopg2": (SEARCH_PATH, "SHOW search_path", "dbm_opt"),
    "asyncpg": ({"server_settings": {"search_path": "dbm_opt"}, "statement_cache_size": 0},
                "SHOW search_path", "dbm_opt"),
    "psqlpy": ({**SEARCH_PATH, "prepared": False}, "SHOW search_path", "dbm_opt"),
    "sa-core+psycopg": (SEARCH_PATH, "SHOW search_path", "dbm_opt"),
    "sa-core+asyncpg": ({"server_settings": {"search_path": "dbm_opt"}}, "SHOW search_path", "dbm_opt"),
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
        if "postgresql" in adapter.kinds:  # the session's own application_name (observers find it by it) stays
            assert session.execute("SHOW application_name").scalar() == session.info.application_name != ""
    finally:
        session.close()
    plain = adapter.connect(info)  # and nothing sticks to the next connection
    try:
        assert session.info.options == options and plain.info.options == {}
        assert plain.execute("SHOW search_path" if "postgresql" in adapter.kinds else "SELECT @dbm_opt").scalar() \
            in ('"$user", public', None)
    finally:
        plain.close()
