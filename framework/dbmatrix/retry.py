"""Run a transaction function again when the engine asks for it: bounded, jittered retries.

The errors that mean "your transaction lost a race, run it again" differ per engine: PostgreSQL 40001
(serialization failure) and 40P01 (deadlock), MySQL/MariaDB 1213 (deadlock) and 1205 (lock wait timeout),
MariaDB 1020 ("Record has changed since last read", its snapshot-isolation write conflict), SQLite BUSY,
CockroachDB 40001 "restart transaction" (recognised by ``targets.hosted.cockroach_retry_reason``, also when a
driver lost the SQLSTATE and only the message says so). Everything else propagates at once.

The function must run the *whole* transaction (begin ... commit) so that a retry starts from a clean slate::

    def transfer(conn):
        with conn.transaction(): ...

    stats = RetryStats()
    run_with_retry(lambda: transfer(conn), stats=stats)        # sync
    await arun_with_retry(lambda: atransfer(conn), stats=stats)  # async: fn returns an awaitable

Delays grow exponentially from ``base_delay`` up to ``max_delay`` with full jitter (a uniform draw below the
cap), so that transactions that collided once do not collide again in lockstep.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from . import engines  # noqa: F401  (loads every engine class, so every_engine_codes sees them all)
from .drivers.base import default_normalise
from .engines.base import every_engine_codes
from .targets.hosted import cockroach_retry_reason

T = TypeVar("T")

# Each engine names its own (Engine.retry_codes); an exception does not say which engine raised it, so any
# engine's code counts.
RETRYABLE_CODES = every_engine_codes("retry_codes")
RETRYABLE_MESSAGES = ("database is locked",)  # sqlite3 before 3.11 codes


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 10  # total tries, the first included
    base_delay: float = 0.005
    max_delay: float = 0.5

    def delay(self, retry: int, rng: random.Random) -> float:
        """Full jitter: uniform in [0, min(max_delay, base_delay * 2**retry)]."""
        return rng.uniform(0.0, min(self.max_delay, self.base_delay * (2 ** retry)))


@dataclass
class RetryStats:
    """What the retries cost: calls made, retries taken, by error code; ``gave_up`` when attempts ran out."""

    calls: int = 0
    retries: int = 0
    gave_up: int = 0
    codes: Counter[str] = field(default_factory=Counter)
    slept_s: float = 0.0


def retry_code(exc: BaseException) -> str | None:
    """The error code when ``exc`` asks for the transaction to be run again, else None.

    Works on raw driver exceptions, SQLAlchemy's wrappers and dbmatrix's DriverError alike. A CockroachDB retry
    error without its SQLSTATE is named by its reason ('RETRY_SERIALIZABLE', 'restart transaction', ...)."""
    err = default_normalise(exc)
    if err is None:
        return None
    # MySQL drivers set both an errno (args[0]) and a generic SQLSTATE; the errno is the precise one.
    errno = next((str(e.args[0]) for e in (exc, getattr(exc, "orig", None))
                  if isinstance(e, BaseException) and e.args and isinstance(e.args[0], int)), None)
    for code in (errno, str(err.code) if err.code is not None else None):
        if code in RETRYABLE_CODES:
            return code
    code = errno or (str(err.code) if err.code is not None else None)
    crdb = cockroach_retry_reason(code, err.message or "")
    if crdb is not None:
        return crdb
    message = (err.message or "").lower()
    hit = next((m for m in RETRYABLE_MESSAGES if m in message), None)
    return (code or hit) if hit else None


def _pause_or_raise(exc: Exception, attempt: int, policy: RetryPolicy, stats: RetryStats,
                    rng: random.Random) -> float:
    """After a failed try: the pause before the next one, or re-raise ``exc`` (not retryable, or no tries left)."""
    code = retry_code(exc)
    if code is None:
        raise exc
    if attempt + 1 >= policy.attempts:
        stats.gave_up += 1
        raise exc
    stats.retries += 1
    stats.codes[code] += 1
    pause = policy.delay(attempt, rng)
    stats.slept_s += pause
    return pause


def run_with_retry(fn: Callable[[], T], policy: RetryPolicy = RetryPolicy(), stats: RetryStats | None = None,
                   rng: random.Random | None = None, sleep: Callable[[float], None] = time.sleep) -> T:
    """Call ``fn`` until it returns, retrying retryable errors up to ``policy.attempts`` tries in all."""
    stats = stats if stats is not None else RetryStats()
    rng = rng or random.Random()
    attempt = 0
    while True:
        stats.calls += 1
        try:
            return fn()
        except Exception as exc:
            sleep(_pause_or_raise(exc, attempt, policy, stats, rng))
        attempt += 1


async def arun_with_retry(fn: Callable[[], Awaitable[T]], policy: RetryPolicy = RetryPolicy(),
                          stats: RetryStats | None = None, rng: random.Random | None = None) -> T:
    """``run_with_retry`` for coroutines: ``fn()`` returns an awaitable; waits with ``asyncio.sleep``."""
    stats = stats if stats is not None else RetryStats()
    rng = rng or random.Random()
    attempt = 0
    while True:
        stats.calls += 1
        try:
            return await fn()
        except Exception as exc:
            await asyncio.sleep(_pause_or_raise(exc, attempt, policy, stats, rng))
        attempt += 1
