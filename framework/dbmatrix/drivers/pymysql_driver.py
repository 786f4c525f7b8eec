"""PyMySQL: pure-Python MySQL/MariaDB driver; client-side parameter interpolation (no server prepare)."""

from __future__ import annotations

from typing import Any, ClassVar

from ..engines.mysql import with_utf8_password
from .mysql_common import MySQLDBAPIAdapter
from .protocol import ConnectInfo


class PyMySQLAdapter(MySQLDBAPIAdapter):
    id: ClassVar[str] = "pymysql"
    modules: ClassVar[tuple[str, ...]] = ("pymysql",)
    exceptions: ClassVar[tuple[str, ...]] = ("pymysql.err.MySQLError",)
    refusals: ClassVar[tuple[tuple[str, str], ...]] = (
        ("ProgrammingError", r"^(nan|inf|-inf) can not be used with MySQL"),)
    sa_driver: ClassVar[str | None] = "pymysql"
    distributions: ClassVar[tuple[str, ...]] = ("pymysql",)

    def connect_kwargs(self, info: ConnectInfo) -> dict[str, Any]:
        return with_utf8_password(super().connect_kwargs(info))
