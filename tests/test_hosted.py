"""Neon and CockroachDB logic that needs no server: URL completion, version strings, profiles, retry errors."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from dbmatrix.drivers import get_adapter
from dbmatrix.drivers.base import ConnectInfo
from dbmatrix.targets.capabilities import parse_version, profile, refusal_errors
from dbmatrix.targets.hosted import cockroach_retry_reason, cockroach_version, hosted_defaults, is_neon_pooled

NEON_POOLED = "postgresql://app:pw@ep-cool-darkness-123456-pooler.us-east-2.aws.neon.tech/neondb"
NEON_DIRECT = "postgresql://app:pw@ep-cool-darkness-123456.us-east-2.aws.neon.tech/neondb"


def test_neon_pooled_endpoint_gets_transaction_pooling_and_tls() -> None:
    url, pooler = hosted_defaults("postgresql", make_url(NEON_POOLED), None)
    assert pooler == "transaction"
    assert url.query["sslmode"] == "require"
    assert url.host == "ep-cool-darkness-123456-pooler.us-east-2.aws.neon.tech"  # SNI needs the name untouched


def test_neon_direct_endpoint_is_not_pooled_but_still_tls() -> None:
    url, pooler = hosted_defaults("postgresql", make_url(NEON_DIRECT), None)
    assert pooler is None
    assert url.query["sslmode"] == "require"


def test_user_settings_win_over_neon_defaults() -> None:
    url, pooler = hosted_defaults("postgresql", make_url(NEON_POOLED + "?sslmode=verify-full"), "session")
    assert url.query["sslmode"] == "verify-full"
    assert pooler == "session"


@pytest.mark.parametrize("host", ["db.example.com", "neon.tech.example.com", "pooler.internal", "ep-x-pooler.local"])
def test_other_hosts_are_left_alone(host: str) -> None:
    url = make_url(f"postgresql://u@{host}/db")
    assert hosted_defaults("postgresql", url, None) == (url, None)
    assert not is_neon_pooled(url)


def test_cockroach_default_port() -> None:
    url, _ = hosted_defaults("cockroachdb", make_url("cockroachdb://root@crdb.internal/defaultdb"), None)
    assert url.port == 26257
    url, _ = hosted_defaults("cockroachdb", make_url("cockroachdb://root@crdb.internal:26000/defaultdb"), None)
    assert url.port == 26000


@pytest.mark.parametrize(
    ("full", "version"),
    [
        ("CockroachDB CCL v24.1.0 (x86_64-pc-linux-gnu, built 2024/05/15 21:28:29, go1.22.2 X:nocoverageredesign)",
         "24.1.0"),
        ("CockroachDB OSS v23.1.11 (aarch64-unknown-linux-gnu, built 2023/09/27 01:53:43, go1.19.10)", "23.1.11"),
        ("PostgreSQL 15.20 (Debian 15.20-0+deb12u1) on x86_64-pc-linux-gnu", None),
    ],
)
def test_cockroach_version_string(full: str, version: str | None) -> None:
    assert cockroach_version(full) == version


def test_cockroach_profile_is_not_postgresql_profile() -> None:
    crdb = profile("cockroachdb", parse_version("24.1.0"))
    pg = profile("postgresql", parse_version("15.20"))
    # CockroachDB has no LISTEN/NOTIFY and its advisory lock functions exist but do not exclude anybody
    for cap in ("listen_notify", "advisory_locks", "advisory_xact_locks"):
        assert cap in pg and cap not in crdb
    assert {"returning_update", "upsert_on_conflict", "jsonb", "transactional_ddl"} <= crdb
    assert "json_path" not in profile("cockroachdb", (23, 2)) and "json_path" in crdb
    # the lock observer needs crdb_internal.cluster_locks, documented from 22.1 on
    assert "lock_wait_observation" not in profile("cockroachdb", (21, 2, 17)) and "lock_wait_observation" in crdb
    assert refusal_errors("listen_notify", "cockroachdb") == ("0A000",)  # "unimplemented", not a syntax error


@pytest.mark.parametrize(
    ("code", "message", "reason"),
    [
        ("40001", "restart transaction: TransactionRetryWithProtoRefreshError: TransactionRetryError: "
                  "retry txn (RETRY_SERIALIZABLE - failed preemptive refresh)", "RETRY_SERIALIZABLE"),
        ("40001", "restart transaction: TransactionRetryWithProtoRefreshError: ReadWithinUncertaintyIntervalError: "
                  "read at time 1700000000.1 encountered previous write", "ReadWithinUncertaintyIntervalError"),
        ("40001", "restart transaction: TransactionRetryWithProtoRefreshError: WriteTooOldError: write for key",
         "WriteTooOldError"),
        ("40001", "could not serialize access due to concurrent update", "restart transaction"),
        (None, "restart transaction: TransactionRetryWithProtoRefreshError: TransactionAbortedError(ABORT_REASON_"
               "CLIENT_REJECT)", "TransactionAbortedError(ABORT_REASON_CLIENT_REJECT)"),
        ("23505", "duplicate key value violates unique constraint \"t_pkey\"", None),
        ("40P01", "deadlock detected", None),
    ],
)
def test_cockroach_retry_errors(code: str | None, message: str, reason: str | None) -> None:
    assert cockroach_retry_reason(code, message) == reason


@pytest.mark.parametrize("dbapi", ["psycopg", "psycopg2", "asyncpg"])
def test_sqlalchemy_cockroachdb_dialect_is_installed_and_chosen(dbapi: str) -> None:
    adapter = get_adapter(f"sa-core+{dbapi}")
    assert adapter.unavailable_reason_for("cockroachdb") is None
    info = ConnectInfo(kind="cockroachdb", url=make_url("cockroachdb://root@127.0.0.1:26257/defaultdb"))
    url = adapter.url_for(info)
    assert url.drivername.startswith("cockroachdb+")
    engine = create_engine(url) if dbapi != "asyncpg" else None  # building the engine loads the dialect
    if engine is not None:
        assert type(engine.dialect).__module__.startswith("sqlalchemy_cockroachdb")
        engine.dispose()


def test_default_run_lists_cockroach_and_neon_as_skipped_without_cells(tmp_path) -> None:
    from dbmatrix.matrix import MatrixRun
    from dbmatrix.targets.config import TargetResolver

    targets = TargetResolver(tmp_path, environ={}).select([], [])
    rows = {t.name: t for t in targets}
    for name, env in (("cockroach", "DBMATRIX_COCKROACH_URL"), ("neon", "DBMATRIX_NEON_URL")):
        assert rows[name].status == "skipped" and env in (rows[name].reason or "")
        assert rows[name].record().to_dict()["status"] == "skipped"
    run = MatrixRun(targets, ["psycopg"], [], [], tmp_path)
    assert {c.target for c in run.columns()} <= {"sqlite", "postgres-embedded"}


def test_neon_target_from_env_is_pooled_with_tls(tmp_path) -> None:
    from dbmatrix.targets.config import TargetResolver

    resolver = TargetResolver(tmp_path, environ={"DBMATRIX_NEON_URL": NEON_POOLED})
    (neon,) = [t for t in resolver.select([], []) if t.name == "neon"]
    assert neon.configured and neon.pooler == "transaction" and neon.url.query["sslmode"] == "require"
    assert "pw" not in neon.record().to_dict()["url"]


def test_named_without_url_is_one_line_error(tmp_path) -> None:
    from dbmatrix.errors import UsageError
    from dbmatrix.targets.config import TargetResolver

    with pytest.raises(UsageError, match="DBMATRIX_COCKROACH_URL"):
        TargetResolver(tmp_path, environ={}).select(["cockroach"], [])


# --- retry: dbmatrix.retry recognises exactly what cockroach_retry_reason does ------------------------------------
@pytest.mark.parametrize("message", [
    "restart transaction: TransactionRetryWithProtoRefreshError: WriteTooOldError: write for key",
    "TransactionRetryWithProtoRefreshError: ReadWithinUncertaintyIntervalError: read at time 1.1",
    "RETRY_SERIALIZABLE - failed preemptive refresh",
    "duplicate key value violates unique constraint \"t_pkey\"",
])
@pytest.mark.parametrize("code", [None, "40001", "23505"])
def test_retry_agrees_with_the_cockroach_classification(code: str | None, message: str) -> None:
    from dbmatrix.errors import DriverError
    from dbmatrix.retry import retry_code

    reason = cockroach_retry_reason(code, message)
    found = retry_code(DriverError(code, "E", message))
    assert (found is not None) == (reason is not None)
    assert found == (code if code == "40001" else reason)


# --- the lock observer: which SQL it runs, for which version (a fake DBAPI connection, no server) -----------------
class FakeCursor:
    def __init__(self, conn: FakeConn) -> None:
        self.conn, self.rows = conn, []

    def execute(self, sql: str, args: object = None) -> None:
        self.conn.executed.append((sql, args))
        self.rows = self.conn.answer(sql)

    def fetchall(self) -> list[tuple[object, ...]]:
        return self.rows

    def close(self) -> None:
        pass


class FakeConn:
    """Answers version() with ``full``, the blocked count with ``waiting``, the holders with ``holders``."""

    def __init__(self, full: str, waiting: int = 0, holders: tuple[str, ...] = ()) -> None:
        self.full, self.waiting, self.holders = full, waiting, holders
        self.executed: list[tuple[str, object]] = []
        self.closed = False

    def answer(self, sql: str) -> list[tuple[object, ...]]:
        if sql == "SELECT version()":
            return [(self.full,)]
        if sql.startswith("SELECT count(*)"):
            return [(self.waiting,)]
        if sql.startswith("SELECT DISTINCT hs.session_id"):
            return [(h,) for h in self.holders]
        return []

    def cursor(self) -> FakeCursor:
        return FakeCursor(self)

    def close(self) -> None:
        self.closed = True


def crdb(version: str) -> str:
    return f"CockroachDB CCL v{version} (x86_64-pc-linux-gnu, built 2025/01/01 00:00:00, go1.22.5)"


def fake_session(server_id: str | None, application_name: str = "dbmatrix-0123456789ab") -> object:
    from types import SimpleNamespace

    return SimpleNamespace(server_id=server_id, info=SimpleNamespace(application_name=application_name))


@pytest.mark.parametrize("version", ["21.2.17", "20.2.0"])
def test_observer_refuses_versions_without_cluster_locks(version: str) -> None:
    from dbmatrix.engines import CapabilityMissing
    from dbmatrix.engines.cockroachdb import CockroachObserver

    conn = FakeConn(crdb(version))
    with pytest.raises(CapabilityMissing, match=rf"cockroachdb {version} lacks .*cluster_locks.*needs 22\.1\+"):
        CockroachObserver.open(conn)
    assert conn.closed  # the admin connection does not leak
    assert not any("crdb_internal" in sql for sql, _ in conn.executed)


def test_observer_refuses_a_server_it_cannot_date() -> None:
    from dbmatrix.engines import CapabilityMissing
    from dbmatrix.engines.cockroachdb import CockroachObserver

    with pytest.raises(CapabilityMissing, match=r"cockroachdb \? lacks"):
        CockroachObserver.open(FakeConn("PostgreSQL 15.20 on x86_64-pc-linux-gnu"))


@pytest.mark.parametrize(("version", "unsafe"), [("22.1.0", False), ("24.1.0", False), ("25.3.4", False),
                                                 ("25.4.0", True), ("26.1.2", True)])
def test_observer_opens_crdb_internal_only_where_it_is_gated(version: str, unsafe: bool) -> None:
    from dbmatrix.engines.cockroachdb import CockroachObserver

    conn = FakeConn(crdb(version))
    observer = CockroachObserver.open(conn)
    assert observer.version == parse_version(version) and not conn.closed
    setup = [sql for sql, _ in conn.executed if sql.startswith("SET")]
    assert setup == (["SET allow_unsafe_internals = true"] if unsafe else [])
    observer.close()
    assert conn.closed


def test_observer_asks_cluster_locks_for_the_sessions_ungranted_request() -> None:
    from dbmatrix.engines.cockroachdb import CockroachObserver

    sid = "17056bb7e47a6ec00000000000000003"
    conn = FakeConn(crdb("24.1.0"), waiting=1, holders=("17056bb535ead9a00000000000000001",))
    observer = CockroachObserver.open(conn)
    assert observer.is_blocked(fake_session(sid))  # type: ignore[arg-type]
    sql, args = conn.executed[-1]
    assert "crdb_internal.cluster_locks" in sql and "NOT l.granted" in sql and "s.kv_txn = l.txn_id::STRING" in sql
    assert "s.session_id = %(id)s" in sql and args == {"id": sid}
    assert observer.waits_for(fake_session(sid)) == ["17056bb535ead9a00000000000000001"]  # type: ignore[arg-type]
    sql, _ = conn.executed[-1]
    assert "h.lock_key = w.lock_key AND h.granted" in sql and "NOT w.granted" in sql
    conn.waiting = 0
    assert not observer.is_blocked(fake_session(sid))  # type: ignore[arg-type]


def test_observer_finds_a_pooled_session_by_its_application_name() -> None:
    from dbmatrix.engines.cockroachdb import CockroachObserver

    conn = FakeConn(crdb("24.1.0"))
    observer = CockroachObserver.open(conn)
    assert not observer.is_blocked(fake_session(None, "dbmatrix-abc"))  # type: ignore[arg-type]
    sql, args = conn.executed[-1]
    assert "s.application_name = %(name)s AND s.kv_txn IS NOT NULL" in sql and args == {"name": "dbmatrix-abc"}


def test_a_session_is_known_by_its_session_id_not_a_crdb_internal_builtin() -> None:
    from dbmatrix.engines import engine_for

    engine = engine_for("cockroachdb")
    assert engine.server_id_query == "SHOW session_id"
    assert engine_for("postgresql", "cockroachdb").server_id_query == "SHOW session_id"


def test_capability_missing_makes_the_cell_unsupported() -> None:
    from dbmatrix.cell import Cell
    from dbmatrix.engines import CapabilityMissing
    from dbmatrix.targets.model import Target

    target = Target("crdb", "cockroachdb", make_url("cockroachdb://root@h:26257/defaultdb"), engine="cockroachdb",
                    server_version="21.2.17")
    cell = Cell("sql.select_for_update", target, get_adapter("psycopg"))
    result = cell.error(CapabilityMissing("lock_wait_observation", "cockroachdb", target.version))
    assert result.outcome == "unsupported" and result.mechanism == "error:CapabilityMissing"
    assert "cockroachdb 21.2.17 lacks" in (result.detail or "") and "(needs 22.1+)" in (result.detail or "")
