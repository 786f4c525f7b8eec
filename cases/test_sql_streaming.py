"""sql.stream_large_result: can a large result be read with bounded client memory, rows arriving as they come?

200,000 rows (~100 bytes each) generated on the server are read twice through the same session: with the
driver's streaming API (``Session.stream``: a server-side cursor, an unbuffered MySQL cursor, SQLite's
statement stepping, SQLAlchemy's ``stream_results``/``yield_per``) and with a plain ``execute`` that fetches
everything into a list. Both reads must give exactly the generated rows (count, every id once, every row's text).

Memory is measured twice, in separate passes so one does not disturb the other:

* Python heap: ``tracemalloc`` peak growth while reading (the deciding number). It sees every Python object a
  driver builds, but not C-level buffers (libpq's PGresult, libmariadb's result set).
* Process: peak RSS growth, from ``VmHWM`` in /proc/self/status after resetting it through /proc/self/clear_refs
  (or ``ru_maxrss`` where that is not possible, which only sees growth beyond the process's earlier peak). It
  also sees C buffers, but freed memory that the allocator keeps makes it noisy, so it is reported, not judged.

``supported``: the streamed read is exact and its heap peak stays under 10 % of the fetch-everything peak.
``differs``: rows are wrong, or the "streaming" API buffers the whole result anyway. Time to the first row vs the
total time shows whether rows arrive before the query completes (metrics ``first_row_ms`` / ``total_ms``).
"""

from __future__ import annotations

import gc
import resource
import time
import tracemalloc
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from dbmatrix.casekit import requires
from dbmatrix.errors import DriverError

N = 200_000
PAD = "x" * 90  # + the id's digits: ~100 bytes per row
BATCH = 1000
BOUND = 0.10  # streaming may use at most this share of what fetching everything costs

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
        f" (SELECT 0 AS d UNION ALL SELECT 1) g) s"
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


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where /proc does not allow it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        _status_kb("VmHWM")
        return True
    except (OSError, KeyError):
        return False


def _rss_peak(fn: Callable[[], T]) -> tuple[T, int, str]:
    """``fn()``, the growth of the process's peak RSS in KiB, and how it was measured."""
    gc.collect()
    if _reset_peak_rss():
        before = _status_kb("VmRSS")
        result = fn()
        return result, _status_kb("VmHWM") - before, "VmHWM"
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = fn()
    return result, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before, "ru_maxrss"


def _mb(n_bytes: float) -> str:
    return f"{n_bytes / 1e6:.2f} MB"


@requires("server_side_cursors")
def test_stream_large_result(cell):
    """200,000 rows read through the streaming API arrive exactly, with a heap peak under 10 % of a full fetch."""
    s = cell.connect()
    sql = SERIES[cell.engine]
    seen = Seen()

    def streamed() -> Read:
        started = time.perf_counter()
        return _read(s.stream(sql, batch=BATCH), started, seen)

    def fetched() -> Read:
        started = time.perf_counter()
        return _read(s.execute(sql).rows, started, seen)

    try:
        stream, stream_rss_kb, rss_method = _rss_peak(streamed)  # timings from the untraced passes
    except DriverError as exc:
        cell.unsupported(exc)
        return
    full, full_rss_kb, _ = _rss_peak(fetched)
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
        "full_rss_kb": full_rss_kb,
    }
    share = stream_peak / full_peak if full_peak > 0 else float("inf")
    numbers = (
        f"first row after {stream.first_row_ms:.0f} ms of {stream.total_ms:.0f} ms (full fetch {full.total_ms:.0f} ms);"
        f" Python heap peak (tracemalloc) {_mb(stream_peak)} streaming vs {_mb(full_peak)} fetching all"
        f" ({share:.1%}); peak RSS growth ({rss_method}) {stream_rss_kb / 1024:.1f} MiB vs {full_rss_kb / 1024:.1f} MiB"
    )
    if stream.problem or full.problem:
        problems = f"streamed {stream.problem or 'exact'}, fetched {full.problem or 'exact'}"
        cell.differs(f"rows differ: {problems}; {numbers}", metrics=metrics)
    elif share >= BOUND:
        cell.differs(f"the streaming API buffers the result: {numbers}", metrics=metrics)
    else:
        cell.supported(f"{N} rows exact; {numbers}", metrics=metrics)
