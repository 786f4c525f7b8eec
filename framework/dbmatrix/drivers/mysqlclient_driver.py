"""mysqlclient (``MySQLdb``): the C libmysqlclient/libmariadb binding; client-side interpolation like PyMySQL."""

from __future__ import annotations

from typing import ClassVar

from .mysql_common import MySQLDBAPIAdapter


class MysqlclientAdapter(MySQLDBAPIAdapter):
    id: ClassVar[str] = "mysqlclient"
    modules: ClassVar[tuple[str, ...]] = ("MySQLdb",)
    exceptions: ClassVar[tuple[str, ...]] = ("MySQLdb.MySQLError",)
    sa_driver: ClassVar[str | None] = "mysqldb"
    distributions: ClassVar[tuple[str, ...]] = ("mysqlclient",)
    # its C query() shows in a profile as "<function Connection.query>"
    profile_modules: ClassVar[tuple[str, ...]] = ("MySQLdb", "_mysql", "Connection.query")
