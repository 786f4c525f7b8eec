"""Timing primitives and the statistics of a benchmark: latency histograms (HdrHistogram) and repeat statistics.

Latencies are collected as plain nanosecond integers in the timed loop (a list append is the cheapest thing to do
per call) and folded into an HdrHistogram afterwards, outside the timed window. Histograms travel between
processes in HdrHistogram's own compressed encoding and are merged with ``decode_and_add``.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence

from hdrh.histogram import HdrHistogram

# 1 ns .. 10 minutes at 3 significant digits: a 3 us sqlite3 call and a slow commit fit the same histogram.
LOWEST_NS, HIGHEST_NS, SIGNIFICANT_DIGITS = 1, 600 * 10**9, 3

# Two-sided 95% Student t quantiles by degrees of freedom (no scipy dependency for one table).
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
        12: 2.179, 15: 2.131, 20: 2.086, 30: 2.042}


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_NS, HIGHEST_NS, SIGNIFICANT_DIGITS)


def histogram_of(samples_ns: Iterable[int]) -> HdrHistogram:
    """An HdrHistogram of nanosecond samples; equal values are recorded once with their count (much faster)."""
    hist = new_histogram()
    for value, count in Counter(samples_ns).items():
        hist.record_value(min(max(value, LOWEST_NS), HIGHEST_NS), count)
    return hist


def merge_encoded(encoded: Iterable[str | bytes]) -> HdrHistogram:
    """One histogram from the encodings of several (one per worker and repeat)."""
    hist = new_histogram()
    for enc in encoded:
        hist.decode_and_add(enc)
    return hist


def percentiles_us(hist: HdrHistogram) -> dict[str, float]:
    """p50/p99/p99.9 in microseconds (monotonic by construction of the histogram)."""
    return {
        "p50_us": round(hist.get_value_at_percentile(50.0) / 1000.0, 2),
        "p99_us": round(hist.get_value_at_percentile(99.0) / 1000.0, 2),
        "p999_us": round(hist.get_value_at_percentile(99.9) / 1000.0, 2),
    }


def percentile_curve_us(hist: HdrHistogram) -> list[list[float]]:
    """``[[percentile, us], ...]`` at fixed percentiles, for latency curves in the report."""
    points = (50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.99)
    return [[p, round(hist.get_value_at_percentile(p) / 1000.0, 2)] for p in points]


def t95(dof: int) -> float:
    if dof <= 0:
        return math.nan
    best = max(k for k in _T95 if k <= dof) if dof < 30 else 30
    return _T95[best] if dof < 30 else 1.96 + (2.042 - 1.96) * 30 / dof


def mean_ci95(values: Sequence[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% confidence interval (Student t; 0 for a single value)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, t95(len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))


def ratio_ci95(num: Sequence[float], den: Sequence[float]) -> tuple[float, float, float]:
    """``mean(num) / mean(den)`` and its 95% interval ``(ratio, lo, hi)``, from each side's repeats: the log of the
    ratio of two means has the variance of both logs (delta method), with Welch's degrees of freedom for the t
    quantile, as ``mean_ci95`` takes Student t for one mean. A side with one value adds no variance."""
    ma, mb = statistics.fmean(num), statistics.fmean(den)
    ratio = ma / mb
    va = statistics.variance(num) / (len(num) * ma * ma) if len(num) > 1 else 0.0
    vb = statistics.variance(den) / (len(den) * mb * mb) if len(den) > 1 else 0.0
    if va + vb == 0:
        return ratio, ratio, ratio
    parts = [v * v / (n - 1) for v, n in ((va, len(num)), (vb, len(den))) if n > 1]
    dof = max(1, int((va + vb) ** 2 / sum(parts)))
    spread = math.exp(t95(dof) * math.sqrt(va + vb))
    return ratio, ratio / spread, ratio * spread


def cv_pct(values: Sequence[float]) -> float:
    """Coefficient of variation in percent (sample standard deviation over mean)."""
    if len(values) < 2 or statistics.fmean(values) == 0:
        return 0.0
    return 100.0 * statistics.stdev(values) / statistics.fmean(values)


def intervals_overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Do the intervals ``mean ± half`` of ``a`` and ``b`` overlap? (``--compare``'s noise test)."""
    (ma, ha), (mb, hb) = a, b
    return abs(ma - mb) <= ha + hb
