"""aiomysql: the asyncio MySQL/MariaDB driver built on PyMySQL (its protocol code, converters and exceptions).

It has asyncmy's API shape (awaitable connect, async cursors, ``SSCursor``, ``ensure_closed``), so its session is
asyncmy's. What differs: ``db`` instead of ``database``, and no read timeout of its own (every operation of a
session is bounded by the harness deadline instead). Like PyMySQL it interpolates parameters client-side and sends
plain COM_QUERY, so nothing is prepared on the server.
"""

from __future__ import annotations

from typing import Any, ClassVar

from .asyncmy_driver import AsyncmyAdapter
from .mysql_common import connect_kwargs
from .protocol import CONNECT_TIMEOUT_S, ConnectInfo


class AiomysqlAdapter(AsyncmyAdapter):
    id: ClassVar[str] = "aiomysql"
    modules: ClassVar[tuple[str, ...]] = ("aiomysql",)
    exceptions: ClassVar[tuple[str, ...]] = ("pymysql.err.MySQLError",)  # aiomysql raises PyMySQL's own classes
    # aiomysql 0.3 imports PyMySQL's escape_bytes_prefixed, which PyMySQL >= 1.1.1 replaced by the string
    # "DO NOT IMPORT THIS!!!": binding any bytes value calls that string (a TypeError inside aiomysql's escape)
    refusals: ClassVar[tuple[tuple[str, str], ...]] = (
        ("ProgrammingError", r"^(nan|inf|-inf) can not be used with MySQL"),
        ("TypeError", r"^'str' object is not callable$"))
    distributions: ClassVar[tuple[str, ...]] = ("aiomysql", "pymysql")
    profile_modules: ClassVar[tuple[str, ...]] = ("aiomysql", "pymysql")
    sa_driver: ClassVar[str | None] = "aiomysql"
    ci_sample_layers: ClassVar[bool] = True  # a newer rung: its sa-core+/sa-orm+ pairs are sampled in CI
    bench_layers_by_default: ClassVar[bool] = False  # its SQLAlchemy rows in the bench when named

    def sa_connect_args(self, info: ConnectInfo) -> dict[str, Any]:
        return {"connect_timeout": CONNECT_TIMEOUT_S}  # no read timeout in aiomysql

    def connect_kwargs(self, info: ConnectInfo) -> dict[str, Any]:
        kwargs = connect_kwargs(info)
        for key in ("read_timeout", "write_timeout"):  # aiomysql has neither (see the module docstring)
            kwargs.pop(key, None)
        if "database" in kwargs:
            kwargs["db"] = kwargs.pop("database")
        # aiomysql encodes the password as Latin-1 (a str only): the UTF-8 bytes spelled as Latin-1 characters
        # reach the server as the UTF-8 it hashes, and no character can fail to encode (and be quoted)
        kwargs["password"] = str(kwargs.get("password") or "").encode("utf-8").decode("latin-1")
        return kwargs
