"""The engine protocol: class attributes first, a few hook methods second."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import DriverError

if TYPE_CHECKING:
    from ..drivers.base import ConnectInfo, Session
    from .observer import LockObserver

# Bounds so that nothing hangs: every wait on a server has a limit.
STATEMENT_TIMEOUT_S = 60
LOCK_TIMEOUT_S = 20
SQL_STANDARD_LEVELS = ("read uncommitted", "read committed", "repeatable read", "serializable")


class IsolationUnsupported(DriverError):
    """The engine does not offer the isolation level a case asked for: the cell is ``unsupported``, not ``error``."""

    def __init__(self, engine: str, isolation: str, offered: tuple[str, ...] | None = None, detail: str = ""):
        offers = f" (it offers: {', '.join(offered)})" if offered else ""
        super().__init__(None, "IsolationUnsupported",
                         f"{engine} has no isolation level {isolation!r}{offers}{': ' + detail if detail else ''}")
        self.isolation = isolation


class CapabilityMissing(DriverError):
    """The engine at this version lacks what a case needs from it (its capability profile says so, and why):
    the cell is ``unsupported`` with the profile's reason, not ``error``."""

    def __init__(self, capability: str, engine: str, version: tuple[int, ...]):
        from ..targets.capabilities import why_missing

        super().__init__(None, "CapabilityMissing", why_missing(capability, engine, version))
        self.capability = capability


class Engine:
    """What dbmatrix knows about one database engine."""

    name: ClassVar[str]
    kind: ClassVar[str] = ""  # the target kind it is detected on (a plugin engine: a product on a known kind)
    # the levels ``begin_statements`` accepts (lower case); None (the server's default) is always accepted
    isolation_levels: ClassVar[tuple[str, ...]] = ()
    server_id_query: ClassVar[str | None] = None  # the server's id of this connection
    read_isolation_sql: ClassVar[str | None] = None  # the isolation level in effect, read inside a transaction

    @classmethod
    def detects(cls, version_text: str) -> bool:
        """Whether a server of ``kind`` whose ``version()`` is ``version_text`` is this product (plugin engines;
        the built-in products are told apart by the target's detection itself)."""
        return False

    def check_isolation(self, isolation: str | None) -> str | None:
        """``isolation`` in lower case, or IsolationUnsupported when this engine has no such level."""
        if isolation is None:
            return None
        iso = " ".join(isolation.lower().replace("_", " ").split())
        if iso not in self.isolation_levels:
            raise IsolationUnsupported(self.name, isolation, self.isolation_levels)
        return iso

    def begin_statements(self, isolation: str | None) -> list[str]:
        """The SQL that opens a transaction at ``isolation`` on an autocommit connection."""
        raise NotImplementedError

    def session_setup(self, info: ConnectInfo) -> list[str]:
        """Statements run on every new connection. Timeouts live on the scratch database where the engine can
        hold them there (``database_timeouts``); only what has nowhere else to live is set per session."""
        return []

    def wait_bounds(self) -> list[str]:
        """Statements that bound every wait of one session (lock waits, statement time) by this engine's limits:
        for a connection dbmatrix does not open through a driver adapter (a migration tool's, an env.py's)."""
        return []

    def database_timeouts(self, database: str) -> list[str]:
        """Statements (run once by the scratch provisioning) that bound every session of ``database``."""
        return []

    def normalise_isolation(self, value: Any) -> str:
        """The read-back value of ``read_isolation_sql`` as a lower-case level name ('repeatable read')."""
        return " ".join(str(value).lower().replace("-", " ").replace("_", " ").split())

    def transaction_isolation(self, session: Session) -> str:
        """What the server reports for the transaction ``session`` has open, as ``expected_report`` names it.

        It is the transaction's first statement, so a driver that begins lazily (psycopg) sends its BEGIN with it.
        """
        if self.read_isolation_sql is None:
            raise DriverError(None, "Unobservable", f"{self.name} has no way to report a transaction's level")
        return self.normalise_isolation(session.execute(self.read_isolation_sql).scalar())

    def expected_report(self, isolation: str) -> str:
        """What ``transaction_isolation`` says of a transaction that really runs at ``isolation`` (lower case)."""
        return isolation

    def observer(self, admin_url: Any) -> LockObserver:
        """A lock observer over an admin connection of its own (never the driver under test)."""
        raise NotImplementedError

    def attach(self, session: Session) -> None:
        """Called once a session is connected and set up (SQLite installs its busy watch here)."""

    # --- refusals and bounds for schedules and retries (read by schedules/ and retry.py) -------------------
    # The engine's codes (SQLSTATE, errno, SQLITE_* name) as the drivers normalise them.
    deadlock_codes: ClassVar[frozenset[str]] = frozenset()  # the engine broke a deadlock by aborting this one
    busy_codes: ClassVar[frozenset[str]] = frozenset()  # SQLite: the database is locked
    # refusals by which the engine keeps transactions isolated (serialization failure, deadlock, lock timeout)
    isolation_codes: ClassVar[frozenset[str]] = frozenset()
    retry_codes: ClassVar[frozenset[str]] = frozenset()  # "your transaction lost a race, run it again"
    # Per-session settings for schedules (which test isolation, not durability): faster, same visibility.
    schedule_session_setup: ClassVar[tuple[str, ...]] = ()

    def refusal(self, code: str | None) -> str:
        """How a schedule names a refused step with ``code``: ``deadlock``, ``busy`` or ``abort``."""
        code = "" if code is None else str(code)
        if code in self.deadlock_codes:
            return "deadlock"
        if code in self.busy_codes or code.startswith("SQLITE_BUSY"):
            return "busy"
        return "abort"

    def lock_wait_bound(self, seconds: int) -> list[str]:
        """Statements (run inside a transaction) that bound this transaction's lock waits to ``seconds``;
        [] where a lock request carries its own bound."""
        return []


def every_engine_codes(attribute: str) -> frozenset[str]:
    """The union of one code set (``isolation_codes``, ``retry_codes``...) over every Engine class loaded (the
    registered ones and a plugin's), for code that meets an error without knowing its engine."""
    out: set[str] = set()
    todo: list[type[Engine]] = [Engine]
    while todo:
        cls = todo.pop()
        out |= getattr(cls, attribute)
        todo += cls.__subclasses__()
    return frozenset(out)
