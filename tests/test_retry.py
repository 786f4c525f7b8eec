"""dbmatrix.retry: which errors are retried, bounded attempts, and the proof on live servers — N concurrent
transfer transactions at SERIALIZABLE all finish, the total is conserved and no transfer is lost."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import threading
import time
import uuid

import pytest

from dbmatrix.errors import DriverError
from dbmatrix.retry import RetryPolicy, RetryStats, arun_with_retry, retry_code, run_with_retry

ACCOUNTS = 4
START = 100
WORKERS = 6
TRANSFERS = 4  # per worker


@pytest.mark.parametrize("code", ["40001", "40P01", "1213", "1205", "1020", "SQLITE_BUSY", "SQLITE_BUSY_SNAPSHOT"])
def test_retryable_codes(code):
    assert retry_code(DriverError(code, "E", "x")) == code


def test_cockroach_restart_message_and_plain_errors():
    restart = DriverError(None, "E", "TransactionRetryError: restart transaction: ...")
    assert retry_code(restart) == "restart transaction"
    assert retry_code(DriverError("23505", "UniqueViolation", "duplicate key")) is None
    assert retry_code(ValueError("not a database error")) is None


@pytest.mark.parametrize(
    ("message", "code"),
    [
        # drivers that lose the SQLSTATE: only the message is left, and it names CockroachDB's reason
        ("TransactionRetryWithProtoRefreshError: ReadWithinUncertaintyIntervalError: read at time 1.1 encountered "
         "previous write", "ReadWithinUncertaintyIntervalError"),
        ("restart transaction: TransactionRetryWithProtoRefreshError: TransactionRetryError: retry txn "
         "(RETRY_SERIALIZABLE - failed preemptive refresh)", "RETRY_SERIALIZABLE"),
    ],
)
def test_codeless_cockroach_retry_errors_are_named_by_their_reason(message, code):
    assert retry_code(DriverError(None, "E", message)) == code


def test_a_code_that_is_not_a_retry_stays_fatal_whatever_its_text():
    # CockroachDB asks for a retry with 40001 only; another code is another error even if it quotes the phrase
    assert retry_code(DriverError("23505", "UniqueViolation", "restart transaction: duplicate key")) is None


def test_cockroach_messages_are_recognised_by_the_hosted_module(monkeypatch):
    """One source of truth: retry_code asks targets.hosted.cockroach_retry_reason about CockroachDB's text."""
    import dbmatrix.retry as retry

    seen = []
    monkeypatch.setattr(retry, "cockroach_retry_reason", lambda code, msg: seen.append((code, msg)) or "STUB")
    assert retry_code(DriverError(None, "E", "anything at all")) == "STUB"
    assert seen == [(None, "anything at all")]


def test_real_sqlite_busy_is_retryable(tmp_path):
    path = tmp_path / "busy.db"
    a = sqlite3.connect(path, isolation_level=None, timeout=0)
    b = sqlite3.connect(path, isolation_level=None, timeout=0)
    a.execute("create table t (k int)")
    a.execute("begin immediate")
    with pytest.raises(sqlite3.OperationalError) as info:
        b.execute("begin immediate")
    a.execute("rollback")
    assert retry_code(info.value) in ("SQLITE_BUSY", "database is locked")


def test_attempts_are_bounded_and_counted():
    stats = RetryStats()
    calls = []

    def always_conflicts():
        calls.append(1)
        raise DriverError("40001", "SerializationFailure", "could not serialize access")

    with pytest.raises(DriverError):
        run_with_retry(always_conflicts, RetryPolicy(attempts=3), stats, sleep=lambda s: None)
    assert len(calls) == 3 and stats.retries == 2 and stats.gave_up == 1 and stats.codes["40001"] == 2


def test_other_errors_are_not_retried():
    stats = RetryStats()
    with pytest.raises(DriverError):
        run_with_retry(lambda: (_ for _ in ()).throw(DriverError("23505", "U", "dup")), stats=stats)
    assert stats.calls == 1 and stats.retries == 0


def test_jitter_stays_below_the_exponential_cap():
    policy, rng = RetryPolicy(base_delay=0.01, max_delay=0.05), random.Random(1)
    for retry in range(8):
        assert 0 <= policy.delay(retry, rng) <= min(0.05, 0.01 * 2**retry)


# --- live: concurrent transfers at SERIALIZABLE ---------------------------------------------------------------
def connect(kind: str):
    if kind == "postgresql":
        import psycopg

        return psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True, connect_timeout=10)
    import pymysql

    return pymysql.connect(host="127.0.0.1", user="root", database="test", autocommit=True, connect_timeout=10)


BEGIN = {"postgresql": ["begin isolation level serializable", "set local lock_timeout = '10s'"],
         "mysql": ["set session innodb_lock_wait_timeout = 10", "set transaction isolation level serializable",
                   "start transaction"]}


def transfer(conn, kind: str, table: str, src: int, dst: int, amount: int) -> None:
    """One whole transaction: read both balances, write back the client-computed new ones."""
    cur = conn.cursor()
    try:
        for sql in BEGIN[kind]:
            cur.execute(sql)
        balances = {}
        for k in (src, dst):
            cur.execute(f"select v from {table} where k = {k}")
            balances[k] = cur.fetchone()[0]
        time.sleep(0.002)  # widen the window so the transactions really overlap
        cur.execute(f"update {table} set v = {balances[src] - amount} where k = {src}")
        cur.execute(f"update {table} set v = {balances[dst] + amount} where k = {dst}")
        cur.execute("commit")
    except BaseException:
        try:
            cur.execute("rollback")
        except Exception:
            pass  # a broken connection rolls back on its own; the original error is what matters
        raise


@pytest.mark.parametrize("kind", ["postgresql", "mysql"])
def test_concurrent_transfers_all_finish_with_retries(kind):
    table = f"retry_{uuid.uuid4().hex[:10]}"
    admin = connect(kind)
    cur = admin.cursor()
    cur.execute(f"create table {table} (k integer primary key, v integer not null)")
    try:
        cur.execute(f"insert into {table} values " + ", ".join(f"({k}, {START})" for k in range(ACCOUNTS)))
        stats, errors, moved = RetryStats(), [], [0] * ACCOUNTS
        lock, barrier = threading.Lock(), threading.Barrier(WORKERS, timeout=30)

        def worker(seed: int) -> None:
            rng = random.Random(seed)
            conn = connect(kind)
            try:
                barrier.wait()
                for _ in range(TRANSFERS):
                    src, dst = rng.sample(range(ACCOUNTS), 2)
                    amount = rng.randint(1, 9)
                    own = RetryStats()
                    run_with_retry(lambda s=src, d=dst, a=amount: transfer(conn, kind, table, s, d, a),
                                   RetryPolicy(attempts=30), own)
                    with lock:
                        moved[src] -= amount
                        moved[dst] += amount
                        stats.calls += own.calls
                        stats.retries += own.retries
                        stats.codes.update(own.codes)
            except Exception as exc:  # surfaced below: a worker that gave up fails the test
                errors.append(exc)
            finally:
                conn.close()

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(WORKERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not any(t.is_alive() for t in threads), "a worker did not finish within 120 s"
        assert errors == []
        cur.execute(f"select k, v from {table} order by k")
        final = {k: v for k, v in cur.fetchall()}
        assert sum(final.values()) == ACCOUNTS * START  # conservation
        assert final == {k: START + moved[k] for k in range(ACCOUNTS)}  # every committed transfer landed
        assert stats.calls == WORKERS * TRANSFERS + stats.retries
        assert stats.retries > 0, "the transfers never conflicted, so nothing proved the retries"
        expected = {"postgresql": {"40001", "40P01"}, "mysql": {"1213", "1205"}}[kind]
        assert set(stats.codes) <= expected
        print(f"{kind}: {WORKERS * TRANSFERS} transfers, {stats.retries} retries {dict(stats.codes)}")
    finally:
        cur.execute(f"drop table {table}")
        admin.close()


def test_async_transfers_with_asyncpg():
    import asyncpg

    table = f"retry_{uuid.uuid4().hex[:10]}"

    async def main() -> RetryStats:
        admin = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres", timeout=10)
        await admin.execute(f"create table {table} (k integer primary key, v integer not null)")
        try:
            await admin.execute(f"insert into {table} values " + ", ".join(f"({k}, {START})" for k in range(ACCOUNTS)))
            conns = [await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres", timeout=10)
                     for _ in range(WORKERS)]
            stats = RetryStats()

            async def one(conn, src: int, dst: int, amount: int) -> None:
                async with conn.transaction(isolation="serializable"):
                    a = await conn.fetchval(f"select v from {table} where k = $1", src)
                    b = await conn.fetchval(f"select v from {table} where k = $1", dst)
                    await asyncio.sleep(0.002)
                    await conn.execute(f"update {table} set v = $1 where k = $2", a - amount, src)
                    await conn.execute(f"update {table} set v = $1 where k = $2", b + amount, dst)

            async def worker(conn, seed: int) -> None:
                rng = random.Random(seed)
                for _ in range(TRANSFERS):
                    src, dst = rng.sample(range(ACCOUNTS), 2)
                    await arun_with_retry(lambda s=src, d=dst: one(conn, s, d, 5), RetryPolicy(attempts=30), stats)

            try:
                await asyncio.wait_for(asyncio.gather(*(worker(c, i) for i, c in enumerate(conns))), 120)
            finally:
                for c in conns:
                    await c.close()
            total = await admin.fetchval(f"select sum(v) from {table}")
            assert total == ACCOUNTS * START
            return stats
        finally:
            await admin.execute(f"drop table {table}")
            await admin.close()

    stats = asyncio.run(main())
    assert stats.calls == WORKERS * TRANSFERS + stats.retries and stats.retries > 0
    assert set(stats.codes) <= {"40001", "40P01"}
