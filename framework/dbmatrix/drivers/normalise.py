"""Error normalisation: a driver's exception as a ``DriverError`` (SQLSTATE or errno, class, scrubbed message).

Which exceptions are the driver's own is declared by each adapter (``exceptions``, ``refusals``, read through
``error_sources()``); anything else raised while running a step is a bug of ours and must end the cell as ``error``.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import DriverError
from ..redaction import scrub

if TYPE_CHECKING:
    from .protocol import DriverAdapter


def default_normalise(exc: BaseException) -> DriverError | None:
    """Best-effort SQLSTATE/errno extraction that works for most DBAPI drivers."""
    if isinstance(exc, DriverError):
        return exc
    orig = getattr(exc, "orig", None)  # SQLAlchemy wraps the DBAPI error
    if orig is not None and isinstance(orig, BaseException) and orig is not exc:
        inner = default_normalise(orig)
        if inner is not None:
            return inner
    code = None
    for attr in ("sqlstate", "pgcode"):  # asyncpg / psycopg / psycopg2
        code = code or getattr(exc, attr, None)
    diag = getattr(exc, "diag", None)
    if code is None and diag is not None:
        code = getattr(diag, "sqlstate", None)
    if code is None and getattr(exc, "sqlite_errorname", None):
        code = exc.sqlite_errorname  # type: ignore[attr-defined]
    if code is None and exc.args and isinstance(exc.args[0], int):  # MySQL drivers: (errno, message)
        code = str(exc.args[0])
    if code is None and not _looks_like_db_error(exc):
        return None
    return DriverError(str(code) if code is not None else None, type(exc).__name__, message(exc))


def _looks_like_db_error(exc: BaseException) -> bool:
    names = {c.__name__ for c in type(exc).__mro__}
    return bool(names & {"Error", "DatabaseError", "InterfaceError", "PostgresError", "DBAPIError"})


def message(exc: BaseException) -> str:
    """The first line of what ``exc`` says (a MySQL driver's ``(errno, message)``: the message), scrubbed."""
    if exc.args and isinstance(exc.args[0], int) and len(exc.args) > 1:
        text = str(exc.args[1])
    else:
        text = str(getattr(exc, "message", None) or exc)
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return scrub(first)


def first_line(exc: BaseException) -> str:
    """``str(exc)``'s first line, scrubbed (the class name when it says nothing)."""
    text = str(exc).strip()
    return scrub(text.splitlines()[0] if text else type(exc).__name__)


def socket_error(exc: BaseException) -> DriverError:
    """A refused, reset or timed-out connection (an OSError): no database code, the OS's words."""
    return DriverError(None, type(exc).__name__, first_line(exc))


def driver_finding(adapter: DriverAdapter, exc: BaseException, *, refusals: bool = True) -> DriverError | None:
    """``exc`` as a DriverError when it is the driver's own (a DBAPI error, a lost connection, a declared
    client-side refusal), else None: a bug of ours, which must end the cell as ``error``."""
    if isinstance(exc, DriverError):
        return exc
    inner = getattr(exc, "orig", None)  # SQLAlchemy's StatementError wraps what its DBAPI or a type refused
    for bases, listed in adapter.error_sources():
        for candidate in (exc, inner) if refusals else ():
            if isinstance(candidate, BaseException) and any(
                    type(candidate).__name__ == cls and re.search(pattern, str(candidate)) for cls, pattern in listed):
                return DriverError(None, type(candidate).__name__, message(candidate))
        if any(isinstance(exc, cls) for cls in _classes(bases)):
            return adapter.normalise_error(exc) or DriverError(None, type(exc).__name__, message(exc))
    if isinstance(exc, OSError):  # the connection itself failed (refused, reset, timed out): infrastructure
        return adapter.normalise_error(exc) or DriverError(None, type(exc).__name__, message(exc))
    return None


def _classes(dotted: Sequence[str]) -> list[type]:
    out = []
    for name in dotted:
        module, _, attr = name.rpartition(".")
        # a module nobody imported raised nothing: looking it up (not importing it) keeps an unused library's
        # import side effects (Peewee's process-wide sqlite3 adapters) out of the run
        obj = sys.modules.get(module)
        try:
            for part in attr.split("."):
                obj = getattr(obj, part)
        except AttributeError:
            continue
        if obj is None:
            continue
        out.append(obj)
    return out
