"""CockroachDB: PostgreSQL's wire protocol, its own concurrency control and its own introspection.

A session is known to the server by its ``session_id`` (``SHOW session_id``: a hex string, unique in the cluster;
there is no backend pid). A row-lock wait is a row of ``crdb_internal.cluster_locks`` (22.1+) with
``granted = false`` for the waiting transaction; ``crdb_internal.cluster_sessions.kv_txn`` maps a transaction to
its session, and the granted rows on the same ``lock_key`` name the holders.

``crdb_internal`` is gated from 25.4 on: the admin connection sets ``allow_unsafe_internals`` (from 26.1 it is off
by default and every other query there fails with 42501). The driver sessions under test never touch
``crdb_internal``, so they need no such setting.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..targets.capabilities import parse_version, profile
from ..targets.hosted import cockroach_version
from .base import STATEMENT_TIMEOUT_S, CapabilityMissing
from .observer import AdminObserver
from .postgresql import PostgreSQL, admin_dbapi_connection

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from ..drivers.base import ConnectInfo, Session

OBSERVE = "lock_wait_observation"  # the capability the observer needs (cluster_locks: 22.1+)
UNSAFE_INTERNALS_SINCE = (25, 4)  # the release that added allow_unsafe_internals (off by default from 26.1)


def observer_setup(version: tuple[int, ...]) -> list[str]:
    """What the observer's admin connection runs before its first poll, for a server at ``version``;
    CapabilityMissing when that version has no ``cluster_locks`` to poll."""
    if OBSERVE not in profile("cockroachdb", version):
        raise CapabilityMissing(OBSERVE, "cockroachdb", version)
    return ["SET allow_unsafe_internals = true"] if version >= UNSAFE_INTERNALS_SINCE else []


class CockroachObserver(AdminObserver):
    """``crdb_internal.cluster_locks`` joined to ``cluster_sessions``: blocked = a lock request of the session's
    transaction not granted yet; ``waits_for`` = the sessions whose transactions hold the granted lock on that key.

    A session behind a transaction pooler has no fixed server session: it is found by its ``application_name``
    among the server sessions in a transaction now (``kv_txn`` set), as PostgresObserver does with backends.
    """

    _BLOCKED = ("SELECT count(*) FROM crdb_internal.cluster_locks AS l"
                " JOIN crdb_internal.cluster_sessions AS s ON s.kv_txn = l.txn_id::STRING"
                " WHERE NOT l.granted AND {session}")
    _WAITS_FOR = ("SELECT DISTINCT hs.session_id FROM crdb_internal.cluster_locks AS w"
                  " JOIN crdb_internal.cluster_sessions AS s ON s.kv_txn = w.txn_id::STRING"
                  " JOIN crdb_internal.cluster_locks AS h ON h.lock_key = w.lock_key AND h.granted"
                  " AND h.txn_id <> w.txn_id"
                  " JOIN crdb_internal.cluster_sessions AS hs ON hs.kv_txn = h.txn_id::STRING"
                  " WHERE NOT w.granted AND {session} ORDER BY 1")

    @classmethod
    def open(cls, conn: Any) -> CockroachObserver:
        """The observer over ``conn`` (an autocommit DBAPI connection it then owns), set up for the server's
        version; ``conn`` is closed when the version has no lock table to observe."""
        observer = cls(conn)
        try:
            full = observer.query("SELECT version()")[0][0]
            observer.version = parse_version(cockroach_version(full))
            for sql in observer_setup(observer.version):
                observer.query(sql, fetch=False)
        except BaseException:
            observer.close()
            raise
        return observer

    def __init__(self, conn: Any):
        super().__init__(conn)
        self.version: tuple[int, ...] = ()

    @staticmethod
    def session_filter(session: Session) -> tuple[str, dict[str, Any]]:
        """The WHERE clause (on ``cluster_sessions AS s``) that picks ``session``'s server session."""
        if session.server_id is not None:
            return "s.session_id = %(id)s", {"id": str(session.server_id)}
        return ("s.application_name = %(name)s AND s.kv_txn IS NOT NULL",
                {"name": session.info.application_name})

    def is_blocked(self, session: Session) -> bool:
        where, args = self.session_filter(session)
        return bool(self.query(self._BLOCKED.format(session=where), args)[0][0])

    def waits_for(self, session: Session) -> list[Any]:
        where, args = self.session_filter(session)
        return [r[0] for r in self.query(self._WAITS_FOR.format(session=where), args)]


class CockroachDB(PostgreSQL):
    name = "cockroachdb"
    # CockroachDB maps READ UNCOMMITTED/READ COMMITTED/REPEATABLE READ up to what the cluster enables
    isolation_levels = PostgreSQL.isolation_levels
    # the session's own id, as cluster_sessions and cluster_locks know it (not crdb_internal.node_id(): one per
    # node, and a crdb_internal built-in, refused from 26.1 unless allow_unsafe_internals is set)
    server_id_query = "SHOW session_id"

    def database_timeouts(self, database: str) -> list[str]:
        return []

    def session_setup(self, info: ConnectInfo) -> list[str]:
        return [f"SET statement_timeout = '{STATEMENT_TIMEOUT_S}s'"]

    def observer(self, admin_url: URL) -> CockroachObserver:
        return CockroachObserver.open(admin_dbapi_connection(admin_url))

    # --- refusals and bounds for schedules and retries ---
    retry_codes = frozenset({"40001"})  # "restart transaction" (targets.hosted.cockroach_retry_reason names why)
    schedule_session_setup = ()  # neither PostgreSQL setting applies
