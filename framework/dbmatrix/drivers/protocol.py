"""The adapter protocol: what a driver or a layer declares about itself, and how a session is opened.

A ``DriverAdapter`` describes one way of talking to a database: its id, the target kinds it speaks to, sync or
async, its paramstyle, and everything else dbmatrix needs to know about it, declared here on the adapter and read
from it by everything else (the SQLAlchemy layers, the bench, the profile split, the run record, the pooling
cases): its exception classes and the client-side refusals it maps, how it cancels a running statement, its
SQLAlchemy dialect and connect arguments, its notification API, the modules a profile attributes to it, the
distributions whose versions a run records, its shape for the bench, and the connect options that make it safe
behind a transaction pooler.

A ``Layer`` (SQLAlchemy Core, the ORM, a user's own data-access layer) is an adapter that sits on a DBAPI adapter
and receives that adapter object; it says which DBAPI adapters it can sit on (``can_sit_on``).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import fnmatch
import importlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy.engine import URL

from ..engines import engine_for
from ..errors import DriverError
from .normalise import default_normalise

if TYPE_CHECKING:
    from .runners import LoopThread
    from .session import Session

# Bounds so that nothing hangs (a session must never wait without limit); the server-side ones live in engines/.
CONNECT_TIMEOUT_S = 10
HARNESS_DEADLINE_S = 120
CLOSE_BOUND_S = 2.0
SILENCE_S = 5.0  # a step silent this long asks, on a fresh connection, whether its server still answers
PG_KINDS = frozenset({"postgresql", "cockroachdb"})  # CockroachDB speaks the PostgreSQL wire protocol

# The rungs of the ladder, bottom up: a DBAPI driver, a query builder over it, an ORM over it (the bench's ladder
# table orders a driver's stacks by them; each adapter says its own ``rung``)
RUNGS = ("driver", "builder", "orm")
# The built-in workloads the default bench gives the ORM rung (no --driver): one object, 100 objects, 1,000 new
# objects and a read-modify-write, where an ORM's own cost shows; json_select (range_select's objects behind a JSON
# filter) runs when the layer is named (the 15-minute budget)
ORM_BENCH_WORKLOADS = ("pk_select", "range_select", "insert_batch", "update_txn")
# What a profile part counts as in the ladder's "where the time goes": the driver with the server's round trip,
# SQL building, row -> object, a layer part that is both, and the harness or unattributed rest
STAGES = ("driver", "sql", "objects", "layer", "other")


@dataclass
class ConnectInfo:
    """Everything an adapter needs to open a connection to a target's scratch space."""

    kind: str  # sqlite | postgresql | mysql | cockroachdb
    url: URL  # SQLAlchemy URL without a +driver part, pointing at the scratch database or file
    init_sql: list[str] = field(default_factory=list)  # run after connect (e.g. search_path for a scratch schema)
    engine: str = ""  # detected product: postgresql, mariadb, mysql, sqlite, cockroachdb
    options: dict[str, Any] = field(default_factory=dict)  # extra keywords for the driver's own connect call
    pooler: str | None = None  # "transaction": the server connection changes between transactions
    database_timeouts: bool = False  # the scratch database itself carries statement/lock timeouts
    application_name: str = ""  # set per session by DriverAdapter.connect (PostgreSQL): how observers find it
    loop: LoopThread | None = field(default=None, compare=False)  # an event loop to share (async drivers)


def with_options(kwargs: dict[str, Any], info: ConnectInfo) -> dict[str, Any]:
    """``kwargs`` for a driver's connect call plus ``info.options`` (from ``cell.connect(options=...)``).

    A dict-valued option (asyncpg ``server_settings``) is merged into ours, and the session's own
    ``application_name`` is kept wherever it is: observers find the session by it.
    """
    out = dict(kwargs)
    for key, value in info.options.items():
        mine = out.get(key)
        out[key] = {**value, **mine} if isinstance(value, dict) and isinstance(mine, dict) else value
    if info.application_name and "application_name" in out:
        out["application_name"] = info.application_name
    return out


@dataclass
class Result:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    rowcount: int  # as reported by the driver (-1 when it does not say), after the rows were fetched
    rowcount_at_execute: int | None = None  # the same right after execute, before any fetch (where we saw it)

    def scalar(self) -> Any:
        """The first column of the first row (``None`` when there are no rows)."""
        return self.rows[0][0] if self.rows else None


def begin_statements(kind: str, isolation: str | None, engine: str = "") -> list[str]:
    """The SQL that opens a transaction at ``isolation`` (see ``engines``; IsolationUnsupported if not offered)."""
    return engine_for(kind, engine).begin_statements(isolation)


# (dotted names of the DBAPI's Error bases, ((exception class name, message regex), ...) of its client-side refusals)
ErrorSource = tuple[tuple[str, ...], tuple[tuple[str, str], ...]]


class DriverAdapter:
    """Describes one driver. Subclasses are mostly class attributes plus ``open``."""

    id: ClassVar[str]
    kinds: ClassVar[frozenset[str]]  # target kinds this driver can talk to
    is_async: ClassVar[bool] = False
    paramstyle: ClassVar[str]  # one of params.NAMED / PYFORMAT / NUMERIC_DOLLAR / QMARK
    modules: ClassVar[tuple[str, ...]]  # what must import for the driver to be usable
    layer: ClassVar[str] = "dbapi"  # "dbapi", or the name of the layer (sa-core, sa-orm, ...)
    rung: ClassVar[str] = "driver"  # its rung of the ladder (``RUNGS``)

    # --- what the driver knows of itself -------------------------------------------------------------------------
    distributions: ClassVar[tuple[str, ...]] = ()  # PyPI names whose installed versions a run records
    # the DBAPI's Error bases (dotted): an exception of these is the driver's own, a finding, never a bug of ours
    exceptions: ClassVar[tuple[str, ...]] = ()
    # client-side refusals of a value that the driver raises outside that hierarchy: (class name, message regex)
    refusals: ClassVar[tuple[tuple[str, str], ...]] = ()
    profile_modules: ClassVar[tuple[str, ...]] = ()  # names a profile charges to the driver (default: ``modules``)
    bench_module: ClassVar[str] = "dbmatrix.bench.ops_dbapi"  # builds the bench's operations (``build_op``)
    bench_shape: ClassVar[str] = "cursor"  # ops_dbapi's shape: cursor | async-cursor | asyncpg
    # SQLAlchemy: the dialect's driver name ("psycopg2"; None: no SQLAlchemy dialect) and what else it must import
    sa_driver: ClassVar[str | None] = None
    sa_modules: ClassVar[tuple[str, ...]] = ()
    server_cursor: ClassVar[bool] = True  # a server-side cursor API (``Session.stream``); else "Unsupported"
    # the driver says how many rows a statement affected; False: its results carry no command tag (rowcount -1)
    reports_rowcount: ClassVar[bool] = True
    # its errors carry the engine's code (SQLSTATE, errno); False: its class and message only (psqlpy)
    error_codes: ClassVar[bool] = True
    # connect options that switch named server-side prepared statements off (None: it never prepares any)
    pooler_safe_options: ClassVar[dict[str, Any] | None] = None
    # case-id globs whose cells run through this adapter. A layer that hands SQL text to its DBAPI unchanged names
    # only the families about what it adds (pypika: builder.*); elsewhere its cells would copy that driver's column
    cases: ClassVar[tuple[str, ...]] = ("*",)
    # under the bounded CI profile (DBMATRIX_CI_SAMPLE=1) the layers over this driver run a sample of the cases
    ci_sample_layers: ClassVar[bool] = False
    # the default bench (no --driver) gives the layers over this driver rows; a newer rung leaves them to be named
    # (its own plain rows still run), so the full default bench keeps within its 15 minutes
    bench_layers_by_default: ClassVar[bool] = True

    @property
    def dbapi(self) -> str:
        """The id of the DBAPI driver underneath (a DBAPI adapter's own id)."""
        return self.id

    @property
    def under(self) -> DriverAdapter:
        """The DBAPI adapter underneath (a DBAPI adapter itself)."""
        return self

    def unavailable_reason(self) -> str | None:
        """Why this driver cannot run here (missing module), or None. Imports lazily."""
        for mod in self.modules:
            try:
                importlib.import_module(mod)
            except ImportError as exc:
                return f"driver {self.id} not installed ({mod}: {exc})"
        return None

    def supports(self, kind: str) -> bool:
        return kind in self.kinds

    def runs_by_default(self, case: str) -> bool:
        """Whether a run that does not name its drivers gives this adapter a cell in ``case`` (a layer may limit
        itself to some families: ``Layer.cases_by_default``)."""
        return True

    def benched_by_default(self, workload: str | None = None) -> bool:
        """Whether the default bench (no ``--driver``) measures this adapter on the built-in ``workload`` (None: an
        own workload); a layer asks the driver under it and its rung."""
        return True

    def bench_concurrency(self, asked: list[int]) -> list[int]:
        """The concurrencies the default bench measures this adapter at, of those ``asked``."""
        return asked

    def runs_case(self, case: str) -> bool:
        """Whether case ``case`` gets a cell on this adapter (``cases``)."""
        return any(fnmatch.fnmatchcase(case, glob) for glob in self.cases)

    def connect(self, info: ConnectInfo, options: Mapping[str, Any] | None = None, *,
                loop: LoopThread | None = None) -> Session:
        """Open a session on ``info``: connected, bounded by timeouts, in autocommit mode.

        ``options`` are extra keywords for the driver's own connect call (``info.options`` to ``open``).
        ``loop``: an event loop (``LoopThread``) an async session runs on instead of one of its own, so several
        sessions can run concurrently on one loop; the session leaves it running when it closes.
        """
        info = dataclasses.replace(info, application_name=f"dbmatrix-{uuid.uuid4().hex[:12]}", loop=loop,
                                   options={**info.options, **(options or {})})
        engine = engine_for(info.kind, info.engine)
        session = self.open(info)
        try:
            for stmt in engine.session_setup(info) + list(info.init_sql):
                session.execute(stmt)
            # Behind a transaction pooler the server connection changes between transactions: no id is right,
            # so none is given; observers find the session by its application_name instead.
            if engine.server_id_query and info.pooler != "transaction":
                session.server_id = session.execute(engine.server_id_query).scalar()
            engine.attach(session)
        except BaseException:
            session.close()
            raise
        return session

    def open(self, info: ConnectInfo) -> Session:
        raise NotImplementedError

    def normalise_error(self, exc: BaseException) -> DriverError | None:
        """Map a driver exception to DriverError; None if it is not a database error."""
        return default_normalise(exc)

    def error_sources(self) -> list[ErrorSource]:
        """Where the driver's own exceptions come from, outermost first (a layer's own, then its DBAPI's)."""
        return [(self.exceptions, self.refusals)]

    def cancel_running(self, session: Session, raw: Any, fut: concurrent.futures.Future[Any]) -> None:
        """Stop ``fut``, the pending step of ``session`` whose driver connection is ``raw``, the driver's own way."""
        raise session._unsupported("cannot cancel a running statement")

    def read_socket(self, raw: Any) -> int | None:
        """The file descriptor ``raw`` (the driver's connection) reads the server's answers from, or None when the
        adapter does not know it. With it, a step on a server that stopped answering (frozen, gone) is ended on
        our side (``Session`` shuts the socket down): no cancel request and no server-side timeout reaches a
        server that reads nothing, and the kernel of a frozen server still acknowledges every packet, so TCP
        keepalives and ``tcp_user_timeout`` never fire. Drivers with a read timeout of their own (the MySQL
        ones) need none."""
        return None

    def notifier(self) -> Any:
        """A fresh notification API object for one session (see ``Notifier``), or None: the driver has none."""
        return None

    def sa_connect_args(self, info: ConnectInfo) -> dict[str, Any]:
        """The DBAPI's connect arguments under SQLAlchemy: its connect timeout and, on PostgreSQL, the session's
        application_name (how observers find it)."""
        args: dict[str, Any] = {"connect_timeout": CONNECT_TIMEOUT_S}
        if info.kind in PG_KINDS and info.application_name:
            args["application_name"] = info.application_name
        return args

    def sa_pooler_safe_options(self) -> dict[str, Any] | None:
        """``pooler_safe_options`` as SQLAlchemy's dialect for this driver takes them."""
        return self.pooler_safe_options

    def startup_options(self, settings: Mapping[str, str]) -> dict[str, Any]:
        """Connect options that send ``settings`` (server parameters, e.g. ``work_mem``) in the startup packet
        (PostgreSQL); libpq's ``options`` here, the adapter's own way where it has another."""
        return {"options": " ".join(f"-c {k}={v}" for k, v in settings.items())}

    def pooler_fix(self) -> dict[str, Any] | None:
        """The connect options (``cell.connect(options=...)``) that keep this adapter's sessions working behind a
        transaction pooler; None when it never prepares named statements on the server."""
        return self.pooler_safe_options


class Notifier:
    """A driver's LISTEN/notification API over one raw connection, made per session by ``adapter.notifier()``.

    Both methods are owner operations: plain functions for a blocking driver, coroutine functions for an asyncio one
    (a session runs them where its connection lives).
    """

    def listen(self, raw: Any, channel: str) -> Any:
        """Subscribe ``raw`` to ``channel``."""
        raise NotImplementedError

    def received(self, raw: Any, timeout: float) -> Any:
        """``[(channel, payload), ...]``: up to ``timeout`` s for the first one, then whatever else has arrived."""
        raise NotImplementedError


class Layer(DriverAdapter):
    """A layer over a DBAPI adapter (``<layer>+<dbapi>``): it receives the DBAPI adapter object, not its id, and
    reuses what that adapter knows. Subclasses set ``name`` and implement ``can_sit_on`` and ``open``."""

    name: ClassVar[str]
    bench_module: ClassVar[str] = ""  # a layer names the module that builds its bench operations
    # (module path, part) pairs, most specific first: a profile charges a function of that module to the part
    profile_parts: ClassVar[tuple[tuple[str, str], ...]] = ()
    # case id globs a run that does not name its drivers gives this layer cells for: an ORM's columns in every
    # plain-SQL case would repeat its DBAPI's (it passes SQL through) at the cost of a full column each
    cases_by_default: ClassVar[tuple[str, ...]] = ("*",)
    layer_distributions: ClassVar[tuple[str, ...]] = ()  # the layer's own PyPI names (a run records their versions)
    rung: ClassVar[str] = "orm"  # a layer maps rows to objects unless it says it only builds SQL ("builder")
    # profile part -> ladder stage (``STAGES``): "sql" for SQL building, "objects" for row -> object; a layer part
    # not listed counts as "layer" (both, where one module does both and the profile cannot split them)
    profile_stages: ClassVar[dict[str, str]] = {}
    # (dotted function or class, part): functions a profile charges to a part of their own before ``profile_parts``
    # (a class: its and its subclasses' methods), where one module both builds SQL and makes objects (Peewee)
    profile_objects: ClassVar[tuple[tuple[str, str], ...]] = ()
    # the DBAPI drivers the ORM itself uses when a URL names none (its default driver per engine): an ORM's cells in
    # a run that names no drivers (``orm.*``) and, with ``orm_benched_by_default``, its rung of the default bench.
    # Named (--driver), any pair runs.
    default_dbapis: ClassVar[frozenset[str]] = frozenset()
    orm_benched_by_default: ClassVar[bool] = True
    bench_workloads_by_default: ClassVar[tuple[str, ...]] = ORM_BENCH_WORKLOADS  # the ORM rung's, by default

    def __init__(self, under: DriverAdapter):
        if not self.can_sit_on(under):
            raise ValueError(f"layer {self.name} cannot sit on driver {under.id}")
        self._under = under
        for attr in ("paramstyle", "modules"):  # a layer that passes SQL through takes the DBAPI's
            if not hasattr(type(self), attr):
                setattr(self, attr, getattr(under, attr))
        self.id = f"{self.name}+{under.id}"  # type: ignore[misc]
        self.layer = self.name  # type: ignore[misc]
        self.kinds = under.kinds  # type: ignore[misc]
        self.is_async = under.is_async  # type: ignore[misc]

    @classmethod
    def can_sit_on(cls, dbapi: DriverAdapter) -> bool:
        raise NotImplementedError

    @classmethod
    def cannot_sit_reason(cls, dbapi: DriverAdapter) -> str:
        """Why the layer does not sit on ``dbapi`` when the library itself says so (Piccolo: no MySQL engine), or
        "" (told to a user who names the pair)."""
        return ""

    def wrapped_cause(self, exc: BaseException) -> BaseException | None:
        """The driver exception that ``exc``, the layer's own, wraps (None: it wraps none)."""
        return None

    def normalise_error(self, exc: BaseException) -> DriverError | None:
        """The DBAPI adapter's mapping, of the driver exception the layer's own wraps where it wraps one (the codes
        stay the driver's: a MySQL errno, a SQLSTATE)."""
        inner = self.wrapped_cause(exc)
        if inner is not None and inner is not exc:
            err = self._under.normalise_error(inner)
            if err is not None:
                return err
        return self._under.normalise_error(exc)

    def runs_by_default(self, case: str) -> bool:
        return any(fnmatch.fnmatchcase(case, glob) for glob in self.cases_by_default)

    def benched_by_default(self, workload: str | None = None) -> bool:
        if not self._under.bench_layers_by_default:
            return False
        if self.rung == "orm":  # over its own default drivers, its default workloads (an own one: where cases run)
            if not self.orm_benched_by_default or self._under.id not in self.default_dbapis:
                return False
            return workload in self.bench_workloads_by_default if workload else self.runs_by_default("bench.own")
        return self.runs_by_default(f"bench.{workload or 'own'}")

    def bench_concurrency(self, asked: list[int]) -> list[int]:
        # the ORM rung by default at the lowest concurrency only: its ladder row is there, and on a small machine
        # more clients mostly measure how the cores are shared (named, it runs every concurrency asked)
        return asked[:1] if self.rung == "orm" else asked

    @property
    def dbapi(self) -> str:
        return self._under.id

    @property
    def under(self) -> DriverAdapter:
        return self._under

    @property
    def distributions(self) -> tuple[str, ...]:  # type: ignore[override]
        return (*self.layer_distributions, *self._under.distributions)

    @property
    def profile_modules(self) -> tuple[str, ...]:  # type: ignore[override]
        return self._under.profile_modules or self._under.modules

    def error_sources(self) -> list[ErrorSource]:
        return [(self.exceptions, self.refusals), *self._under.error_sources()]

    def cancel_running(self, session: Session, raw: Any, fut: concurrent.futures.Future[Any]) -> None:
        self._under.cancel_running(session, raw, fut)

    def read_socket(self, raw: Any) -> int | None:
        return self._under.read_socket(raw)  # the layer reads through its DBAPI's connection

    def notifier(self) -> Any:
        return self._under.notifier()

    def pooler_fix(self) -> dict[str, Any] | None:
        return self._under.pooler_fix()  # a layer that passes connect options through to its DBAPI

    def startup_options(self, settings: Mapping[str, str]) -> dict[str, Any]:
        return self._under.startup_options(settings)
