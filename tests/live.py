"""Connection facts for tests that talk to the live local servers (provisioned by ci/provision)."""

from __future__ import annotations

from sqlalchemy.engine import make_url

from dbmatrix.drivers.base import ConnectInfo

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
