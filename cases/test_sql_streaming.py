"""sql.stream_large_result: can a large result be read with bounded client memory, rows arriving as they come?

200,000 rows (``DBMATRIX_STREAM_ROWS``; ~100 bytes each) generated on the server are read twice through the same
session: with the driver's streaming API (``Session.stream``: a server-side cursor, an unbuffered MySQL cursor, SQLite's
statement stepping, SQLAlchemy's ``stream_results``/``yield_per``) and with a plain ``execute`` that fetches
everything into a list. Both reads must give exactly the generated rows (count, every id once, every row's text).

Memory is measured in separate passes so one does not disturb the other, and both numbers decide:

* Python heap: ``tracemalloc`` peak growth while reading. It sees every Python object a driver builds, but not
  C-level buffers (libpq's PGresult, libmariadb's result set, an asyncio receive buffer).
* Process: peak RSS growth, sampled from ``VmRSS`` every 2 ms while reading, after ``gc.collect()`` and glibc's
  ``malloc_trim(0)`` hand freed memory back to the system (so an earlier cell's freed arenas cannot hide growth).
  It sees C buffers too.

The stream is read twice: by a consumer that keeps up, and by a slow one (2 ms per 1000-row batch), since a
driver that never stops reading the socket buffers the result only when the consumer falls behind.

``supported``: the streamed read is exact, and its heap and RSS peaks stay under 10 % of the fetch-everything
peaks for both consumers. ``differs``: rows are wrong, or the "streaming" API buffers the result (saying for
which consumer, with the numbers). Time to the first row vs the
total time shows whether rows arrive before the query completes (metrics ``first_row_ms`` / ``total_ms``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from dbmatrix.casekit import requires
from dbmatrix.errors import DriverError

# 200,000 rows by default; a bounded CI run may lower it (DBMATRIX_STREAM_ROWS) — a full fetch must still grow
# memory well past MIN_FULL_RSS_KB for the comparison to mean something (100,000 rows: ~20 MB).
N = min(max(int(os.environ.get("DBMATRIX_STREAM_ROWS", "200000")), 50_000), 200_000)
PAD = "x" * 90  # + the id's digits: ~100 bytes per row
BATCH = 1000
BOUND = 0.10  # streaming may use at most this share of what fetching everything costs
RSS_SAMPLE_S = 0.002
SLOW_S = 0.002  # the slow consumer's work per batch: 200 batches, 0.4 s in all
MIN_FULL_RSS_KB = 4096  # below this the full fetch's RSS growth is too small to compare with

_DIGITS = (
    "(SELECT 0 AS d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 "
    "UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9)"
)
# Rows generated on the server, in each engine's idiom, in id order without ORDER BY (a sort would hold every row
# back until the last one is produced, which is exactly what this case must not measure).
SERIES = {
    "postgresql": f"SELECT g AS id, '{PAD}' || g AS pad FROM generate_series(1, {N}) AS g",
    "cockroachdb": f"SELECT g AS id, '{PAD}' || g::STRING AS pad FROM generate_series(1, {N}) AS g",
    "mariadb": f"SELECT seq AS id, CONCAT('{PAD}', seq) AS pad FROM seq_1_to_{N}",  # the SEQUENCE engine
    # MySQL has no sequence engine and caps recursive CTEs at 1000 rows by default: 10^5 x 2 from a digits table
    "mysql": (
        f"SELECT id, CONCAT('{PAD}', id) AS pad FROM (SELECT 1 + a.d + 10 * b.d + 100 * c.d + 1000 * e.d"
        f" + 10000 * f.d + 100000 * g.d AS id FROM {_DIGITS} a, {_DIGITS} b, {_DIGITS} c, {_DIGITS} e, {_DIGITS} f,"
        f" (SELECT 0 AS d UNION ALL SELECT 1) g) s WHERE id <= {N}"
    ),
    "sqlite": (
        f"WITH RECURSIVE s(id) AS (SELECT 1 UNION ALL SELECT id + 1 FROM s WHERE id < {N})"
        f" SELECT id, '{PAD}' || id AS pad FROM s"
    ),
}

T = TypeVar("T")


@dataclass
class Read:
    """What one read of the result gave: the check and the timings."""

    problem: str | None  # None when the rows are exactly the generated ones
    first_row_ms: float
    total_ms: float


class Seen:
    """Which ids a read has seen: one preallocated byte per id, marked with the read's number, so checking that
    every id comes exactly once allocates nothing inside the measured reads."""

    def __init__(self) -> None:
        self.marks = bytearray(N + 1)
        self.read = 0

    def next_read(self) -> int:
        self.read += 1
        return self.read


def _read(rows: Iterable[Any], started: float, seen: Seen) -> Read:
    """Consume ``rows``, checking each one: an int id in 1..N seen for the first time, with its exact text."""
    mark, marks = seen.next_read(), seen.marks
    first_row_ms, count, wrong = None, 0, None
    for row in rows:
        if first_row_ms is None:
            first_row_ms = (time.perf_counter() - started) * 1000.0
        count += 1
        id_, pad = row
        if wrong is None:
            if isinstance(id_, int) and 1 <= id_ <= N and marks[id_] != mark and pad == f"{PAD}{id_}":
                marks[id_] = mark
            else:
                wrong = f"row {count}: {tuple(row)!r}"
    total_ms = (time.perf_counter() - started) * 1000.0
    problem = wrong or (None if count == N else f"{count} rows, expected {N}")
    return Read(problem, round(first_row_ms or total_ms, 3), round(total_ms, 3))


def _traced_peak(fn: Callable[[], T]) -> tuple[T, int]:
    """``fn()`` and the growth of the traced Python heap at its peak, in bytes."""
    gc.collect()
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        if not was_tracing:
            tracemalloc.stop()
    return result, peak - base


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise KeyError("VmRSS")


def _trim() -> None:
    """Free what can be freed and hand it back to the system, so RSS growth starts from a clean base."""
    gc.collect()
    libc = ctypes.util.find_library("c")
    trim = getattr(ctypes.CDLL(libc), "malloc_trim", None) if libc else None
    if trim is not None:
        trim(0)


def _rss_peak(fn: Callable[[], T]) -> tuple[T, int]:
    """``fn()`` and the growth of the process's RSS at its peak while ``fn`` ran, in KiB (sampled every 2 ms)."""
    _trim()
    before = _rss_kb()
    peak, done = [before], threading.Event()

    def sample() -> None:
        while not done.wait(RSS_SAMPLE_S):
            peak[0] = max(peak[0], _rss_kb())

    sampler = threading.Thread(target=sample, name="dbm-rss", daemon=True)
    sampler.start()
    try:
        result = fn()
    finally:
        peak[0] = max(peak[0], _rss_kb())
        done.set()
        sampler.join(timeout=5)
    return result, max(peak[0] - before, 0)


def _slowly(rows: Iterable[Any]) -> Iterator[Any]:
    """``rows``, pausing SLOW_S after every BATCH rows: a consumer that does some work per batch."""
    for i, row in enumerate(rows, start=1):
        yield row
        if i % BATCH == 0:
            time.sleep(SLOW_S)


def _mb(n_bytes: float) -> str:
    return f"{n_bytes / 1e6:.2f} MB"


@requires("server_side_cursors")
def test_stream_large_result(cell):
    """200,000 rows read through the streaming API arrive exactly, with a heap peak under 10 % of a full fetch."""
    # The five passes collect garbage before each measurement; in a long run the process already holds millions of
    # objects (every earlier cell's), and scanning them all each time cost several seconds per cell. Frozen, they
    # are left out of every collection: what this cell's reads leave behind is still collected before each pass.
    gc.freeze()
    try:
        _stream_large_result(cell)
    finally:
        gc.unfreeze()


def _stream_large_result(cell):
    s = cell.connect()
    sql = SERIES[cell.engine]
    seen = Seen()

    def streamed() -> Read:
        started = time.perf_counter()
        return _read(s.stream(sql, batch=BATCH), started, seen)

    def streamed_slowly() -> Read:
        started = time.perf_counter()
        return _read(_slowly(s.stream(sql, batch=BATCH)), started, seen)

    def fetched() -> Read:
        started = time.perf_counter()
        return _read(s.execute(sql).rows, started, seen)

    try:
        stream, stream_rss_kb = _rss_peak(streamed)  # timings from the untraced passes
    except DriverError as exc:
        cell.unsupported(exc)
        return
    slow, slow_rss_kb = _rss_peak(streamed_slowly)
    full, full_rss_kb = _rss_peak(fetched)
    _, stream_peak = _traced_peak(streamed)
    _, full_peak = _traced_peak(fetched)

    metrics = {
        "rows": N,
        "first_row_ms": stream.first_row_ms,
        "total_ms": stream.total_ms,
        "peak_bytes": stream_peak,
        "full_peak_bytes": full_peak,
        "full_total_ms": full.total_ms,
        "rss_kb": stream_rss_kb,
        "slow_rss_kb": slow_rss_kb,
        "full_rss_kb": full_rss_kb,
    }
    share = stream_peak / full_peak if full_peak > 0 else float("inf")
    rss_measured = full_rss_kb >= MIN_FULL_RSS_KB
    rss_share = stream_rss_kb / full_rss_kb if rss_measured else 0.0
    slow_share = slow_rss_kb / full_rss_kb if rss_measured else 0.0
    numbers = (
        f"first row after {stream.first_row_ms:.0f} ms of {stream.total_ms:.0f} ms (full fetch {full.total_ms:.0f} ms);"
        f" Python heap peak {_mb(stream_peak)} streaming vs {_mb(full_peak)} fetching all ({share:.1%});"
        f" RSS peak growth {stream_rss_kb / 1024:.1f} MiB streaming, {slow_rss_kb / 1024:.1f} MiB with a slow"
        f" consumer ({SLOW_S * 1000:.0f} ms per {BATCH}-row batch), {full_rss_kb / 1024:.1f} MiB fetching all"
        + ("" if rss_measured else " (too small to compare: decided on the heap alone)")
    )
    problems = [f"{what} {r.problem}" for what, r in (("streamed", stream), ("slowly streamed", slow),
                                                      ("fetched", full)) if r.problem]
    if problems:
        cell.differs(f"rows differ: {'; '.join(problems)}; {numbers}", metrics=metrics)
    elif share >= BOUND or rss_share >= BOUND:
        # "fast" is as fast as this process could read on this machine: a driver that never stops reading the
        # socket is bounded only while its consumer keeps up, and a loaded host is already too slow for that
        cell.differs(f"the streaming API buffered the result with a consumer doing no work per row: {numbers}",
                     metrics=metrics)
    elif slow_share >= BOUND:
        cell.differs(f"bounded only while the consumer keeps up; a slow consumer makes it buffer: {numbers}",
                     metrics=metrics)
    else:
        cell.supported(f"{N} rows exact; {numbers}", metrics=metrics)
