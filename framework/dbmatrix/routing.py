"""A reference primary/replica router for SQLAlchemy sessions (sync and asyncio), with read-your-writes.

SQLAlchemy has no built-in read/write splitting; teams override ``Session.get_bind`` themselves (the
"custom vertical partitioning" recipe of SQLAlchemy's docs). This module is such a router, written to be
proven by the ``routing.*`` cases and to serve as a baseline a team's own router is compared with:

* writes (INSERT/UPDATE/DELETE, ``SELECT ... FOR UPDATE/SHARE``, DDL and other non-read text), ORM flushes and
  everything else in a transaction that has written go to the primary;
* plain reads go to the replica;
* read-your-writes: after a commit that wrote, this session's reads stay on the primary until the replica has
  replayed that commit (PostgreSQL: ``pg_current_wal_lsn()`` on the primary after the commit, compared with
  ``pg_last_wal_replay_lsn()`` on the replica) or until ``ryw_max_wait_s`` has passed.

For asyncio, pass the engines' ``sync_engine`` and use ``AsyncSession(sync_session_class=RoutingSession)``
(see ``async_routing_sessionmaker``): ``get_bind`` runs in SQLAlchemy's greenlet, where the synchronous
calls below drive the async driver.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Delete, Insert, Update, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.sql.selectable import Select

# First keyword of a text() statement that only reads (everything else is treated as a write: safe default).
_READ_ONLY_TEXT = re.compile(r"\s*(\(\s*)*(SELECT|WITH|VALUES|SHOW|TABLE|EXPLAIN)\b", re.IGNORECASE)
# ... unless it locks rows or modifies data inside a WITH.
_WRITES_INSIDE = re.compile(r"\bFOR\s+(UPDATE|NO\s+KEY\s+UPDATE|SHARE|KEY\s+SHARE)\b|\b(INSERT|UPDATE|DELETE)\b",
                            re.IGNORECASE)

PRIMARY = "primary"
REPLICA = "replica"


def is_write(clause: Any) -> bool:
    """Whether ``clause`` must run on the primary (a write, a locking read, or text we cannot prove read-only)."""
    if clause is None:
        return False
    if isinstance(clause, Insert | Update | Delete):
        return True
    if isinstance(clause, Select):
        return clause._for_update_arg is not None
    if isinstance(clause, TextClause):
        sql = clause.text
        return not _READ_ONLY_TEXT.match(sql) or bool(_WRITES_INSIDE.search(sql))
    return not getattr(clause, "is_select", False)


@dataclass
class RoutingStats:
    """What the router decided, so a case can compare it with what the servers saw."""

    to_primary: int = 0
    to_replica: int = 0
    held_for_ryw: int = 0  # reads kept on the primary because the replica had not replayed our commit yet
    lsn_checks: int = 0


@dataclass
class ReplicaPolicy:
    """Read-your-writes knobs: ``ryw`` on/off and how long reads may stay on the primary after a commit."""

    ryw: bool = True
    ryw_max_wait_s: float = 5.0
    stats: RoutingStats = field(default_factory=RoutingStats)


def current_lsn(primary: Engine) -> int:
    """The primary's WAL position now (after our commit, so at or past the commit record), in bytes.

    An integer rather than ``pg_lsn`` text, so every driver binds it the same way."""
    with primary.connect() as conn:
        return int(conn.execute(text("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint")).scalar_one())


def replica_has_replayed(replica: Engine, lsn: int) -> bool:
    """Whether the standby has replayed WAL up to ``lsn`` (a primary, not in recovery, always has)."""
    with replica.connect() as conn:
        done = conn.execute(
            text("SELECT CASE WHEN pg_is_in_recovery() "
                 "THEN pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')::bigint >= :lsn ELSE true END"),
            {"lsn": lsn},
        ).scalar_one()
    return bool(done)


class RoutingSession(Session):
    """An ORM Session whose ``get_bind`` sends writes to ``primary`` and reads to ``replica``.

    Construct through ``routing_sessionmaker`` / ``async_routing_sessionmaker``, which pass ``primary``,
    ``replica`` and ``policy``.
    """

    def __init__(self, *args: Any, primary: Engine, replica: Engine, policy: ReplicaPolicy | None = None,
                 **kw: Any):
        super().__init__(*args, **kw)
        self.primary = primary
        self.replica = replica
        self.policy = policy or ReplicaPolicy()
        self._wrote_in_txn = False
        self._pending_lsn: int | None = None  # our last write's commit position, until the replica has it
        self._pending_since = 0.0
        event.listen(self, "after_flush", self._mark_write)
        event.listen(self, "after_commit", self._after_commit)
        event.listen(self, "after_rollback", self._after_rollback)

    def get_bind(self, mapper: Any = None, clause: Any = None, **kw: Any) -> Engine:
        stats = self.policy.stats
        if self._flushing or self._wrote_in_txn or is_write(clause):
            self._wrote_in_txn = True
            stats.to_primary += 1
            return self.primary
        if self._pending_lsn is not None and self._must_wait_for_replica():
            stats.held_for_ryw += 1
            stats.to_primary += 1
            return self.primary
        stats.to_replica += 1
        return self.replica

    def _must_wait_for_replica(self) -> bool:
        """True while reads must stay on the primary to see this session's last commit."""
        assert self._pending_lsn is not None
        if time.monotonic() - self._pending_since > self.policy.ryw_max_wait_s:
            self._pending_lsn = None  # the bound passed: give up waiting, read from the replica again
            return False
        self.policy.stats.lsn_checks += 1
        if replica_has_replayed(self.replica, self._pending_lsn):
            self._pending_lsn = None
            return False
        return True

    def _mark_write(self, *_: Any) -> None:
        self._wrote_in_txn = True

    def _after_commit(self, *_: Any) -> None:
        if self._wrote_in_txn and self.policy.ryw:
            self._pending_lsn = current_lsn(self.primary)
            self._pending_since = time.monotonic()
        self._wrote_in_txn = False

    def _after_rollback(self, *_: Any) -> None:
        self._wrote_in_txn = False


def routing_sessionmaker(primary: Engine, replica: Engine, policy: ReplicaPolicy | None = None,
                         **kw: Any) -> Callable[[], RoutingSession]:
    """A factory of sync routing sessions sharing one ``policy`` (and its stats)."""
    policy = policy or ReplicaPolicy()
    return sessionmaker(class_=RoutingSession, primary=primary, replica=replica, policy=policy, **kw)


def async_routing_sessionmaker(primary: Any, replica: Any, policy: ReplicaPolicy | None = None, **kw: Any) -> Any:
    """A factory of ``AsyncSession``s routed like ``RoutingSession``; ``primary``/``replica`` are AsyncEngines."""
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    policy = policy or ReplicaPolicy()
    return async_sessionmaker(
        class_=AsyncSession, sync_session_class=RoutingSession, primary=primary.sync_engine,
        replica=replica.sync_engine, policy=policy, **kw,
    )


# --- routers as the routing.* cases drive them --------------------------------------------------------------------
# A router factory takes the primary's and the replica's URL (strings, passwords included) and returns a
# sessionmaker of sync ``Session``s or ``AsyncSession``s. ``--router module:factory`` names a team's own.
RouterFactory = Callable[..., Any]
REFERENCE = "dbmatrix.routing:reference"
REFERENCE_ASYNC = "dbmatrix.routing:reference_async"


def reference(primary_url: str, replica_url: str, *, ryw: bool = True) -> Any:
    """The reference router over sync engines (the URLs' own DBAPI)."""
    from sqlalchemy import create_engine

    primary, replica = create_engine(primary_url), create_engine(replica_url)
    maker = routing_sessionmaker(primary, replica, ReplicaPolicy(ryw=ryw))
    maker.dispose = lambda: (primary.dispose(), replica.dispose())  # type: ignore[attr-defined]
    return maker


def reference_async(primary_url: str, replica_url: str, *, ryw: bool = True) -> Any:
    """The reference router over asyncio engines (asyncpg)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import create_async_engine

    def async_url(url: str) -> Any:
        u = make_url(url)
        return u.set(drivername=f"{u.get_backend_name()}+asyncpg")

    primary, replica = create_async_engine(async_url(primary_url)), create_async_engine(async_url(replica_url))
    maker = async_routing_sessionmaker(primary, replica, ReplicaPolicy(ryw=ryw))

    async def dispose() -> None:
        await primary.dispose()
        await replica.dispose()

    maker.dispose = dispose  # type: ignore[attr-defined]
    return maker


def load_router(spec: str) -> RouterFactory:
    """The factory named ``module:attribute``; UsageError (one line) when it cannot be imported or called."""
    import importlib

    from .errors import UsageError

    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise UsageError(f"--router {spec!r}: expected module:factory")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - any import failure of the user's module is one line
        raise UsageError(f"--router {spec!r}: cannot import {module_name}: {type(exc).__name__}: {exc}") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise UsageError(f"--router {spec!r}: {module_name} has no callable {attr!r}")
    return factory


def policy_of(maker: Any) -> ReplicaPolicy | None:
    """The reference router's policy (and its stats) behind a sessionmaker, if it is ours."""
    policy = getattr(maker, "kw", {}).get("policy")
    return policy if isinstance(policy, ReplicaPolicy) else None


class RoutedSessions:
    """Drives the sessions of a sync or asyncio sessionmaker from plain code, the same way for both."""

    def __init__(self, maker: Any):
        self.maker = maker
        self._loop: Any = None

    def _run(self, awaitable: Any) -> Any:
        import asyncio

        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(awaitable)

    @contextmanager
    def session(self) -> Iterator[Any]:
        from sqlalchemy.ext.asyncio import AsyncSession

        s = self.maker()
        if isinstance(s, AsyncSession):
            try:
                yield _SyncFacade(s, self._run)
            finally:
                self._run(s.close())
        else:
            with s:
                yield s

    def close(self) -> None:
        import inspect

        dispose = getattr(self.maker, "dispose", None)
        if dispose is not None:
            out = dispose()
            if inspect.isawaitable(out):
                self._run(out)
        if self._loop is not None:
            self._loop.close()
            self._loop = None


class _SyncFacade:
    """The part of an ``AsyncSession`` the routing cases use, as blocking calls on a private loop."""

    def __init__(self, session: Any, run: Callable[[Any], Any]):
        self._s, self._run = session, run

    def execute(self, *a: Any, **kw: Any) -> Any:
        return self._run(self._s.execute(*a, **kw))

    def scalar(self, *a: Any, **kw: Any) -> Any:
        return self._run(self._s.scalar(*a, **kw))

    def add(self, obj: Any) -> None:
        self._s.add(obj)

    def flush(self) -> None:
        self._run(self._s.flush())

    def commit(self) -> None:
        self._run(self._s.commit())

    def rollback(self) -> None:
        self._run(self._s.rollback())
