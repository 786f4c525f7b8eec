"""mysqlclient (``MySQLdb``): the C libmysqlclient/libmariadb binding; client-side interpolation like PyMySQL."""

from __future__ import annotations

from typing import ClassVar

from .mysql_common import MySQLDBAPIAdapter


class MysqlclientAdapter(MySQLDBAPIAdapter):
    id: ClassVar[str] = "mysqlclient"
    modules: ClassVar[tuple[str, ...]] = ("MySQLdb",)
