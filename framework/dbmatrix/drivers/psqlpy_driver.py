"""psqlpy: an asyncio PostgreSQL driver written in Rust (over tokio-postgres), ``$n`` parameters.

What sets it apart, and what its cells record (psqlpy 0.13, checked against its stubs and a live server):

* Every statement is prepared by default (``execute(..., prepared=True)``): tokio-postgres names it ``s<n>``,
  counting per connection; one with parameters is kept (cached per connection, in ``pg_prepared_statements``),
  one without is closed after it ran. Behind PgBouncer in transaction mode the
  name collides on a server connection another client already used (42P05) or the Bind lands where the name is
  unknown (26000). The fix is psqlpy's per-call ``prepared=False``; this adapter takes it as the connect option
  ``prepared`` (``pooler_safe_options``), since psqlpy has no connection-wide setting for it.
* Parameters are converted to the type the server inferred at Parse, in the client: ``SELECT $1`` with an int is
  ``TypeError: 'int' object is not an instance of 'str'`` (the server said ``text``), raised outside psqlpy's
  exception hierarchy (``refusals``); where the context gives no type at all the server refuses (42P18).
* Its exceptions carry no SQLSTATE: only a class per operation (``ConnectionExecuteError``,
  ``TransactionExecuteError``, ...) and the text ``db error: ERROR: <message>``. Errors are therefore reported by
  class with ``code`` None, never guessed from the message.
* A ``QueryResult`` has rows only: no command tag (so no rowcount: ``-1``) and no column description, so the
  columns of an empty result are unknown (``[]``); with rows they come from its ``Record.keys()``, which refuses a
  duplicate column name (then ``[]`` as well).
* No cancel request of its own (``pg_cancel_backend`` from an admin connection); LISTEN needs a
  ``ConnectionPool.listener()`` on a connection of its own, so a session (one ``Connection``) has no notifications.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any, ClassVar

from ..errors import DriverError
from ..redaction import register_secret, scrub
from . import params as paramstyles
from .async_session import AsyncSession
from .cancel import cancel_backend
from .dbapi import translate
from .normalise import first_line, socket_error
from .protocol import CONNECT_TIMEOUT_S, ConnectInfo, DriverAdapter, Result, with_options
from .session import Session

_URL_OPTIONS = {"host", "port", "options"}  # URL query entries psqlpy.connect understands here
_NOISE = ("Cannot execute query, error - ", "db error: ", "ERROR: ")  # psqlpy's prefixes before the server's words


def connect_kwargs(info: ConnectInfo) -> tuple[dict[str, Any], bool]:
    """``psqlpy.connect`` keywords from the URL, and whether statements are prepared (the ``prepared`` option)."""
    url = info.url
    unknown = set(url.query) - _URL_OPTIONS
    if unknown:  # refusing beats silently dropping an option the user relies on
        raise DriverError(None, "UnsupportedURLOption",
                          f"psqlpy adapter does not handle URL option(s) {sorted(unknown)}")
    register_secret(url.password)
    query = {k: v if isinstance(v, str) else ",".join(v) for k, v in url.query.items()}
    kwargs: dict[str, Any] = {
        "username": url.username or "postgres",
        "password": url.password,
        "host": query.get("host", url.host or "localhost"),
        "port": int(query.get("port") or url.port or 5432),
        "db_name": url.database,
        "options": query.get("options"),
        "application_name": info.application_name or None,
        "connect_timeout_sec": CONNECT_TIMEOUT_S,
    }
    kwargs = with_options({k: v for k, v in kwargs.items() if v is not None}, info)
    return kwargs, bool(kwargs.pop("prepared", True))  # not psqlpy.connect's: an argument of each execute


def result_of(res: Any) -> Result:
    """A Result from a psqlpy ``QueryResult``: its rows, the columns where it can name them, no rowcount."""
    rows = res.result(as_tuple=True)
    columns: list[str] = []
    if rows:
        try:
            columns = list(res.records()[0].keys())
        except Exception:  # noqa: BLE001 - psqlpy refuses to name duplicate columns: the columns stay unknown
            columns = []
    return Result(columns, [tuple(r) for r in rows], -1)


class PsqlpySession(AsyncSession):
    def __init__(self, adapter: DriverAdapter, info: ConnectInfo):
        super().__init__(adapter, info)
        import psqlpy  # optional driver, imported when used

        kwargs, self.prepared = connect_kwargs(info)
        try:
            self.conn = self._call(lambda: self.run(psqlpy.connect(**kwargs)))
        except BaseException:
            self._owner.stop(1.0)  # the loop thread started above would otherwise outlive the failed open
            raise

    async def _aexecute(self, sql: str, params: Mapping[str, Any] | None, types: Mapping[str, Any] | None) -> Result:
        sql, args = translate(self.adapter, sql, params)
        return result_of(await self.conn.execute(sql, args, prepared=self.prepared))

    async def _aclose(self) -> None:
        self.conn.close()  # psqlpy's close is synchronous: it drops the client and its socket

    def begin_native(self, isolation: str) -> str:
        """``conn.transaction(isolation_level=IsolationLevel.X)`` and ``begin()``, ended with that Transaction's
        ``commit``/``rollback``."""
        import psqlpy

        iso = self.checked_level(isolation)
        name = "".join(word.capitalize() for word in iso.split())  # psqlpy's spelling: RepeatableRead
        level = getattr(psqlpy.IsolationLevel, name, None)
        if level is None:
            raise DriverError(None, "Unsupported", f"psqlpy has no IsolationLevel.{name}")
        started: list[Any] = []

        async def begin() -> str:
            tx = self.conn.transaction(isolation_level=level)
            await tx.begin()
            started.append(tx)
            return f"psqlpy conn.transaction(isolation_level=IsolationLevel.{name}).begin()"

        async def end(commit: bool) -> None:
            await (started[0].commit() if commit else started[0].rollback())

        return self._open_native(begin, end)

    def _stream(self, sql: str, params: Mapping[str, Any] | None, batch: int) -> Iterator[list[tuple[Any, ...]]]:
        sql, args = translate(self.adapter, sql, params)
        return self._within_transaction(self._drive(stream_batches(self.conn, sql, args, batch)))

    def _ahot_path(self, sql: str, params: Mapping[str, Any] | None) -> Callable[[], Any]:
        sql, args = translate(self.adapter, sql, params)
        execute, prepared = self.conn.execute, self.prepared

        async def call() -> Any:
            return (await execute(sql, args, prepared=prepared)).result(as_tuple=True)

        return call


async def stream_batches(conn: Any, sql: str, args: Any, batch: int) -> AsyncIterator[list[tuple[Any, ...]]]:
    """A psqlpy ``Cursor`` (DECLARE ... CURSOR, FETCH ``batch``): ``batch`` rows per ``fetchmany``."""
    cursor = conn.cursor(sql, args)
    await cursor.start()
    try:
        while rows := (await cursor.fetchmany(batch)).result(as_tuple=True):
            yield [tuple(r) for r in rows]
    finally:
        cursor.close()


class PsqlpyAdapter(DriverAdapter):
    id: ClassVar[str] = "psqlpy"
    kinds: ClassVar[frozenset[str]] = frozenset({"postgresql"})  # tokio-postgres; not tried on CockroachDB here
    is_async: ClassVar[bool] = True
    paramstyle: ClassVar[str] = paramstyles.NUMERIC_DOLLAR
    modules: ClassVar[tuple[str, ...]] = ("psqlpy",)
    exceptions: ClassVar[tuple[str, ...]] = ("psqlpy.exceptions.Error",)
    # its conversion of a Python value to the parameter type the server inferred fails outside its hierarchy
    refusals: ClassVar[tuple[tuple[str, str], ...]] = (
        ("TypeError", r"^'\w+' object is not an instance of '\w+'$|^'\w+' object cannot be interpreted as an integer$"),
    )
    # the families that judge a driver. Not the isolation anomalies and schedules: they tell a prevented anomaly
    # by the engine's SQLSTATE (40001, 40P01), which psqlpy does not expose, so its cells there could only say
    # "failed somehow" about the engine every other PostgreSQL driver already judges; nor orm.*/builder.*/routing.*
    # (no ORM, builder or SQLAlchemy dialect sits on psqlpy)
    cases: ClassVar[tuple[str, ...]] = ("types.*", "sql.*", "isolation.effective_level", "pooling.*")
    distributions: ClassVar[tuple[str, ...]] = ("psqlpy",)
    profile_modules: ClassVar[tuple[str, ...]] = ("psqlpy",)
    bench_shape: ClassVar[str] = "psqlpy"
    bench_module: ClassVar[str] = "dbmatrix.drivers.psqlpy_bench"  # its own API: its own operations
    reports_rowcount: ClassVar[bool] = False  # a QueryResult has no command tag
    error_codes: ClassVar[bool] = False  # its exceptions carry no SQLSTATE
    # a newer rung, like pg8000: CI leaves its sql.stream_large_result to the full run (the layers it would sample
    # do not exist: SQLAlchemy has no psqlpy dialect, so sa_driver stays None and no layer sits on it)
    ci_sample_layers: ClassVar[bool] = True
    bench_layers_by_default: ClassVar[bool] = False
    # psqlpy's documented switch off its default of preparing every statement (an argument of each execute)
    pooler_safe_options: ClassVar[dict[str, Any] | None] = {"prepared": False}

    def open(self, info: ConnectInfo) -> PsqlpySession:
        return PsqlpySession(self, info)

    def normalise_error(self, exc: BaseException) -> DriverError | None:
        # psqlpy exposes no SQLSTATE (no attribute, nothing in args): its class and the server's words only
        if isinstance(exc, OSError):
            return socket_error(exc)
        text = first_line(exc)
        for prefix in _NOISE:
            text = text.removeprefix(prefix)
        return DriverError(None, type(exc).__name__, scrub(text))

    def cancel_running(self, session: Session, raw: Any, fut: Any) -> None:
        cancel_backend(session)  # psqlpy has no cancel request of its own
