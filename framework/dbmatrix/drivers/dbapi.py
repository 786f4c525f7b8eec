"""Helpers for DBAPI (PEP 249) drivers, and ``DBAPISession``: the session every blocking DBAPI driver shares.

A blocking driver's adapter opens its connection (autocommit on: transactions are ours to open) and hands it to a
``DBAPISession``: a fresh cursor per statement, values exactly as the driver built them. Subclasses add what their
driver does its own way (``begin_native``, ``_stream``) and ``_bind`` where the driver wants something else than
``None`` for "no parameters".
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from . import params as paramstyles
from .protocol import ConnectInfo, DriverAdapter, Result
from .session import Session


def cursor_result(cursor: Any, rows: Sequence[Any] | None = None) -> Result:
    """A Result from a DBAPI cursor that has just executed, values exactly as the driver built them.

    Rows are fetched here unless given (async drivers fetch them with ``await`` first).
    """
    at_execute = cursor.rowcount if rows is None else None  # sqlite3 counts RETURNING rows only as they are fetched
    if cursor.description is None:
        return Result([], [], cursor.rowcount, at_execute)
    if rows is None:
        rows = cursor.fetchall()
    return Result([d[0] for d in cursor.description], [tuple(r) for r in rows], cursor.rowcount, at_execute)


def fetch_batches(cursor: Any, batch: int) -> Iterator[list[tuple[Any, ...]]]:
    """Yield ``fetchmany(batch)`` from an executed DBAPI cursor until it is exhausted; close it in any case."""
    try:
        while rows := cursor.fetchmany(batch):
            yield rows
    finally:
        cursor.close()


def translate(adapter: DriverAdapter, sql: str, params: Mapping[str, Any] | None) -> tuple[str, Any]:
    """Translate ``:name`` SQL for ``adapter``'s paramstyle."""
    return paramstyles.translate(sql, params, adapter.paramstyle)


class DBAPISession(Session):
    """One autocommit connection (``conn``) of a blocking DBAPI driver; a fresh cursor per statement."""

    def __init__(self, adapter: DriverAdapter, info: ConnectInfo, conn: Any = None):
        super().__init__(adapter, info)
        self.conn = conn

    @staticmethod
    def _bind(args: Any) -> Any:
        """The driver's arguments for ``translate``'s ``args`` (``None``: no parameters, so no '%' interpolation)."""
        return args

    def _execute(self, sql: str, params: Mapping[str, Any] | None, types: Mapping[str, Any] | None) -> Result:
        query, args = translate(self.adapter, sql, params)
        cursor = self.conn.cursor()
        try:
            cursor.execute(query, self._bind(args))
            return cursor_result(cursor)
        finally:
            cursor.close()

    def _close(self) -> None:
        self.conn.close()

    def hot_path(self, sql: str, params: Mapping[str, Any] | None = None) -> Callable[[], Any]:
        query, args = translate(self.adapter, sql, params)
        cursor, bound = self.conn.cursor(), self._bind(args)

        def call() -> Any:
            cursor.execute(query, bound)
            return cursor.fetchall() if cursor.description is not None else None

        return call
