"""The SQL side of the SQLAlchemy layers: a case's ``:name`` SQL as a ``text()`` statement, and its result as a
``Result``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import bindparam, text

from . import params
from .protocol import Result

# text() differs from params.py in two places, so we adapt the SQL the way SQLAlchemy documents:
# it treats ``:word`` as a parameter even inside quoted literals and comments (e.g. '{"a":true}') -> escape as
# ``\:word``; and it does not see ``:name::int`` as a parameter (its regex refuses a ':' after the name) -> a space.
_TEXT_TOKEN = re.compile(
    r"""(?P<quoted>'(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*)"""
    r"""|(?<![:\w\\])(?P<cast_param>:[A-Za-z_]\w*)(?=::)"""
)
_SA_BIND = re.compile(r"(?<![:\w\x5c]):(\w+)(?![:\w])")


def text_sql(sql: str) -> str:
    """``sql`` (``:name`` parameters, params.py rules) rewritten so that ``text()`` reads the same parameters."""

    def repl(m: re.Match[str]) -> str:
        if m["quoted"]:
            return _SA_BIND.sub(r"\\:\1", m["quoted"])
        return m["cast_param"] + " "

    return _TEXT_TOKEN.sub(repl, sql)


def statement(sql: str, types: Mapping[str, Any] | None) -> Any:
    """``text(sql)`` typed by ``types``: parameters get ``bindparam(type_=...)``, result columns ``.columns()``."""
    stmt = text(text_sql(sql)).execution_options(preserve_rowcount=True)  # rowcount as the DBAPI said
    if not types:
        return stmt
    names = set(params.parameter_names(sql))
    binds = [bindparam(name, type_=type_) for name, type_ in types.items() if name in names]
    if binds:
        stmt = stmt.bindparams(*binds)
    return stmt.columns(**types)


def result_of(result: Any) -> Result:
    """A Result from a SQLAlchemy (Cursor)Result, rows as plain tuples of what SQLAlchemy returned."""
    if not result.returns_rows:
        return Result([], [], result.rowcount)
    columns = list(result.keys())
    rows = [tuple(row) for row in result.all()]
    # preserve_rowcount captures the count at execute time; some DBAPIs (sqlite3 with RETURNING) only
    # know it once the rows are fetched, so read the DBAPI cursor again afterwards.
    after = getattr(getattr(getattr(result, "context", None), "cursor", None), "rowcount", None)
    return Result(columns, rows, after if isinstance(after, int) and after >= 0 else result.rowcount, result.rowcount)


def streaming(sql: str, batch: int) -> Any:
    """``text(sql)`` read with a server-side cursor where the dialect has one, ``batch`` rows at a time."""
    return statement(sql, None).execution_options(stream_results=True, yield_per=batch)
