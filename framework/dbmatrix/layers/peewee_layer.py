"""Peewee 4 as a layer: ``peewee+<dbapi>`` over the DBAPI drivers Peewee itself uses.

Peewee picks its driver by import: psycopg2 for PostgreSQL (psycopg 3 with ``prefer_psycopg3=True``), PyMySQL for
MySQL/MariaDB (MySQLdb only when PyMySQL is missing), the standard library's sqlite3. So the layer sits on exactly
those four. The DBAPI adapter underneath opens the connection (its timeouts, its ``application_name``) and Peewee's
``Database`` adopts it through its own connect hook (``_connect``), then runs its own connection setup
(server version, SQLite functions and pragmas) as it would on a connection it opened; from then on every statement
of the session goes through ``Database.execute_sql``, Peewee's one path to the cursor, and Peewee's exceptions
(which wrap the DBAPI's) are unwrapped to the DBAPI adapter's mapping. Streaming, notifications, cancelling and
``begin_native`` stay the DBAPI adapter's, on the same connection: Peewee has no API of its own for them on every
engine (its server-side cursors are PostgreSQL-only, in playhouse). On PostgreSQL the adopting database is
``playhouse.postgres_ext.PostgresqlExtDatabase``, the one Peewee's ``ArrayField`` and ``ServerSide`` need.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from ..drivers.base import ConnectInfo, DriverAdapter, Layer, Session, cursor_result, translate
from .sqlite_adapters import SQLITE_ADAPTERS

# DBAPI adapter id -> what Peewee's Database needs to use that driver
_SITS_ON = {"psycopg2": {}, "psycopg": {"prefer_psycopg3": True}, "pymysql": {}, "sqlite3": {}}


def peewee_database(kind: str, conn: Any, info: ConnectInfo, **options: Any) -> Any:
    """A Peewee ``Database`` of the right class for ``kind`` that adopts ``conn`` (a DBAPI connection) when it
    connects. ``thread_safe=False``: the session's owner thread is the only one that ever uses it."""
    peewee = SQLITE_ADAPTERS.import_keeping_apart("peewee")  # its sqlite3 adapters: only in its own sessions

    if kind == "postgresql":
        # the extension database Peewee's docs name for ArrayField and ServerSide (server-side cursors); without
        # server_side_cursors=True it runs every statement as PostgresqlDatabase does
        from playhouse.postgres_ext import PostgresqlExtDatabase

        base = PostgresqlExtDatabase
    else:
        base = {"mysql": peewee.MySQLDatabase, "sqlite": peewee.SqliteDatabase}[kind]

    class Adopting(base):  # type: ignore[misc, valid-type]
        def _connect(self) -> Any:
            if kind == "sqlite":
                self._add_conn_hooks(conn)  # what SqliteDatabase._connect does after sqlite3.connect
            return conn

        def _close(self, _conn: Any) -> None:
            pass  # the DBAPI session owns the connection and closes it

        def execute_sql(self, sql: str, params: Any = None, *args: Any, **kwargs: Any) -> Any:
            if kind != "sqlite":
                return super().execute_sql(sql, params, *args, **kwargs)
            SQLITE_ADAPTERS.hold()  # Peewee's one path to the cursor: its adapters bind this statement only
            try:
                return super().execute_sql(sql, params, *args, **kwargs)
            finally:
                SQLITE_ADAPTERS.release()

    return Adopting(info.url.database, thread_safe=False, autoconnect=False, **options)


def _peewee_cause(exc: BaseException) -> BaseException | None:
    """The DBAPI exception a Peewee exception wraps (Peewee re-raises ``NewType(dbapi_exc, *args)``)."""
    inner = exc.args[0] if exc.args else None
    return inner if isinstance(inner, BaseException) else exc.__context__


class PeeweeLayer(Layer):
    name = "peewee"
    exceptions: ClassVar[tuple[str, ...]] = ("peewee.PeeweeException",)
    cases_by_default: ClassVar[tuple[str, ...]] = ("orm.*",)
    layer_distributions: ClassVar[tuple[str, ...]] = ("peewee",)
    bench_module: ClassVar[str] = "dbmatrix.layers.peewee_bench"
    profile_parts: ClassVar[tuple[tuple[str, str], ...]] = (("peewee", "peewee"), ("playhouse", "peewee"))
    # its SQL building and its row -> model code are one module: the result wrappers, model construction and field
    # conversion are charged to "peewee-objects" by function; the rest of peewee.py builds and runs the query
    profile_objects: ClassVar[tuple[tuple[str, str], ...]] = (
        ("peewee.CursorWrapper", "peewee-objects"), ("peewee.FieldAccessor", "peewee-objects"),
        ("peewee.Model.__init__", "peewee-objects"), ("peewee.Field.python_value", "peewee-objects"))
    profile_stages: ClassVar[dict[str, str]] = {"peewee": "sql", "peewee-objects": "objects"}
    default_dbapis: ClassVar[frozenset[str]] = frozenset({"psycopg2", "pymysql", "sqlite3"})

    def __init__(self, under: DriverAdapter):
        super().__init__(under)
        self.modules = ("peewee", *under.modules)  # type: ignore[misc]

    @classmethod
    def can_sit_on(cls, dbapi: DriverAdapter) -> bool:
        return dbapi.id in _SITS_ON

    def unavailable_reason(self) -> str | None:
        try:  # the first import of peewee goes through the guard wherever it happens (here: the install check)
            SQLITE_ADAPTERS.import_keeping_apart("peewee")
        except ImportError as exc:
            return f"driver {self.id} not installed (peewee: {exc})"
        return super().unavailable_reason()

    def open(self, info: ConnectInfo) -> Session:
        session = self.under.open(info)
        session.adapter = self  # errors and cancels go through the layer, which asks the adapter under it
        try:
            db = peewee_database(info.kind, session.driver_connection(), info, **_SITS_ON[self.under.id])
            session._do(db.connect)
        except BaseException:
            session.close()
            raise
        session.peewee = db  # type: ignore[attr-defined]

        def execute(sql: str, params: Mapping[str, Any] | None, types: Mapping[str, Any] | None) -> Any:
            query, args = translate(self, sql, params)
            cursor = db.execute_sql(query, args)
            try:
                return cursor_result(cursor)
            finally:
                cursor.close()

        def hot_path(sql: str, params: Mapping[str, Any] | None = None) -> Callable[[], Any]:
            query, args = translate(self, sql, params)
            return lambda: db.execute_sql(query, args).fetchall()

        session._execute = execute  # type: ignore[method-assign]
        session.hot_path = hot_path  # type: ignore[method-assign]
        return session

    def wrapped_cause(self, exc: BaseException) -> BaseException | None:
        return _peewee_cause(exc)

    def orm_kit(self, session: Session, prefix: str) -> Any:
        """The ``orm.*`` cases' models and operations, declared the Peewee way (see ``layers/peewee_kit.py``)."""
        from .peewee_kit import PeeweeKit

        return PeeweeKit(session, prefix)
