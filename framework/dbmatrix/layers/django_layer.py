"""The Django ORM as a layer: ``django+<dbapi>`` over the DBAPI drivers Django's own backends use, Django run
standalone (``django_settings.configure_standalone``: no project, no app, ``USE_TZ=True``, ``TIME_ZONE='UTC'``).

Django's backends pick their driver by import: psycopg 3 for PostgreSQL (psycopg2 only where psycopg is not
installed: ``django/db/backends/postgresql/psycopg_any.py`` decides once per process), mysqlclient for MySQL/MariaDB,
the standard library's sqlite3. A session's ``DATABASES`` entry comes from ``django_settings.databases_entry`` for the
target's URL. The DBAPI adapter underneath opens the connection, with Django's connect parameters for that entry
(``get_connection_params``: psycopg's ``cursor_factory``/``context``/``prepare_threshold=None``, mysqlclient's
``conv`` and ``CLIENT.FOUND_ROWS``, sqlite3's ``detect_types``) added to its own (timeouts, ``application_name``);
Django's ``DatabaseWrapper`` then adopts it (``get_new_connection``) and runs its own connection setup (time zone,
MySQL's ``SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED``, SQLite's functions and pragmas) as on a
connection it opened. Every statement of the session goes through Django's cursor (``connection.cursor()``), and
Django's exceptions (``django.db.utils.*``, which wrap the DBAPI's as ``__cause__``) come out as the DBAPI adapter's
codes. Streaming, notifications, cancelling and ``begin_native`` stay the DBAPI adapter's, on the same connection.

Django's connection handler is per thread: the wrapper is made on the session's owner thread and is that thread's
``connections['default']``, so models and ``transaction.atomic()`` reach it without ``using=``. Thread sharing is
allowed on it (Django's ``inc_thread_sharing``) because the session protocol already serialises every use (a hot
path and the bench run on the calling thread while nothing is pending).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from ..drivers import params as paramstyles
from ..drivers.base import ConnectInfo, DriverAdapter, Layer, Session, cursor_result
from .sqlite_adapters import SQLITE_ADAPTERS

_SITS_ON = ("psycopg", "psycopg2", "mysqlclient", "sqlite3")
# Django's connect parameters that name the server, the database and the user: the DBAPI adapter has them from the
# target's URL (sqlite3's ``check_same_thread`` too: the adapter sets it itself)
_IDENTITY = frozenset({"dbname", "database", "user", "password", "host", "port", "unix_socket", "check_same_thread"})


@functools.cache
def _psycopg3_installed() -> bool:
    """Whether Django's PostgreSQL backend will use psycopg 3: it does whenever psycopg imports, psycopg2 only where
    it does not (``django/db/backends/postgresql/psycopg_any.py`` decides once per process). So ``django+psycopg2``
    exists only in an environment without psycopg."""
    return importlib.util.find_spec("psycopg") is not None


def _import_backend(kind: str) -> Any:
    """Django's backend module for ``kind``; its sqlite3 backend through the guard (on import it registers
    process-wide sqlite3 adapters and converters, held to Django's own cursors here)."""
    from ..django_settings import ENGINES, configure_standalone

    configure_standalone()
    if kind == "sqlite":
        SQLITE_ADAPTERS.import_keeping_apart("django.db.backends.sqlite3.base")
    from django.db.utils import load_backend

    return load_backend(ENGINES[kind])


def settings_dict(info: ConnectInfo, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The complete ``DATABASES`` entry (Django's defaults filled in) for ``info``'s scratch database, with
    ``overrides`` (``OPTIONS`` merged, other keys replaced)."""
    from django.db import connections

    from ..django_settings import databases_entry

    entry = databases_entry(info.url)
    for key, value in (overrides or {}).items():
        entry[key] = {**entry.get(key, {}), **value} if key == "OPTIONS" else value
    return connections.configure_settings({"default": entry})["default"]


def _after_connect_postgresql(wrapper: Any, conn: Any) -> None:
    """What Django 5.2's PostgreSQL ``get_new_connection`` does after connecting: the isolation level from OPTIONS
    (none: the server's default, as on a fresh connection), psycopg2's raw jsonb loader."""
    from django.db.backends.postgresql.psycopg_any import IsolationLevel, is_psycopg3

    level = wrapper.settings_dict["OPTIONS"].get("isolation_level")
    wrapper.isolation_level = IsolationLevel.READ_COMMITTED if level is None else IsolationLevel(level)
    conn.isolation_level = None if level is None else wrapper.isolation_level
    if not is_psycopg3:
        import psycopg2.extras

        psycopg2.extras.register_default_jsonb(conn_or_curs=conn, loads=lambda x: x)


def _after_connect_mysql(wrapper: Any, conn: Any) -> None:
    """Django 5.2's MySQL ``get_new_connection``: mysqlclient's no-op bytes encoder removed."""
    if conn.encoders.get(bytes) is bytes:
        conn.encoders.pop(bytes)


def _after_connect_sqlite(wrapper: Any, conn: Any) -> None:
    """Django 5.2's SQLite ``get_new_connection``: its SQL functions, foreign keys on, OPTIONS init_command."""
    from django.db.backends.sqlite3._functions import register as register_functions

    register_functions(conn)
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA legacy_alter_table = OFF")
    for command in wrapper.init_commands:
        if command := command.strip():
            conn.execute(command)


_AFTER_CONNECT = {"postgresql": _after_connect_postgresql, "mysql": _after_connect_mysql,
                  "sqlite": _after_connect_sqlite}


class _CountingCursor:
    """A DBAPI cursor under Django's ``CursorWrapper`` that reports each ``execute``/``executemany`` (what the driver
    sent: one statement each) to ``count``."""

    def __init__(self, cursor: Any, count: Callable[[], None]):
        self._cursor, self._count = cursor, count

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        self._count()
        return self._cursor.execute(*args, **kwargs)

    def executemany(self, *args: Any, **kwargs: Any) -> Any:
        self._count()
        return self._cursor.executemany(*args, **kwargs)

    def __iter__(self) -> Any:
        return iter(self._cursor)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


def _held_sqlite_cursor(base: type) -> type:
    """Django's ``SQLiteCursorWrapper`` with Django's sqlite3 adapters and converters in effect during each call that
    binds parameters or converts rows (``SQLITE_ADAPTERS``), and only then."""

    def held(name: str) -> Callable[..., Any]:
        method = getattr(base, name)

        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            SQLITE_ADAPTERS.hold()
            try:
                return method(self, *args, **kwargs)
            finally:
                SQLITE_ADAPTERS.release()

        return call

    names = ("execute", "executemany", "fetchone", "fetchmany", "fetchall", "__next__")
    return type("HeldSQLiteCursor", (base,), {name: held(name) for name in names})


def django_wrapper(kind: str, entry: dict[str, Any], conn: Any) -> Any:
    """A Django ``DatabaseWrapper`` (alias ``default``) for ``entry`` that adopts ``conn`` whenever it connects; make
    it on the thread that will use it, then ``connect()`` it. ``bind()`` makes it a thread's ``connections['default']``,
    ``reconnect(**changes)`` applies changed settings as Django does."""
    backend = _import_backend(kind)
    after_connect = _AFTER_CONNECT[kind]
    held = _held_sqlite_cursor(backend.SQLiteCursorWrapper) if kind == "sqlite" else None

    class Adopting(backend.DatabaseWrapper):  # type: ignore[misc, name-defined]
        count: Callable[[], None] | None = None  # set while a kit counts statements

        def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
            after_connect(self, conn)
            return conn

        def _close(self) -> None:
            pass  # the DBAPI session owns the connection and closes it; a reconnect adopts it again

        def create_cursor(self, name: Any = None) -> Any:
            if held is not None:
                cursor = self.connection.cursor(factory=held)
            else:
                cursor = super().create_cursor(name)
            return cursor if self.count is None else _CountingCursor(cursor, self.count)

        def bind(self) -> None:
            """Make this wrapper the calling thread's ``connections['default']`` (Django's handler is per thread)."""
            from django.db import connections

            connections["default"] = self

        def reconnect(self, **changes: Any) -> None:
            """Change the DATABASES entry (``OPTIONS`` merged) and connect again, as Django applies its settings: per
            connection, when it connects (here: on the same adopted DBAPI connection)."""
            for key, value in changes.items():
                self.settings_dict[key] = {**self.settings_dict[key], **value} if key == "OPTIONS" else value
            if self.in_atomic_block:
                raise RuntimeError("reconnect inside transaction.atomic()")
            self.close()
            self.connect()

    wrapper = Adopting(entry, "default")
    wrapper.inc_thread_sharing()
    return wrapper


class DjangoLayer(Layer):
    name = "django"
    exceptions: ClassVar[tuple[str, ...]] = ("django.db.utils.Error",)
    # Django refuses an aware datetime on MySQL and SQLite when USE_TZ is False (a ValueError of its own)
    refusals: ClassVar[tuple[tuple[str, str], ...]] = (("ValueError", "does not support timezone-aware datetimes"),)
    cases_by_default: ClassVar[tuple[str, ...]] = ("orm.*",)
    layer_distributions: ClassVar[tuple[str, ...]] = ("django",)
    bench_module: ClassVar[str] = "dbmatrix.layers.django_bench"
    # where the time goes: the query compiler, expressions and lookups build SQL; the rest of django.db.models
    # (model instances, iterables, field conversions, querysets' cloning) is row -> object work, approximately;
    # the backend wrappers and asgiref (Django's per-thread connection handler) are the layer's both-ways glue
    profile_parts: ClassVar[tuple[tuple[str, str], ...]] = (
        ("django/db/models/sql", "django-sql"), ("django/db/models/expressions", "django-sql"),
        ("django/db/models/lookups", "django-sql"), ("django/db/models", "django-objects"),
        ("django", "django"), ("asgiref", "django"))
    profile_stages: ClassVar[dict[str, str]] = {"django-sql": "sql", "django-objects": "objects"}
    default_dbapis: ClassVar[frozenset[str]] = frozenset({"psycopg", "mysqlclient", "sqlite3"})  # Django 5.2's

    def __init__(self, under: DriverAdapter):
        super().__init__(under)
        self.modules = ("django", *under.modules)  # type: ignore[misc]

    @classmethod
    def can_sit_on(cls, dbapi: DriverAdapter) -> bool:
        if dbapi.id == "psycopg2":
            return not _psycopg3_installed()  # Django's PostgreSQL backend takes psycopg 3 whenever it can
        return dbapi.id in _SITS_ON

    def open(self, info: ConnectInfo) -> Session:
        backend = _import_backend(info.kind)
        # DATABASES keys for this session only (cell.connect(options={"django": {"OPTIONS": {...}}}))
        entry = settings_dict(info, info.options.get("django"))
        # Django's own connect parameters for the entry, minus what names the server and the user; the caller's
        # options (cell.connect(options=...)) win
        params = backend.DatabaseWrapper(dict(entry)).get_connection_params()
        driver_options = {k: v for k, v in params.items() if k not in _IDENTITY}
        driver_options.update({k: v for k, v in info.options.items() if k != "django"})
        session = self.under.open(dataclasses.replace(info, options=driver_options))
        session.adapter = self  # errors and cancels go through the layer, which asks the adapter under it

        def adopt() -> Any:
            wrapper = django_wrapper(info.kind, entry, session.driver_connection())
            wrapper.connect()
            wrapper.bind()
            return wrapper

        try:
            wrapper = session._do(adopt)
        except BaseException:
            session.close()
            raise
        session.django = wrapper  # type: ignore[attr-defined]

        def execute(sql: str, params: Mapping[str, Any] | None, types: Mapping[str, Any] | None) -> Any:
            query, args = paramstyles.translate(sql, params, paramstyles.PYFORMAT)  # Django's, on every backend
            with wrapper.cursor() as cursor:
                cursor.execute(query, args)
                return cursor_result(cursor)

        def hot_path(sql: str, params: Mapping[str, Any] | None = None) -> Callable[[], Any]:
            query, args = paramstyles.translate(sql, params, paramstyles.PYFORMAT)

            def call() -> Any:
                with wrapper.cursor() as cursor:
                    cursor.execute(query, args)
                    return cursor.fetchall()

            return call

        session._execute = execute  # type: ignore[method-assign]
        session.hot_path = hot_path  # type: ignore[method-assign]
        return session

    def wrapped_cause(self, exc: BaseException) -> BaseException | None:
        cause = exc.__cause__  # Django re-raises the DBAPI error as its own, "from" it
        return cause if type(exc).__module__.startswith("django.") and isinstance(cause, BaseException) else None

    def orm_kit(self, session: Session, prefix: str) -> Any:
        """The ``orm.*`` cases' models and operations, declared the Django way (see ``layers/django_kit.py``)."""
        from .django_kit import DjangoKit

        return DjangoKit(session, prefix)
