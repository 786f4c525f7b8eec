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
from collections.abc import Callable
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
