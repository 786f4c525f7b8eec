"""What the ``orm.*`` cases ask of an ORM layer: a small schema declared the ORM's own way, and the idiomatic
operations on it. An ORM layer's ``orm_kit(session, prefix)`` returns one over one of its sessions.

The schema (table names start with ``prefix``, unique per cell): ``things`` (one column per value type, a unique
``name`` and an integer ``n`` for upserts), ``authors`` and ``books`` (a foreign key, for N+1), ``accounts`` (a
balance, for concurrent increments).

Every operation runs on the session's owner (``run``), so the ORM touches its connection from one thread and the
driver's exceptions come out as ``DriverError`` like a statement's; ``submit`` starts one without waiting (for the
lock observer). An operation the ORM has no API for raises ``Unsupported`` with the ORM's reason.
"""

from __future__ import annotations

import concurrent.futures
import enum
from collections.abc import Callable
from typing import Any

from ..drivers.base import Session
from ..errors import DriverError

# the columns of ``things`` the field round trips use, by the type's name in the case id
FIELDS = ("json", "uuid", "decimal", "datetime_aware", "datetime_naive", "bool", "bytes", "bigint", "enum", "array")
# round trips of a datetime through the field declared the other way (the ORM's time-zone setting off for an aware
# value, on for a naive one): field name in the case id -> the column (field) that holds it
CROSSED_FIELDS = {"datetime_aware_notz": "datetime_naive", "datetime_naive_tz": "datetime_aware"}
ISOLATION_LEVELS = ("read uncommitted", "read committed", "repeatable read", "serializable")
DECIMAL_DIGITS, DECIMAL_PLACES = 14, 4
LOCK_MODES = ("plain", "skip_locked", "nowait")


def unsupported(orm: str, what: str) -> DriverError:
    """The ORM has no API for ``what`` (a finding about the ORM, recorded ``unsupported``)."""
    return DriverError(None, "Unsupported", f"{orm}: {what}")


class OrmKit:
    """Subclasses declare the models in ``__init__`` and implement the operations."""

    orm: str = ""  # "peewee", "sqlalchemy", "sqlmodel"

    def __init__(self, session: Session, prefix: str):
        self.session = session
        self.prefix = prefix
        self.statements = 0  # DBAPI cursor executions counted since ``count_statements`` (the N+1 case)

    def table(self, name: str) -> str:
        """The table of model ``name`` (things, authors, books, accounts)."""
        return f"{self.prefix}_{name}"

    def column(self, field: str) -> str:
        """The column of ``things`` that holds ``field`` (one of ``FIELDS`` or ``CROSSED_FIELDS``)."""
        return f"f_{CROSSED_FIELDS.get(field, field)}"

    # --- running on the session's owner ---------------------------------------------------------------------
    def _op(self, fn: Callable[[], Any]) -> Any:
        """``fn`` as one owner operation of the session (an async SQLAlchemy session wraps it)."""
        return fn

    def run(self, fn: Callable[[], Any]) -> Any:
        return self.session._do(self._op(fn), refusals=True)

    def submit(self, fn: Callable[[], Any], what: str) -> concurrent.futures.Future[Any]:
        """Start ``fn`` on the owner and return at once (``what`` is what an engine's busy watch is told)."""
        if self.session.busy_watch is not None:
            self.session.busy_watch.step_starts(what)
        return self.session._start(self._op(fn), refusals=True, timed=True)

    # --- the operations -----------------------------------------------------------------------------------
    def create_schema(self) -> None:
        raise NotImplementedError

    def save_field(self, field: str, value: Any) -> Any:
        """Save a new Thing with ``field`` set to ``value``; its primary key. ``enum`` is the ORM's enum/choices
        field holding ``Colour`` members (``ormkit.Colour``); ``array`` a list of integers where the ORM offers
        arrays on the engine (``Unsupported`` with the reason elsewhere). A ``CROSSED_FIELDS`` name saves into the
        other datetime field: an aware value with the ORM's time-zone setting off for that field (SQLAlchemy
        ``DateTime(timezone=False)``, Django ``USE_TZ=False``...), a naive one with it on."""
        raise NotImplementedError

    def load_field(self, pk: Any, field: str) -> Any:
        """``field`` of Thing ``pk`` read back by a fresh query (not an object the ORM has cached)."""
        raise NotImplementedError

    def bulk_insert(self, names: list[str]) -> tuple[list[Any], str]:
        """Insert Things named ``names`` with the ORM's bulk API; (the ids the objects carry afterwards, the API)."""
        raise NotImplementedError

    def upsert(self, name: str, n: int) -> str:
        """Insert Thing ``name`` with ``n`` or, when it exists, set its ``n``: the ORM's own conflict API (it names
        the call); ``Unsupported`` when the ORM has none for this engine."""
        raise NotImplementedError

    def lock_step(self, mode: str) -> tuple[Callable[[], Any], str]:
        """(an operation that opens a transaction and reads Things with the ORM's row lock in ``mode`` — the first
        unlocked one by id for ``skip_locked``, Thing 1 otherwise — returning their ids; the ORM call). The
        transaction stays open until ``end``."""
        raise NotImplementedError

    def end(self, commit: bool) -> None:
        """End the transaction an operation left open (``lock_step``, ``read_balance``)."""
        raise NotImplementedError

    def nested(self) -> tuple[list[str], str]:
        """Outer transaction saves Thing 'outer'; an inner (nested) one saves 'inner' and is rolled back; the
        outer commits. (the names left, read back, the ORM call for the inner block)."""
        raise NotImplementedError

    def seed_books(self, n: int) -> None:
        """``n`` authors with one book each."""
        raise NotImplementedError

    def books_with_authors(self, eager: bool) -> tuple[list[tuple[str, str]], str]:
        """(title, author name) of every book, touching ``book.author`` the ORM's lazy or eager way; the call."""
        raise NotImplementedError

    def count_statements(self) -> None:
        """Start counting the DBAPI cursor executions of this session in ``statements`` (from 0)."""
        raise NotImplementedError

    def seed_account(self, balance: int) -> int:
        """A new Account with ``balance``; its primary key."""
        raise NotImplementedError

    def read_balance(self, pk: int) -> int:
        """Open the ORM's default transaction and read Account ``pk``'s balance through its model (left open)."""
        raise NotImplementedError

    def save_balance(self, pk: int, balance: int) -> None:
        """Set the balance on the model object read by ``read_balance``, save it and commit."""
        raise NotImplementedError

    def add_atomic(self, pk: int, amount: int) -> tuple[Callable[[], Any], str]:
        """(an operation: open the ORM's default transaction and add ``amount`` in the database — an UPDATE with an
        expression, no read — leaving the transaction open; the ORM call)."""
        raise NotImplementedError

    # --- the second set of operations (a kit that has no API for one raises ``unsupported(...)``) --------------
    def update_returning(self, ids: list[int], add: int) -> tuple[list[tuple[int, int]], str]:
        """Add ``add`` to ``n`` of Things ``ids`` with one UPDATE the ORM's way that returns the changed rows;
        ((id, new n) sorted by id, the ORM call). ``Unsupported`` when the ORM has no UPDATE ... RETURNING API; an
        ORM that emulates it with a second SELECT says so in the call."""
        raise NotImplementedError

    def isolated_read(self, level: str, probe: Callable[[], Any]) -> tuple[Any, str]:
        """Open a transaction at ``level`` (one of ``ISOLATION_LEVELS``) the ORM's documented way (one owner
        operation), call ``probe()`` while it is open (from the calling thread, not inside an owner operation), end
        it (another); (what ``probe`` returned, the ORM call). ``probe`` reads the running level through ``session``
        (``Engine.transaction_isolation``: more than one statement on MariaDB, a look at the sqlite3 connection on
        SQLite), so the ORM's transaction must be on the session's connection. ``Unsupported`` when the ORM offers
        no way to ask for ``level``."""
        raise NotImplementedError

    def json_filter(self, key: str, value: Any) -> tuple[list[int], str]:
        """Ids (sorted) of the Things whose ``f_json`` has ``key`` equal to ``value`` (a str or int), filtered in
        the WHERE by the ORM's JSON key lookup; the ORM call."""
        raise NotImplementedError

    def window(self) -> tuple[list[tuple[str, int]], str]:
        """(name, running total of ``n`` ordered by id) of every Thing by id, computed by the engine through the
        ORM's window-function API; the ORM call."""
        raise NotImplementedError

    def cte(self, min_n: int) -> tuple[list[str], str]:
        """Names (sorted) of the Things with ``n >= min_n``, selected from a common table expression (WITH ...)
        built with the ORM's CTE API; the ORM call."""
        raise NotImplementedError

    # behind a transaction pooler (orm.pooler_safe): the documented settings that make the ORM safe there
    pooler_fixes: dict[str, str] = {}  # noqa: RUF012  (fix name -> the ORM's documented setting it applies)

    def with_fix(self, name: str) -> None:
        """Apply fix ``name`` (a key of ``pooler_fixes``) to this kit before any work (it may reopen the kit's
        connection through the session's adapter)."""
        raise NotImplementedError

    def pooled_work(self, rounds: int) -> str:
        """``rounds`` times, the ORM's everyday operations at its defaults plus the fixes applied: a get by primary
        key, a filter, iterating a query the ORM's streaming way (server-side cursor where it has one), a save
        inside a transaction; the calls made."""
        raise NotImplementedError


class Colour(enum.StrEnum):
    """The values of the ``enum`` field: the ORM's own enum or choices type over these."""

    RED = "red"
    GREEN = "green"
