"""MySQL and MariaDB."""

from __future__ import annotations

import importlib.util
import re
import time
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import DriverError
from .base import LOCK_TIMEOUT_S, SQL_STANDARD_LEVELS, STATEMENT_TIMEOUT_S, Engine
from .observer import AdminObserver

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from ..drivers.base import ConnectInfo, Session

CONNECT_TIMEOUT_S = 5
CACHE_IDLE_S = 0.11  # InnoDB refreshes information_schema.innodb_* only after 100 ms without readers
_THREAD_ID = re.compile(r"(?:MariaDB|MySQL) thread id (\d+),")
# processlist states of a thread waiting for a lock the InnoDB lock table does not show: metadata locks
# ("Waiting for table metadata lock"), table locks, GET_LOCK ("User lock" on MySQL, "Waiting for user lock" ...)
_LOCK_STATES = ("state LIKE 'Waiting for %%lock%%' OR state LIKE '%%user lock%%' OR state = 'User lock'"
                " OR state LIKE 'Waiting for %%metadata%%'")


# A server that accepts TCP and never answers must not hang a verb: connect_timeout covers only the TCP connect,
# so the greeting and authentication reads are bounded by a read timeout of the same few seconds; after the
# handshake, reads wait at most as long as a statement may run (max_statement_time) plus a margin.
READ_TIMEOUT_S = STATEMENT_TIMEOUT_S + 30


def bounded_connect_args(module: str, connect_s: float = CONNECT_TIMEOUT_S) -> dict[str, Any]:
    """Connect keywords that bound every wait of a ``module`` (pymysql, MySQLdb, asyncmy) connection."""
    if module == "pymysql":  # widened by ``after_handshake`` once the server has answered
        return {"connect_timeout": connect_s, "read_timeout": connect_s, "write_timeout": connect_s}
    return {"connect_timeout": connect_s, "read_timeout": READ_TIMEOUT_S, "write_timeout": READ_TIMEOUT_S}


def after_handshake(dbapi_connection: Any) -> None:
    """Give an open PyMySQL connection the statement-length read bound (PyMySQL applies ``_read_timeout`` to the
    socket before every read)."""
    if type(dbapi_connection).__module__.startswith("pymysql"):
        dbapi_connection._read_timeout = dbapi_connection._write_timeout = READ_TIMEOUT_S


def with_utf8_password(kwargs: dict[str, Any]) -> dict[str, Any]:
    """PyMySQL and asyncmy send a ``str`` password as Latin-1: any other character fails with an encoding error that
    quotes it (and its position). The server hashes the bytes the client sends, as UTF-8 on a utf8mb4 connection,
    so the password goes as UTF-8 bytes (mysqlclient encodes ``str`` as UTF-8 itself)."""
    if isinstance(kwargs.get("password"), str):
        return {**kwargs, "password": kwargs["password"].encode("utf-8")}
    return kwargs


def admin_dbapi_connection(url: URL) -> Any:
    """An autocommit PyMySQL (else mysqlclient) connection to ``url``, every wait bounded."""
    module = "pymysql" if importlib.util.find_spec("pymysql") is not None else "MySQLdb"
    kwargs: dict[str, Any] = {"user": url.username or "root", "password": url.password or "", "autocommit": True,
                              **bounded_connect_args(module)}
    if url.host:
        kwargs["host"] = url.host
    if url.port:
        kwargs["port"] = url.port
    kwargs.update({k: v for k, v in url.query.items() if isinstance(v, str)})
    conn = importlib.import_module(module).connect(**(with_utf8_password(kwargs) if module == "pymysql" else kwargs))
    after_handshake(conn)
    return conn


def kill_query(url: URL, thread_id: int) -> None:
    """``KILL QUERY <thread>`` from a connection of its own: stops the statement, keeps the connection."""
    conn = admin_dbapi_connection(url)
    try:
        cur = conn.cursor()
        cur.execute(f"KILL QUERY {int(thread_id)}")
    finally:
        conn.close()


class MySQLObserver(AdminObserver):
    """MariaDB (and MySQL 5.7): a row-lock wait is a transaction in ``LOCK WAIT`` for the session's thread, read from
    ``SHOW ENGINE INNODB STATUS`` — not from ``information_schema.innodb_trx``, which is a cache InnoDB refreshes only
    after 100 ms without readers, so frequent polling (ours, or any other client's) keeps it stale indefinitely.
    A metadata-lock, table-lock or GET_LOCK wait shows only in the processlist state.

    ``waits_for`` reads ``innodb_lock_waits``, which sits behind that same cache: when it shows nothing for a
    session that is waiting, it is asked once more after 110 ms unread; other clients polling it can still keep it
    stale, so [] from MariaDB means "not known", not "nobody".
    """

    _LOCK_STATE = "SELECT COUNT(*) FROM information_schema.processlist WHERE id = %(id)s AND (" + _LOCK_STATES + ")"
    _WAITS_FOR = ("SELECT DISTINCT b.trx_mysql_thread_id FROM information_schema.innodb_lock_waits w"
                  " JOIN information_schema.innodb_trx b ON b.trx_id = w.blocking_trx_id"
                  " JOIN information_schema.innodb_trx r ON r.trx_id = w.requesting_trx_id"
                  " WHERE r.trx_mysql_thread_id = %(id)s ORDER BY 1")

    def is_blocked(self, session: Session) -> bool:
        thread = int(session.server_id)  # type: ignore[arg-type]
        return self.row_lock_wait(thread) or bool(self.query(self._LOCK_STATE, {"id": thread})[0][0])

    def row_lock_wait(self, thread: int) -> bool:
        status = self.query("SHOW ENGINE INNODB STATUS")[0][2]
        for block in status.split("\n---TRANSACTION ")[1:]:
            if _THREAD_ID.search(block) and int(_THREAD_ID.search(block)[1]) == thread:  # type: ignore[index]
                return "LOCK WAIT" in block
        return False

    def waits_for(self, session: Session) -> list[Any]:
        holders = [r[0] for r in self.query(self._WAITS_FOR, {"id": session.server_id})]
        if not holders and self.row_lock_wait(int(session.server_id)):  # type: ignore[arg-type]
            time.sleep(CACHE_IDLE_S)  # let InnoDB refresh the cache (it does once unread for 100 ms), ask again
            holders = [r[0] for r in self.query(self._WAITS_FOR, {"id": session.server_id})]
        return holders


class MySQL8Observer(MySQLObserver):
    """MySQL 8 has the live lock tables ``performance_schema.data_lock_waits`` (by thread, no cache)."""

    _ROW_WAIT = ("SELECT COUNT(*) FROM performance_schema.data_lock_waits w"
                 " JOIN performance_schema.threads rt ON rt.THREAD_ID = w.REQUESTING_THREAD_ID"
                 " WHERE rt.PROCESSLIST_ID = %(id)s")
    _WAITS_FOR = ("SELECT DISTINCT bt.PROCESSLIST_ID FROM performance_schema.data_lock_waits w"
                  " JOIN performance_schema.threads rt ON rt.THREAD_ID = w.REQUESTING_THREAD_ID"
                  " JOIN performance_schema.threads bt ON bt.THREAD_ID = w.BLOCKING_THREAD_ID"
                  " WHERE rt.PROCESSLIST_ID = %(id)s ORDER BY 1")

    def row_lock_wait(self, thread: int) -> bool:
        return bool(self.query(self._ROW_WAIT, {"id": thread})[0][0])


class MySQL(Engine):
    name = "mysql"
    isolation_levels = SQL_STANDARD_LEVELS
    server_id_query = "SELECT CONNECTION_ID()"
    read_isolation_sql = "SELECT @@transaction_isolation"
    observer_class: ClassVar[type[MySQLObserver]] = MySQL8Observer

    isolation_variable: ClassVar[str] = "transaction_isolation"

    def begin_statements(self, isolation: str | None) -> list[str]:
        # The session's level (as SQLAlchemy sets it), not SET TRANSACTION: a level set for the next transaction
        # only cannot be read back, and the read-back is how a case knows what the server really ran.
        iso = self.check_isolation(isolation)
        var = self.isolation_variable
        level = f"'{iso.upper().replace(' ', '-')}'" if iso else f"@@GLOBAL.{var}"
        return [f"SET SESSION {var} = {level}", "START TRANSACTION"]

    def session_setup(self, info: ConnectInfo) -> list[str]:
        # MySQL has no per-database settings: the session is the only place for these bounds (no pooler here).
        return [f"SET SESSION innodb_lock_wait_timeout = {LOCK_TIMEOUT_S}", self.statement_timeout()]

    def wait_bounds(self) -> list[str]:
        # lock_wait_timeout bounds metadata-lock waits (ALTER TABLE behind an open transaction); its default is a year
        return [f"SET SESSION lock_wait_timeout = {LOCK_TIMEOUT_S}",
                f"SET SESSION innodb_lock_wait_timeout = {LOCK_TIMEOUT_S}", self.statement_timeout()]

    def statement_timeout(self) -> str:
        return f"SET SESSION max_execution_time = {STATEMENT_TIMEOUT_S * 1000}"

    def observer(self, admin_url: URL) -> MySQLObserver:
        return self.observer_class(admin_dbapi_connection(admin_url))

    # --- refusals and bounds for schedules and retries ---
    deadlock_codes = frozenset({"1213"})  # ER_LOCK_DEADLOCK
    isolation_codes = frozenset({"1213", "1205"})  # and ER_LOCK_WAIT_TIMEOUT
    retry_codes = frozenset({"1213", "1205"})
    # the flush setting is server-wide only, so schedules leave it as it is

    def lock_wait_bound(self, seconds: int) -> list[str]:
        return [f"SET SESSION innodb_lock_wait_timeout = {seconds}"]


class MariaDB(MySQL):
    name = "mariadb"
    read_isolation_sql = "SELECT @@tx_isolation"  # @@transaction_isolation only from MariaDB 11.1
    isolation_variable = "tx_isolation"
    observer_class = MySQLObserver
    # The open transaction's own level: @@tx_isolation is the session's, and a level set for one transaction only
    # (SET TRANSACTION ISOLATION LEVEL, mysql-connector's start_transaction) does not show there. InnoDB lists the
    # transaction once it has read an InnoDB table, in a cache refreshed after CACHE_IDLE_S without readers.
    trx_touch_sql = "SELECT 1 FROM mysql.innodb_table_stats LIMIT 1"
    trx_level_sql = ("SELECT trx_isolation_level FROM information_schema.innodb_trx"
                     " WHERE trx_mysql_thread_id = CONNECTION_ID()")
    trx_visible_s = 2.0

    def transaction_isolation(self, session: Session) -> str:
        session.execute(self.trx_touch_sql)
        deadline = time.monotonic() + self.trx_visible_s
        while True:
            time.sleep(CACHE_IDLE_S)  # a read sooner than that would get (and keep) the cache from before the touch
            if rows := session.execute(self.trx_level_sql).rows:
                return self.normalise_isolation(rows[0][0])
            if time.monotonic() > deadline:
                raise DriverError(None, "Unobservable", "InnoDB did not list the session's open transaction "
                                  f"within {self.trx_visible_s}s (information_schema.innodb_trx)")

    def statement_timeout(self) -> str:
        return f"SET SESSION max_statement_time = {STATEMENT_TIMEOUT_S}"

    # --- refusals for schedules and retries ---
    # ER_CHECKREAD 1020 "Record has changed since last read": innodb_snapshot_isolation's write conflict
    isolation_codes = MySQL.isolation_codes | {"1020"}
    retry_codes = MySQL.retry_codes | {"1020"}
