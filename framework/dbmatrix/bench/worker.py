"""A load-generator worker process: one connection, one operation, timed loops on command.

The parent (``runner``) starts workers with the ``spawn`` method and talks to each over a pipe: ``open`` a session
and build the operation, ``warmup`` (until the rate settles), ``run`` a timed repeat starting at a shared monotonic
instant, ``overhead`` (the harness's loop alternated with a bare loop of the same call, bounded in time), ``profile``
one repeat under cProfile, ``close``. With ``--rate`` a ``run`` calls at fixed intervals instead of back to back
(``timed_rate_sync``/``_async``), and latency counts from each call's scheduled start, as ``pgbench -R`` does.
A worker owns its process, so sync drivers are called directly and an async driver's whole timed loop is one
coroutine on the session's event loop: one hop per repeat, none per call.

Per call the timed loop does one clock read, one list append and one comparison; latencies are worked out and folded
into an HdrHistogram after the window closes. Around the window (not in it) the loop's thread reads its run-queue
delay from ``/proc/thread-self/schedstat``: the time it was ready to run but waited for a CPU, which on a shared
machine is where most of the repeat-to-repeat noise comes from.
"""

from __future__ import annotations

import asyncio
import cProfile
import pstats
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from ..drivers import get_adapter
from ..drivers.base import ConnectInfo, Session
from ..redaction import scrub
from ..timing import histogram_of
from .custom import CustomWorkload, build_custom_op
from .ops import Op, build_op
from .timesplit import split_profile

ERROR_LIMIT = 1000  # a repeat stops early once errors outnumber successes past this many
WARMUP_CHUNKS, WARMUP_SETTLED = 4, 0.10  # warm-up in chunks until two in a row agree within 10% (at least 2)
OVERHEAD_MIN_ROUNDS = 3  # the overhead pass stops at its time budget, but not before this many rounds


def describe(session: Session | None, exc: BaseException) -> str:
    err = session.adapter.normalise_error(exc) if session is not None else None
    text = str(err) if err is not None else f"{type(exc).__name__}: {exc}"
    return scrub(text.strip().splitlines()[0] if text.strip() else type(exc).__name__)


def run_delay_ns() -> int:
    """This thread's time spent waiting on a run queue (ready, but no CPU), or 0 where the kernel does not say."""
    try:
        with open("/proc/thread-self/schedstat", encoding="ascii") as fh:
            return int(fh.read().split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def settled(previous: float | None, rate: float) -> bool:
    """Has the warm-up's rate settled: this chunk within ``WARMUP_SETTLED`` of the one before?"""
    if not previous:
        return False
    return abs(rate / previous - 1.0) <= WARMUP_SETTLED


def timed_sync(op: Op, seconds: float, describe_error: Callable[[BaseException], str]) -> dict[str, Any]:
    """Call ``op`` until ``seconds`` have passed. Per call: one clock read, one append, one comparison; a failed call's
    timestamp is stored negated, so latencies are the differences of consecutive stamps, worked out afterwards."""
    call, recover, clock = op.call, op.recover, time.perf_counter_ns
    stamps: list[int] = []
    append = stamps.append
    errors, first_error = 0, None
    runq0 = run_delay_ns()
    cpu0 = time.process_time_ns()
    t = start = clock()
    end = start + int(seconds * 1e9)
    while t < end:
        try:
            call()
        except Exception as exc:  # noqa: BLE001 - counted, described once, and the loop goes on
            errors += 1
            first_error = first_error or describe_error(exc)
            if recover is not None:
                recover()
            t = clock()
            append(-t)
            if errors > ERROR_LIMIT and errors > len(stamps) - errors:
                break
            continue
        t = clock()
        append(t)
    return _loop_result(start, stamps, errors, first_error, time.process_time_ns() - cpu0, run_delay_ns() - runq0)


# timed_async is timed_sync with ``await``: one loop body for both would cost the sync drivers a call per iteration.
async def timed_async(op: Op, seconds: float, describe_error: Callable[[BaseException], str]) -> dict[str, Any]:
    call, recover, clock = op.call, op.recover, time.perf_counter_ns
    stamps: list[int] = []
    append = stamps.append
    errors, first_error = 0, None
    runq0 = run_delay_ns()
    cpu0 = time.process_time_ns()
    t = start = clock()
    end = start + int(seconds * 1e9)
    while t < end:
        try:
            await call()
        except Exception as exc:  # noqa: BLE001 - as in timed_sync
            errors += 1
            first_error = first_error or describe_error(exc)
            if recover is not None:
                await recover()
            t = clock()
            append(-t)
            if errors > ERROR_LIMIT and errors > len(stamps) - errors:
                break
            continue
        t = clock()
        append(t)
    return _loop_result(start, stamps, errors, first_error, time.process_time_ns() - cpu0, run_delay_ns() - runq0)


def _loop_result(start: int, stamps: list[int], errors: int, first_error: str | None, cpu_ns: int, runq_ns: int
                 ) -> dict[str, Any]:
    samples, ends, prev = [], [], start
    for stamp in stamps:
        if stamp > 0:
            samples.append(stamp - prev)
            ends.append(stamp)
        prev = abs(stamp)
    return {"ops": len(samples), "errors": errors, "first_error": first_error, "elapsed_ns": prev - start,
            "busy_ns": sum(samples), "cpu_ns": cpu_ns, "runq_ns": runq_ns, "samples": samples, "ends": ends,
            "start": start}


def timed_rate_sync(op: Op, seconds: float, interval_ns: int, offset_ns: int,
                    describe_error: Callable[[BaseException], str]) -> dict[str, Any]:
    """Call ``op`` at fixed ``interval_ns`` (first at ``offset_ns``) until ``seconds`` have passed. A call's latency
    counts from its scheduled start, so a slow call delays the ones behind it and they show it (no coordinated
    omission); ``lag`` is how late a call started against its schedule."""
    call, recover, clock, sleep = op.call, op.recover, time.perf_counter_ns, time.sleep
    samples: list[int] = []
    ends: list[int] = []
    lags: list[int] = []
    errors, first_error = 0, None
    runq0, cpu0 = run_delay_ns(), time.process_time_ns()
    start = clock()
    end = start + int(seconds * 1e9)
    due = start + offset_ns
    while due < end:
        now = clock()
        if now < due:
            sleep((due - now) / 1e9)
            now = clock()
        elif now >= end:
            break  # as pgbench -T: the window is over, what is still queued is not run (it counts as missed)
        try:
            call()
        except Exception as exc:  # noqa: BLE001 - as in timed_sync
            errors += 1
            first_error = first_error or describe_error(exc)
            if recover is not None:
                recover()
            due += interval_ns
            if errors > ERROR_LIMIT and errors > len(samples):
                break
            continue
        t = clock()
        samples.append(t - due)
        ends.append(t)
        lags.append(now - due)
        due += interval_ns
    return _rate_result(start, end, due, samples, ends, lags, interval_ns, errors, first_error,
                        time.process_time_ns() - cpu0, run_delay_ns() - runq0)


async def timed_rate_async(op: Op, seconds: float, interval_ns: int, offset_ns: int,
                           describe_error: Callable[[BaseException], str]) -> dict[str, Any]:
    """``timed_rate_sync`` on the session's event loop (its timer resolution adds to the lag, and shows in it); a
    copy with ``await`` for the reason given at ``timed_async``."""
    call, recover, clock, sleep = op.call, op.recover, time.perf_counter_ns, asyncio.sleep
    samples: list[int] = []
    ends: list[int] = []
    lags: list[int] = []
    errors, first_error = 0, None
    runq0, cpu0 = run_delay_ns(), time.process_time_ns()
    start = clock()
    end = start + int(seconds * 1e9)
    due = start + offset_ns
    while due < end:
        now = clock()
        if now < due:
            await sleep((due - now) / 1e9)
            now = clock()
        elif now >= end:
            break  # as pgbench -T: the window is over, what is still queued is not run (it counts as missed)
        try:
            await call()
        except Exception as exc:  # noqa: BLE001 - as in timed_sync
            errors += 1
            first_error = first_error or describe_error(exc)
            if recover is not None:
                await recover()
            due += interval_ns
            if errors > ERROR_LIMIT and errors > len(samples):
                break
            continue
        t = clock()
        samples.append(t - due)
        ends.append(t)
        lags.append(now - due)
        due += interval_ns
    return _rate_result(start, end, due, samples, ends, lags, interval_ns, errors, first_error,
                        time.process_time_ns() - cpu0, run_delay_ns() - runq0)


def _rate_result(start: int, end: int, due: int, samples: list[int], ends: list[int], lags: list[int],
                 interval_ns: int, errors: int, first_error: str | None, cpu_ns: int, runq_ns: int) -> dict[str, Any]:
    """The window is the whole schedule (idle time included), or longer when the last call ran past it. ``late``:
    calls that started more than one interval behind their schedule (the client could not keep the rate);
    ``missed``: calls scheduled in the window that had not started when it ended."""
    return {"ops": len(samples), "errors": errors, "first_error": first_error,
            "elapsed_ns": max([end, *ends[-1:]]) - start, "busy_ns": sum(samples), "cpu_ns": cpu_ns,
            "runq_ns": runq_ns, "samples": samples, "ends": ends, "start": start,
            "lag_sum_ns": sum(lags), "lag_max_ns": max(lags, default=0),
            "late": sum(1 for lag in lags if lag > interval_ns),
            "missed": -(-(end - due) // interval_ns) if due < end else 0}


def buckets_of(start: int, ends: list[int], samples: list[int], bucket_ns: int) -> list[list[Any]]:
    """Per ``bucket_ns`` of the window (by completion time): ``[ops, encoded histogram or None]``, so the parent can
    merge the same second of every worker."""
    groups: list[list[int]] = []
    for t, latency in zip(ends, samples, strict=True):
        k = (t - start) // bucket_ns
        while len(groups) <= k:
            groups.append([])
        groups[k].append(latency)
    return [[len(g), histogram_of(g).encode() if g else None] for g in groups]


def overhead_sync(op: Op, seconds: float, rounds: int, budget: float) -> list[list[int]]:
    """Up to ``rounds`` alternations of the timed loop (``seconds`` each) and a bare loop of as many calls of the same
    op, stopping once ``budget`` seconds have passed (at least ``OVERHEAD_MIN_ROUNDS``: slow calls make long rounds):
    ``[[ops, harness_wall_ns, bare_wall_ns, harness_cpu_ns, bare_cpu_ns], ...]`` (CPU: this process's, which
    descheduling on a busy machine does not inflate)."""
    pairs: list[list[int]] = []
    until = time.perf_counter() + budget
    while len(pairs) < rounds and (len(pairs) < OVERHEAD_MIN_ROUNDS or time.perf_counter() < until):
        timed = timed_sync(op, seconds, repr)
        n, call, clock, cpu = timed["ops"], op.call, time.perf_counter_ns, time.process_time_ns
        c0, t0 = cpu(), clock()
        for _ in range(n):
            call()
        t1, c1 = clock(), cpu()
        pairs.append([n, timed["busy_ns"], t1 - t0, timed["cpu_ns"], c1 - c0])
    return pairs


async def overhead_async(op: Op, seconds: float, rounds: int, budget: float) -> list[list[int]]:
    """``overhead_sync`` for async drivers, all rounds in one coroutine on the session's loop."""
    pairs: list[list[int]] = []
    until = time.perf_counter() + budget
    while len(pairs) < rounds and (len(pairs) < OVERHEAD_MIN_ROUNDS or time.perf_counter() < until):
        timed = await timed_async(op, seconds, repr)
        n, call, clock, cpu = timed["ops"], op.call, time.perf_counter_ns, time.process_time_ns
        c0, t0 = cpu(), clock()
        for _ in range(n):
            await call()
        t1, c1 = clock(), cpu()
        pairs.append([n, timed["busy_ns"], t1 - t0, timed["cpu_ns"], c1 - c0])
    return pairs


def peak_rss_kb() -> int:
    """VmHWM (peak resident set) of this process in kB, since the last ``reset_peak_rss``."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource  # Unix-only; reached only where /proc is missing

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def reset_peak_rss() -> None:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")  # Linux: reset VmHWM to the current RSS, so each cell reports its own peak
    except OSError:
        pass


class Worker:
    def __init__(self) -> None:
        self.session: Session | None = None
        self.op: Op | None = None
        self.driver_id = ""

    def _describe(self, exc: BaseException) -> str:
        return describe(self.session, exc)

    def _loop(self, make: Callable[[], Any], timeout: float) -> Any:
        """Run a loop: directly for sync drivers, as one coroutine on the session's loop for async ones."""
        assert self.op is not None and self.session is not None
        if self.op.is_async:
            return self.session.loop_thread.run(make(), timeout=timeout)  # type: ignore[attr-defined]
        return make()

    def open(self, driver_id: str, info: ConnectInfo, workload: str | CustomWorkload, variant: str, rows: int,
             seed: int) -> dict:
        self.close()
        reset_peak_rss()
        self.driver_id = driver_id
        self.session = get_adapter(driver_id).connect(info)
        if isinstance(workload, CustomWorkload):
            self.op = build_custom_op(self.session, workload, seed)
        else:
            self.op = build_op(self.session, driver_id, workload, variant, rows, seed)
        return {}

    def warmup(self, seconds: float) -> dict:
        """Up to ``seconds`` in ``WARMUP_CHUNKS`` chunks, ending early once two chunks in a row run at rates within
        ``WARMUP_SETTLED`` of each other (caches, prepared statements and compiled SQL are in place by then)."""
        previous, chunks = None, 0
        while chunks < WARMUP_CHUNKS:
            chunks += 1
            result = self.run(time.monotonic_ns(), seconds / WARMUP_CHUNKS, keep_samples=False)
            rate = result["ops"] / max(result["elapsed_ns"], 1)
            if settled(previous, rate):
                break
            previous = rate
        return {"chunks": chunks}

    def run(self, start_at_ns: int, seconds: float, keep_samples: bool = True, interval_ns: int = 0,
            offset_ns: int = 0, bucket_ns: int = 0) -> dict:
        """One timed window; ``interval_ns`` > 0: at that fixed rate; ``bucket_ns`` > 0: with its per-bucket
        series (``buckets``)."""
        assert self.op is not None
        delay = (start_at_ns - time.monotonic_ns()) / 1e9
        if delay > 0:
            time.sleep(delay)
        op, describe_ = self.op, self._describe
        if interval_ns:
            if op.is_async:
                result = self._loop(lambda: timed_rate_async(op, seconds, interval_ns, offset_ns, describe_),
                                    2 * seconds + 60)
            else:
                result = timed_rate_sync(op, seconds, interval_ns, offset_ns, describe_)
        elif op.is_async:
            result = self._loop(lambda: timed_async(op, seconds, describe_), seconds + 60)
        else:
            result = timed_sync(op, seconds, describe_)
        samples, ends, start = result.pop("samples"), result.pop("ends"), result.pop("start")
        if keep_samples:
            result["hist"] = histogram_of(samples).encode() if samples else None
        if bucket_ns:
            result["buckets"] = buckets_of(start, ends, samples, bucket_ns)
        return result

    def overhead(self, seconds: float, rounds: int, budget: float) -> dict:
        assert self.op is not None
        op = self.op
        if op.is_async:
            pairs = self._loop(lambda: overhead_async(op, seconds, rounds, budget), 2 * seconds * rounds + budget + 60)
        else:
            pairs = overhead_sync(op, seconds, rounds, budget)
        return {"pairs": pairs}

    def profile(self, seconds: float) -> dict:
        """One repeat under cProfile, enabled in the thread that runs the loop (the loop thread for async)."""
        assert self.op is not None
        op, prof = self.op, cProfile.Profile()
        if op.is_async:
            async def profiled() -> Any:
                prof.enable()
                try:
                    return await timed_async(op, seconds, self._describe)
                finally:
                    prof.disable()

            result = self._loop(profiled, seconds + 60)
        else:
            prof.enable()
            try:
                result = timed_sync(op, seconds, self._describe)
            finally:
                prof.disable()
        return {"ops": result["ops"], **split_profile(pstats.Stats(prof), self.driver_id)}

    def close(self) -> dict:
        rss = peak_rss_kb()
        if self.session is not None:
            session, self.session, self.op = self.session, None, None
            session.close()
        return {"rss_peak_kb": rss}


def worker_main(pipe: Connection) -> None:
    """Serve commands ``(name, args...)`` until ``("exit",)``; reply ``("ok", dict)`` or ``("error", line)``."""
    worker = Worker()
    while True:
        try:
            msg = pipe.recv()
        except (EOFError, KeyboardInterrupt):
            break
        if msg[0] == "exit":
            break
        try:
            pipe.send(("ok", getattr(worker, msg[0])(*msg[1:])))
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the parent as one line
            detail = describe(worker.session, exc)
            if worker.session is None or not detail:
                detail = detail or traceback.format_exception_only(exc)[-1].strip()
            pipe.send(("error", detail))
    try:
        worker.close()
    except Exception:  # noqa: BLE001 - exiting anyway
        pass
