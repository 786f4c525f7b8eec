"""Connection facts for tests that talk to the live local servers (provisioned by ci/provision)."""

from __future__ import annotations

import socket

import pytest
from sqlalchemy.engine import make_url

from dbmatrix.drivers import get_adapter
from dbmatrix.drivers.base import ConnectInfo, DriverAdapter

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PGBOUNCER_URL = "postgresql://postgres@127.0.0.1:6432/postgres"
MARIADB_URL = "mysql://root@127.0.0.1:3306/test"


def postgres_info() -> ConnectInfo:
    return ConnectInfo(kind="postgresql", url=make_url(POSTGRES_URL), engine="postgresql")


def pgbouncer_info() -> ConnectInfo:
    return ConnectInfo(kind="postgresql", url=make_url(PGBOUNCER_URL), engine="postgresql")


def mariadb_info() -> ConnectInfo:
    return ConnectInfo(kind="mysql", url=make_url(MARIADB_URL), engine="mariadb")


def sqlite_info(path: str) -> ConnectInfo:
    return ConnectInfo(kind="sqlite", url=make_url(f"sqlite:///{path}"), engine="sqlite")


LIVE_KINDS = ("postgresql", "mysql", "sqlite")  # the kinds of the local servers, in order of preference


def live_kind(driver_id: str) -> str:
    """The kind of live server a driver's tests run on: the first of ``LIVE_KINDS`` its adapter supports."""
    adapter = get_adapter(driver_id)
    return next(kind for kind in LIVE_KINDS if adapter.supports(kind))


def live_info(driver_id: str, sqlite_path: str) -> ConnectInfo:
    """Connection facts for the live server of ``driver_id``'s kind (SQLite: a file at ``sqlite_path``)."""
    kind = live_kind(driver_id)
    if kind == "postgresql":
        return postgres_info()
    if kind == "mysql":
        return mariadb_info()
    return sqlite_info(sqlite_path)


def installed_adapter(driver_id: str) -> DriverAdapter:
    """The adapter for ``driver_id``; a missing driver fails the test (CI installs every one, so never skip)."""
    adapter = get_adapter(driver_id)
    reason = adapter.unavailable_reason()
    if reason:
        pytest.fail(f"driver {driver_id} is not installed: {reason} (pip install -e '.[all]')")
    return adapter


def reachable(port: int) -> bool:
    """Whether something listens on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False
