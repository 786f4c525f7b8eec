"""PyMySQL: pure-Python MySQL/MariaDB driver; client-side parameter interpolation (no server prepare)."""

from __future__ import annotations

from typing import ClassVar

from .mysql_common import MySQLDBAPIAdapter


class PyMySQLAdapter(MySQLDBAPIAdapter):
    id: ClassVar[str] = "pymysql"
    modules: ClassVar[tuple[str, ...]] = ("pymysql",)
