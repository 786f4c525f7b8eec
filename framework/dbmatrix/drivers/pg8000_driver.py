"""pg8000: a pure-Python PostgreSQL driver (DBAPI ``format`` paramstyle, ``%s``).

What sets it apart, and what its cells record:

* Parameters are sent untyped: every value goes as text with type ``unknown`` (OID 0), and the server infers the
  type from the context. ``SELECT :a`` therefore returns the text of the value ('1', not 1), and where the context
  gives no type (``pg_typeof(:a)``) the server refuses with 42P18 "could not determine data type of parameter".
* No parameters: the simple query protocol; with parameters: an unnamed prepared statement (Parse/Bind/Execute in
  one round trip), never a named one, so it works behind a transaction pooler as it is.
* Its errors carry the server's fields as a dict in ``args[0]`` (``'C'``: SQLSTATE, ``'M'``: message).
* No cancel request of its own: a running statement is cancelled with ``pg_cancel_backend`` from an admin
  connection. No notification wait: notifications are read as they arrive with a statement's response, so waiting
  for one is polling with an empty query. No server-side cursor API (the DBAPI cursor fetches every row).
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from ..errors import DriverError
from ..redaction import register_secret, scrub
from . import params as paramstyles
from .cancel import cancel_backend
from .dbapi import DBAPISession
from .normalise import default_normalise, socket_error
from .protocol import HARNESS_DEADLINE_S, PG_KINDS, ConnectInfo, DriverAdapter, Notifier, with_options
from .session import Session

POLL_S = 0.05  # how often a notification wait asks the server (an empty query) for what has arrived


def connect_kwargs(info: ConnectInfo) -> dict[str, Any]:
    """``pg8000.dbapi.connect`` keywords from the URL (``?unix_sock=`` for a socket path).

    ``timeout`` is pg8000's socket timeout, for every read and not only the connect, so it is the harness deadline:
    the server's statement and lock timeouts end a long statement first.
    """
    url = info.url
    register_secret(url.password)
    kwargs: dict[str, Any] = {
        "user": url.username or "postgres",
        "password": url.password,
        "host": url.host or "localhost",
        "port": url.port or 5432,
        "database": url.database,
        "timeout": HARNESS_DEADLINE_S,
        "application_name": info.application_name or None,
    }
    kwargs.update({k: v for k, v in url.query.items() if isinstance(v, str)})
    return with_options({k: v for k, v in kwargs.items() if v is not None}, info)


class Pg8000Notifier(Notifier):
    """``conn.notifications``, a deque pg8000 fills while it reads a statement's response."""

    def listen(self, raw: Any, channel: str) -> None:
        from pg8000.native import identifier  # pg8000 is optional: imported when a session of it listens

        raw.execute_simple(f"LISTEN {identifier(channel)}")

    def received(self, raw: Any, timeout: float) -> list[tuple[str, str]]:
        deadline = time.monotonic() + timeout
        self._poll(raw)
        while not raw.notifications and time.monotonic() < deadline:
            time.sleep(min(POLL_S, max(0.0, deadline - time.monotonic())))
            self._poll(raw)
        got = [(channel, payload) for _pid, channel, payload in raw.notifications]
        raw.notifications.clear()
        return got

    @staticmethod
    def _poll(raw: Any) -> None:
        raw.execute_simple("")  # an empty query: whatever arrived meanwhile comes with its response


class Pg8000Session(DBAPISession):
    @staticmethod
    def _bind(args: Any) -> Any:
        return args if args is not None else ()  # no arguments: pg8000 takes the simple query protocol


class Pg8000Adapter(DriverAdapter):
    id: ClassVar[str] = "pg8000"
    kinds: ClassVar[frozenset[str]] = PG_KINDS
    paramstyle: ClassVar[str] = paramstyles.FORMAT
    modules: ClassVar[tuple[str, ...]] = ("pg8000",)
    exceptions: ClassVar[tuple[str, ...]] = ("pg8000.exceptions.Error",)
    # pg8000 decodes a notification's channel and payload as ASCII while it reads any statement's response (the
    # listener's wait, or the notifier's own statement when a pooler gave it the listening server connection)
    refusals: ClassVar[tuple[tuple[str, str], ...]] = (("UnicodeDecodeError", r"^'ascii' codec can't decode"),)
    distributions: ClassVar[tuple[str, ...]] = ("pg8000",)
    profile_modules: ClassVar[tuple[str, ...]] = ("pg8000", "scramp")
    sa_driver: ClassVar[str | None] = "pg8000"
    ci_sample_layers: ClassVar[bool] = True  # a newer rung: its sa-core+/sa-orm+ pairs are sampled in CI
    bench_layers_by_default: ClassVar[bool] = False  # its SQLAlchemy rows in the bench when named
    server_cursor: ClassVar[bool] = False  # its cursor reads the whole result at execute()

    def open(self, info: ConnectInfo) -> Session:
        import pg8000.dbapi  # pg8000 is optional: its cells are skipped where it is not installed

        try:
            conn = pg8000.dbapi.connect(**connect_kwargs(info))
        except Exception as exc:
            raise self.normalise_error(exc) or exc from None
        conn.autocommit = True  # transactions are opened by SQL (Session.begin), never implicitly
        return Pg8000Session(self, info, conn)

    def normalise_error(self, exc: BaseException) -> DriverError | None:
        fields = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else None
        if fields is not None:  # the server's ErrorResponse fields
            lines = str(fields.get("M") or type(exc).__name__).strip().splitlines() or [type(exc).__name__]
            return DriverError(fields.get("C"), type(exc).__name__, scrub(lines[0]))
        if isinstance(exc, OSError):
            return socket_error(exc)
        return default_normalise(exc)

    def cancel_running(self, session: Session, raw: Any, fut: Any) -> None:
        cancel_backend(session)

    def read_socket(self, raw: Any) -> int | None:
        return int(raw._usock.fileno())  # pg8000's own socket (its ``timeout`` is the harness deadline: too late)

    def notifier(self) -> Notifier:
        return Pg8000Notifier()

    def startup_options(self, settings: Any) -> dict[str, Any]:
        return {"startup_params": dict(settings)}

    def sa_connect_args(self, info: ConnectInfo) -> dict[str, Any]:
        args: dict[str, Any] = {"timeout": HARNESS_DEADLINE_S}
        if info.application_name:
            args["application_name"] = info.application_name
        return args

