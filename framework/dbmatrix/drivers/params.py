"""One placeholder style for every case, translated per driver.

Cases write SQL with SQLAlchemy-style named parameters, ``:name`` (``::type`` casts are not parameters).
Adapters translate to their driver's paramstyle with ``translate``. Text inside single-quoted literals,
double-quoted identifiers and ``--`` comments is left alone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# A token is either something to copy verbatim (literal, identifier, comment, '::') or a :name parameter.
_TOKEN = re.compile(
    r"""(?P<skip>'(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|::)"""
    r"""|(?<![:\w\\]):(?P<name>[A-Za-z_]\w*)"""
    r"""|(?P<pct>%)"""
)

NAMED = "named"  # :name (sqlite3, SQLAlchemy text())
PYFORMAT = "pyformat"  # %(name)s (psycopg, psycopg2, pymysql, mysqlclient, asyncmy)
# %(name)s, with every other '%' sent as it is: mysql-connector substitutes only its placeholders ('%%' stays '%%')
PYFORMAT_BARE = "pyformat_bare"
FORMAT = "format"  # %s positional (pg8000)
NUMERIC_DOLLAR = "numeric_dollar"  # $1 (asyncpg)
QMARK = "qmark"  # ? positional


def parameter_names(sql: str) -> list[str]:
    """Names of the ``:name`` parameters in order of appearance (repeats included)."""
    return [m["name"] for m in _TOKEN.finditer(sql) if m["name"]]


def translate(sql: str, params: Mapping[str, Any] | None, style: str) -> tuple[str, Any]:
    """Rewrite ``sql`` and ``params`` for a driver's paramstyle.

    Returns ``(sql, args)`` where ``args`` is a dict for named styles, a list for positional ones, or
    ``None`` when ``params`` is ``None`` (then '%' is left alone, as drivers only interpolate with args).
    """
    if params is None:
        return sql, None
    if style == NAMED:
        missing = [n for n in parameter_names(sql) if n not in params]
        if missing:
            raise KeyError(f"SQL parameter :{missing[0]} has no value")
        return sql, dict(params)
    order: list[str] = []

    def repl(m: re.Match[str]) -> str:
        if m["skip"]:
            # pyformat drivers interpolate '%' everywhere, quoted text included
            return m["skip"].replace("%", "%%") if style in (PYFORMAT, FORMAT) else m["skip"]
        if m["pct"]:
            return "%%" if style in (PYFORMAT, FORMAT) else "%"
        name = m["name"]
        if name not in params:
            raise KeyError(f"SQL parameter :{name} has no value")
        if style in (PYFORMAT, PYFORMAT_BARE):
            return f"%({name})s"
        if style == NUMERIC_DOLLAR:
            if name not in order:
                order.append(name)
            return f"${order.index(name) + 1}"
        if style in (QMARK, FORMAT):
            order.append(name)
            return "?" if style == QMARK else "%s"
        raise ValueError(f"unknown paramstyle {style!r}")

    out = _TOKEN.sub(repl, sql)
    if style in (PYFORMAT, PYFORMAT_BARE):
        return out, dict(params)
    return out, [params[n] for n in order]
