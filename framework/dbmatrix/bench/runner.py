"""``dbmatrix bench``: every workload over target x driver x variant x concurrency, into the run's results document.

Targets, drivers, ``--require`` and the output folder are ``dbmatrix run``'s (``MatrixRun``: selection, managed
servers, scratch space, cleanup, atomic results + reports). Each cell is measured by worker processes
(``worker.py``), one connection each, started once with ``spawn`` and reused by every cell; a cell at concurrency N
uses N of them, started together at a shared instant. At concurrency 1 the timed loop first alternates with a bare
loop of the same call in short rounds (``overhead_pct``: the client CPU the harness adds per call), which is also
the cell's warm-up; at higher concurrency a warm-up runs until the rate settles. For default variants one extra
repeat at concurrency 1 runs under cProfile ("where the time goes"). Ceilings (pgbench, mysqlslap) run in the same
run, as their own rows. The whole plan is known before the first cell, so the run prints its estimated time up
front (``estimate_seconds``) and its progress as it goes.

Own workloads (``--workload FILE.sql`` or ``module:callable``, ``custom.py``) are cells like the built-in ones.
``--rate`` runs every window at a fixed total rate (``worker.timed_rate_sync``: latency from the scheduled start,
lag and late calls reported); ``--duration`` sets a cell's whole timed time (split over its repeats). When a cell's
timed time reaches ``SERIES_MIN_S``, its ``metrics.series`` holds ops/s and p50/p99 per second, to show stalls.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import signal
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..drivers import get_adapter
from ..errors import UsageError
from ..matrix import MatrixRun
from ..report.bench import noise_line, summary_lines
from ..report.ladder import gap_line, largest_gaps
from ..results import ERROR, MEASURED, SKIPPED, WALL_MS, CellResult, load_document
from ..targets.model import OK, Target
from ..timing import cv_pct, mean_ci95, merge_encoded, percentile_curve_us, percentiles_us, ratio_ci95
from . import ceilings
from .compare import annotate, print_changes
from .custom import CustomWorkload, is_custom, resolve
from .ops import DEFAULT, TUNED, variants
from .schema import create_and_load
from .timesplit import bottleneck, stage_split
from .worker import OVERHEAD_MIN_ROUNDS, worker_main
from .workloads import BATCH_ROWS, WORKLOADS

CEILING_VARIANT = "ceiling"
REPLY_SLACK_S = 60  # on top of the work asked for, before a silent worker counts as hung
OVERHEAD_ROUNDS = 6  # rounds of the overhead pass (the first one is its warm-up and is not counted)
START_SLACK_NS = 3_000_000  # per worker: time to deliver "run" to every worker before their shared start
SERIES_MIN_S = 2.0  # a cell's timed time from which it gets a per-second series (shorter: one point says nothing)
SERIES_MAX_POINTS = 300  # per cell, to keep results.json compact: longer runs get wider buckets


@dataclass
class BenchConfig:
    """How long each part of a cell runs. The default full bench (five workloads over postgres, mariadb and sqlite
    with every driver and builder, the ORM rung's default rows, concurrency 1 and 4: about 420 cells) is sized to
    finish within 15 minutes; see ``estimate_seconds``."""

    workloads: list[str]
    concurrency: list[int]
    seconds: float = 0.3  # one timed repeat
    repeats: int = 3
    warmup: float = 0.2  # at most, at concurrency > 1 (it ends once the rate settles)
    overhead: float = 0.3  # the overhead pass at concurrency 1, which is also that cell's warm-up
    profile_seconds: float = 0.25  # the cProfile repeat (at most ``seconds``)
    rows: int = 100_000
    profile: bool = True
    quick: bool = False
    rate: float | None = None  # --rate: operations per second in total over a cell's workers
    custom: dict[str, CustomWorkload] = field(default_factory=dict)  # own workloads by name
    every: bool = False  # --driver all: every pair planned as if named (the default bench leaves some out)

    def case(self, workload: str) -> str:
        return self.custom[workload].case if workload in self.custom else WORKLOADS[workload].case

    def bucket_s(self) -> int:
        """The series' bucket width (0: no series): one second, wider when the points would pass the cap."""
        total = self.seconds * self.repeats
        return 0 if total < SERIES_MIN_S else max(1, math.ceil(total / SERIES_MAX_POINTS))

    @classmethod
    def from_args(cls, workloads: list[str], concurrency: str | None, seconds: float | None, repeats: int | None,
                  quick: bool, rows: int | None = None, duration: float | None = None,
                  rate: float | None = None) -> BenchConfig:
        specs = [w.strip() for opt in workloads for w in (opt.split(",") if not is_custom(opt) else [opt])
                 if w.strip()]
        own = [resolve(w, set(WORKLOADS)) for w in dict.fromkeys(specs) if is_custom(w)]
        custom = {c.name: c for c in own}
        if len(custom) < len(own):
            twice = next(c for c in own if custom[c.name] is not c)
            raise UsageError(f"--workload {twice.source}: another own workload is named {twice.name!r} too "
                             "(the case id is bench.<name>); rename one")
        names = [w if not is_custom(w) else next(c.name for c in custom.values() if c.source == w) for w in specs]
        names = names or list(WORKLOADS)
        unknown = [w for w in names if w not in WORKLOADS and w not in custom]
        if unknown:
            raise UsageError(f"unknown workload {unknown[0]!r}; known workloads: {', '.join(WORKLOADS)}, "
                             "or a script path (FILE.sql) or module:callable")
        conc_text = concurrency or ("1" if quick else "1,4")
        try:
            conc = sorted({int(c) for c in conc_text.split(",") if c.strip()})
        except ValueError:
            raise UsageError(f"--concurrency takes comma-separated integers, got {conc_text!r}") from None
        if not conc or min(conc) < 1 or max(conc) > 256:
            raise UsageError(f"--concurrency values must be between 1 and 256, got {conc_text!r}")
        cfg = cls(list(dict.fromkeys(names)), conc, quick=quick, custom=custom)
        if quick:
            cfg.seconds, cfg.repeats, cfg.warmup, cfg.overhead, cfg.profile_seconds = 0.1, 3, 0.05, 0.1, 0.1
            cfg.rows = 20_000
        if seconds is not None:
            if not 0 < seconds <= 3600:
                raise UsageError(f"--seconds must be > 0 and <= 3600, got {seconds}")
            cfg.seconds = seconds
        if repeats is not None:
            if repeats < 3:
                raise UsageError(f"--repeats must be at least 3 (a confidence interval needs them), got {repeats}")
            cfg.repeats = repeats
        if duration is not None:
            if seconds is not None:
                raise UsageError("--duration and --seconds both set a cell's time; give one of them")
            if not 0 < duration <= 86400:
                raise UsageError(f"--duration must be > 0 and <= 86400, got {duration}")
            cfg.seconds = duration / cfg.repeats  # the whole timed time of a cell, over its repeats
        if rate is not None:
            if not 0 < rate <= 1_000_000:
                raise UsageError(f"--rate must be > 0 and <= 1000000 operations per second, got {rate}")
            cfg.rate = rate
        if rows is not None:
            if rows < 1000:
                raise UsageError(f"--rows must be at least 1000, got {rows}")
            cfg.rows = rows
        return cfg


class WorkerFailed(Exception):
    """A worker answered with an error (one line)."""


class WorkerHung(Exception):
    """A worker did not answer in time; the pool is restarted."""


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@dataclass
class WorkerPool:
    size: int
    _procs: list[Any] = field(default_factory=list)
    _pipes: list[Any] = field(default_factory=list)

    def start(self) -> None:
        ctx = multiprocessing.get_context("spawn")  # a clean interpreter: no inherited sockets, threads or loops
        # Workers are started with SIGINT ignored (Python keeps an inherited SIG_IGN): a Ctrl-C to the terminal's
        # process group stops the parent, which stops them; a worker never prints its own traceback.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if _main_thread() else None
        try:
            for i in range(self.size):
                parent, child = ctx.Pipe()
                proc = ctx.Process(target=worker_main, args=(child,), name=f"dbmatrix-bench-{i}", daemon=True)
                proc.start()
                child.close()
                self._procs.append(proc)
                self._pipes.append(parent)
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)

    def ask(self, n: int, msg: tuple[Any, ...], timeout: float) -> list[dict[str, Any]]:
        """Send ``msg`` to workers ``0..n-1`` at once, then collect every reply (bounded by ``timeout``)."""
        return self.ask_each([msg] * n, timeout)

    def ask_each(self, msgs: list[tuple[Any, ...]], timeout: float) -> list[dict[str, Any]]:
        """Send ``msgs[i]`` to worker ``i``, all before waiting, then collect every reply."""
        for pipe, msg in zip(self._pipes, msgs, strict=False):
            pipe.send(msg)
        deadline = time.monotonic() + timeout
        replies, failures = [], []
        for i, pipe in enumerate(self._pipes[: len(msgs)]):
            if not pipe.poll(max(0.0, deadline - time.monotonic())):
                raise WorkerHung(f"worker {i} did not answer {msgs[i][0]} within {timeout:.0f}s")
            try:
                status, body = pipe.recv()
            except EOFError:
                raise WorkerHung(f"worker {i} exited during {msgs[i][0]}") from None
            (replies if status == "ok" else failures).append(body)
        if failures:
            raise WorkerFailed(failures[0])
        return replies

    def ask_one(self, msg: tuple[Any, ...], timeout: float) -> dict[str, Any]:
        return self.ask(1, msg, timeout)[0]

    def reset(self, n: int) -> None:
        """Close the sessions of workers ``0..n-1`` after a failure; restart the pool if that fails too."""
        try:
            self.ask(n, ("close",), REPLY_SLACK_S)
        except (WorkerFailed, WorkerHung):
            self.stop()
            self.start()

    def stop(self) -> None:
        for pipe in self._pipes:
            try:
                pipe.send(("exit",))
            except (OSError, ValueError):
                pass
        for proc in self._procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()  # our own worker, by its handle
                proc.join(timeout=5)
        self._procs.clear()
        self._pipes.clear()


@dataclass
class CellSpec:
    target: Target
    driver: str
    workload: str
    variant: str
    knobs: dict[str, str]
    concurrency: int

    def params(self) -> dict[str, Any]:
        return {"concurrency": self.concurrency, "variant": self.variant, "knobs": self.knobs}

    def label(self) -> str:
        return f"{self.target.name} {self.workload} {self.driver} {self.variant} c={self.concurrency}"


def measure_cell(pool: WorkerPool, spec: CellSpec, cfg: BenchConfig) -> CellResult:
    started = time.perf_counter()
    n, case = spec.concurrency, cfg.case(spec.workload)
    load = round(os.getloadavg()[0], 2)  # the machine's load as the cell starts: context for its CV

    def cell(outcome: str, detail: str | None, metrics: dict[str, Any]) -> CellResult:
        metrics["load_1m"] = load
        metrics[WALL_MS] = round((time.perf_counter() - started) * 1000.0, 3)
        if cfg.quick:
            metrics["quick"] = True  # the reports say the numbers come from a smoke run
        return CellResult(case=case, target=spec.target.name, driver=spec.driver, outcome=outcome,
                          params=spec.params(), detail=detail, metrics=metrics)

    repeat_timeout = 2 * cfg.seconds + REPLY_SLACK_S  # a rate-limited call may run past its window
    try:
        info = spec.target.connect_info()
        # each worker its own seed: different rows, the same sequence for every driver
        workload = cfg.custom.get(spec.workload, spec.workload)  # an own workload travels parsed
        pool.ask_each([("open", spec.driver, info, workload, spec.variant, cfg.rows, 1000 * i + 17)
                       for i in range(n)], REPLY_SLACK_S)
        overhead = None
        if n == 1:  # the timed loop and a bare loop in alternating short rounds; it warms the cell up as well
            chunk_s = cfg.overhead / (2 * OVERHEAD_ROUNDS)
            pairs = pool.ask_one(("overhead", chunk_s, OVERHEAD_ROUNDS, cfg.overhead),
                                 cfg.overhead + REPLY_SLACK_S)["pairs"]
            overhead = overhead_ratio(pairs[1:] if len(pairs) > OVERHEAD_MIN_ROUNDS else pairs)
        else:
            pool.ask(n, ("warmup", cfg.warmup), cfg.warmup + REPLY_SLACK_S)
        runs: list[list[dict[str, Any]]] = []
        bucket_ns = cfg.bucket_s() * 1_000_000_000
        # --rate: each worker calls every n/rate seconds, worker i offset by i/rate, so the calls interleave evenly
        interval_ns = round(n / cfg.rate * 1e9) if cfg.rate else 0
        offsets = [round(i / cfg.rate * 1e9) if cfg.rate else 0 for i in range(n)]
        for _ in range(cfg.repeats):
            start_at = time.monotonic_ns() + START_SLACK_NS * n  # every worker starts at the same instant
            runs.append(pool.ask_each([("run", start_at, cfg.seconds, True, interval_ns, offsets[i], bucket_ns)
                                       for i in range(n)], repeat_timeout))
        # the bottleneck column belongs to the default row; tuned rows show their gain instead
        profiled = n == 1 and cfg.profile and spec.variant == DEFAULT
        profile_s = min(cfg.seconds, cfg.profile_seconds)
        profile = pool.ask_one(("profile", profile_s), profile_s + REPLY_SLACK_S) if profiled else None
        closed = pool.ask(n, ("close",), REPLY_SLACK_S)
    except WorkerHung as exc:
        pool.stop()
        pool.start()
        return cell(ERROR, str(exc), {})
    except WorkerFailed as exc:
        pool.reset(n)
        return cell(ERROR, str(exc), {})
    return cell(*_summarise(runs, overhead, profile, closed, spec, cfg))


def overhead_ratio(pairs: list[list[int]]) -> float | None:
    """The client CPU the harness adds per call, over the call's own time (from ``overhead`` rounds:
    ``[ops, harness_wall, bare_wall, harness_cpu, bare_cpu]``).

    CPU time, because on a shared machine a round's wall time mostly measures who else got the cores; the call's
    own time is the bare loop's fastest round (descheduling can only slow a round down, never speed it up).
    """
    rounds = [r for r in pairs if r[0] > 0 and r[2] > 0]
    if not rounds:
        return None
    extra_cpu = statistics.median((hc - bc) / n for n, _, _, hc, bc in rounds)
    call_time = min(bw / n for n, _, bw, _, _ in rounds)
    return extra_cpu / call_time


def _summarise(runs: list[list[dict[str, Any]]], overhead: float | None, profile: dict[str, Any] | None,
               closed: list[dict[str, Any]], spec: CellSpec, cfg: BenchConfig
               ) -> tuple[str, str | None, dict[str, Any]]:
    qps = [sum(w["ops"] / (w["elapsed_ns"] / 1e9) for w in rep if w["elapsed_ns"] > 0) for rep in runs]
    ops = sum(w["ops"] for rep in runs for w in rep)
    errors = sum(w["errors"] for rep in runs for w in rep)
    first_error = next((w["first_error"] for rep in runs for w in rep if w["first_error"]), None)
    if ops == 0:
        return ERROR, first_error or "no operation completed", {"errors": errors}
    mean, half = mean_ci95(qps)
    hist = merge_encoded(w["hist"] for rep in runs for w in rep if w["hist"])
    cpu_ns = sum(w["cpu_ns"] for rep in runs for w in rep)
    elapsed_ns = sum(w["elapsed_ns"] for rep in runs for w in rep) or 1
    runq_ns = sum(w.get("runq_ns", 0) for rep in runs for w in rep)
    rss = [round(c["rss_peak_kb"] / 1024.0, 1) for c in closed]
    metrics: dict[str, Any] = {
        "qps": round(mean, 1), "qps_ci95": round(half, 1), "qps_repeats": [round(q, 1) for q in qps],
        "cv_pct": round(cv_pct(qps), 2), **percentiles_us(hist), "latency_us": percentile_curve_us(hist),
        "cpu_us_per_op": round(cpu_ns / ops / 1000.0, 2), "errors": errors, "ops": ops,
        # per repeat: the ladder's CPU ratio (CPU time per call does not count time spent waiting for a core)
        "cpu_us_per_op_repeats": [round(sum(w["cpu_ns"] for w in rep) / max(1, sum(w["ops"] for w in rep)) / 1000.0, 3)
                                  for rep in runs],
        # the share of the timed windows the load generator was ready to run but waited for a CPU
        "cpu_wait_pct": round(100.0 * runq_ns / elapsed_ns, 1),
        "rss_peak_mb": max(rss), "rss_peak_mb_workers": rss,
    }
    if spec.workload == "insert_batch":
        metrics["rows_per_op"] = BATCH_ROWS
    if overhead is not None:
        metrics["overhead_pct"] = round(100.0 * overhead, 2)
    if cfg.rate:
        metrics.update(rate_metrics(runs, cfg.rate, ops))
    if cfg.bucket_s():
        metrics["series"] = series_of(runs, cfg.seconds, cfg.bucket_s())
    detail = None
    if profile is not None:
        metrics["time_split_pct"] = profile["split_pct"]
        metrics["stage_pct"] = stage_split(profile["split_pct"], spec.driver)
        metrics["profile_top"] = profile["top"]
        detail = bottleneck(profile["split_pct"])
    if errors:
        detail = f"{errors} errors, first: {first_error}" + (f"; {detail}" if detail else "")
    return MEASURED, detail, metrics


def rate_metrics(runs: list[list[dict[str, Any]]], rate: float, ops: int) -> dict[str, Any]:
    """What ``--rate`` asked for and how the schedule held: mean and worst start lag, calls that started more than
    one interval late (the client or the server could not keep up; their latency already counts the wait), and
    calls still queued when a window ended (not run, as with pgbench -T)."""
    windows = [w for rep in runs for w in rep]
    return {"rate_ops_s": rate,
            "lag_mean_us": round(sum(w["lag_sum_ns"] for w in windows) / max(ops, 1) / 1000.0, 1),
            "lag_max_us": round(max(w["lag_max_ns"] for w in windows) / 1000.0, 1),
            "late_ops": sum(w["late"] for w in windows), "missed_ops": sum(w["missed"] for w in windows)}


def series_of(runs: list[list[dict[str, Any]]], window_s: float, bucket_s: int) -> dict[str, Any]:
    """Per bucket of every repeat's window (repeats laid end to end on ``t_s``): ops/s over the cell's workers
    and p50/p99 of the calls that ended in it. Columns, not rows, to keep results.json small."""
    out: dict[str, Any] = {"bucket_s": bucket_s, "t_s": [], "ops_s": [], "p50_us": [], "p99_us": []}
    last = max(1, math.ceil(window_s / bucket_s - 1e-9)) - 1  # the window's last bucket (it may be shorter)
    for r, rep in enumerate(runs):
        per_worker = [w.get("buckets") or [] for w in rep]
        for k in range(min(last + 1, max((len(b) for b in per_worker), default=0))):
            # a call that ended past the window (a late one under --rate) counts in the window's last bucket
            parts = [p_ for b in per_worker for p_ in (b[k:] if k == last else b[k:k + 1])]
            span = min(float(bucket_s), window_s - k * bucket_s)
            hist = merge_encoded(p[1] for p in parts if p[1])
            p = percentiles_us(hist) if hist.get_total_count() else {"p50_us": None, "p99_us": None}
            out["t_s"].append(round(r * window_s + k * bucket_s, 3))
            out["ops_s"].append(round(sum(p_[0] for p_ in parts) / span, 1))
            out["p50_us"].append(p["p50_us"])
            out["p99_us"].append(p["p99_us"])
    return out


def ceiling_cells(target: Target, workload: str, cfg: BenchConfig) -> list[CellResult]:
    tool = ceilings.tool_for(target)
    if tool is None:
        return []
    cells = []
    for c in cfg.concurrency:
        started = time.perf_counter()
        params: dict[str, Any] = {"concurrency": c, "variant": CEILING_VARIANT}
        try:
            run = ceilings.measure(target, workload, cfg.rows, c, cfg.seconds, cfg.repeats)
        except ceilings.CeilingError as exc:
            wall = {WALL_MS: round((time.perf_counter() - started) * 1e3, 3)}
            cells.append(CellResult(WORKLOADS[workload].case, target.name, tool, ERROR, params=params,
                                    detail=str(exc), metrics=wall))
            continue
        mean, half = mean_ci95(run.qps)
        metrics: dict[str, Any] = {"qps": round(mean, 1), "qps_ci95": round(half, 1),
                                   "qps_repeats": [round(q, 1) for q in run.qps], "cv_pct": round(cv_pct(run.qps), 2)}
        if run.hist is not None:
            metrics.update(percentiles_us(run.hist), latency_us=percentile_curve_us(run.hist))
        metrics["load_1m"] = round(os.getloadavg()[0], 2)
        metrics[WALL_MS] = round((time.perf_counter() - started) * 1000.0, 3)
        params["knobs"] = run.knobs
        cells.append(CellResult(WORKLOADS[workload].case, target.name, tool, MEASURED, params=params,
                                detail=f"{tool} ceiling", metrics=metrics))
    return cells


def add_ratios(cells: list[CellResult]) -> None:
    """``ceiling_pct`` (against the ceiling row at the same concurrency) and ``tuned_gain_pct`` (tuned vs default)."""
    ceiling = {(c.case, c.target, c.params["concurrency"]): c.metrics["qps"] for c in cells
               if c.params.get("variant") == CEILING_VARIANT and c.outcome == MEASURED}
    default = {(c.case, c.target, c.driver, c.params["concurrency"]): c.metrics["qps"] for c in cells
               if c.params.get("variant") == DEFAULT and c.outcome == MEASURED}
    for c in cells:
        if c.outcome != MEASURED or c.params.get("variant") == CEILING_VARIANT:
            continue
        top = ceiling.get((c.case, c.target, c.params["concurrency"]))
        if top:
            c.metrics["ceiling_pct"] = round(100.0 * c.metrics["qps"] / top, 1)
        base = default.get((c.case, c.target, c.driver, c.params["concurrency"]))
        if c.params.get("variant") == TUNED and base:
            c.metrics["tuned_gain_pct"] = round(100.0 * (c.metrics["qps"] / base - 1.0), 1)
    add_ladder(cells)


def add_ladder(cells: list[CellResult]) -> None:
    """``metrics.ladder`` of every measured driver or layer cell: its rung, the DBAPI driver underneath and, for a
    layer, its QPS as a share of that driver's default row at the same concurrency in this run (``raw_pct``), how
    many times slower it is (``x_slower``, with the 95% interval of the ratio from both cells' repeats) and how many
    times the client CPU per call it spends (``cpu_x``: on a busy machine the steadier of the two, since CPU time
    does not count the time a process waited for a core, while QPS compares cells run at different moments)."""
    raw = {(c.case, c.target, c.driver, c.params["concurrency"]): c for c in cells
           if c.params.get("variant") == DEFAULT and c.outcome == MEASURED}
    for c in cells:
        if c.outcome != MEASURED or c.params.get("variant") == CEILING_VARIANT:
            continue
        try:
            adapter = get_adapter(c.driver)
        except UsageError:  # not a registered driver id: no rung to place it on
            continue
        ladder: dict[str, Any] = {"rung": adapter.rung, "over": adapter.dbapi}
        under = raw.get((c.case, c.target, adapter.dbapi, c.params["concurrency"]))
        if under is not None and under is not c:
            x, lo, hi = ratio_ci95(under.metrics["qps_repeats"], c.metrics["qps_repeats"])
            ladder.update(raw_pct=round(100.0 / x, 1), x_slower=round(x, 2), x_ci95=[round(lo, 2), round(hi, 2)])
            cpu, raw_cpu = c.metrics.get("cpu_us_per_op_repeats"), under.metrics.get("cpu_us_per_op_repeats")
            if cpu and raw_cpu and min(raw_cpu) > 0:
                # the point is the ratio of CPU per call over all calls (a repeat with a handful of calls, one of
                # them a collection, would weigh as much as the others in a mean of repeats); the interval's
                # width comes from the repeats' spread
                x = c.metrics["cpu_us_per_op"] / under.metrics["cpu_us_per_op"]
                mid, lo, hi = ratio_ci95(cpu, raw_cpu)
                ladder.update(cpu_x=round(x, 2), cpu_x_ci95=[round(x * lo / mid, 2), round(x * hi / mid, 2)])
        c.metrics["ladder"] = ladder


def check_explicit_drivers(run: MatrixRun, explicit: list[str]) -> None:
    """What the user named must run: an installed driver with at least one target of its kind."""
    kinds = {t.kind for t in run.targets}
    for driver_id in explicit:
        adapter = run.adapter(driver_id)
        reason = adapter.unavailable_reason()
        if reason:
            raise UsageError(reason)
        if not any(adapter.supports(k) for k in kinds):
            raise UsageError(f"driver {driver_id} has no target of its kind among: {', '.join(sorted(kinds))}")


# Fixed costs for the estimate, measured on a 2-core machine: a session's open/close with its first statements, a
# ceiling tool's start, and loading rows into the benchmark table (per 1,000 rows).
OPEN_S, TOOL_START_S, LOAD_S_PER_1000_ROWS, POOL_START_S = 0.12, 0.1, 0.12, 2.0


@dataclass
class CeilingSpec:
    target: Target
    workload: str

    def label(self) -> str:
        return f"{self.target.name} {self.workload} {ceilings.tool_for(self.target)} ceiling"


Step = CellSpec | CeilingSpec | CellResult  # a cell to measure, a ceiling to run, or a cell already decided (skipped)


def plan_target(run: MatrixRun, target: Target, cfg: BenchConfig) -> list[Step]:
    """Every step for ``target`` in run order: per workload its ceiling, then each driver x variant x concurrency."""
    steps: list[Step] = []
    named = run.drivers_named or cfg.every
    for workload in cfg.workloads:
        own = cfg.custom.get(workload)
        # a ceiling runs the built-in statements at full speed: not comparable with an own workload or a --rate
        if ceilings.tool_for(target) is not None and own is None and cfg.rate is None:
            steps.append(CeilingSpec(target, workload))
        for driver_id in run.driver_ids:
            adapter = run.adapter(driver_id)
            if not adapter.supports(target.kind) or not (named or (
                    adapter.runs_by_default(cfg.case(workload)) and adapter.benched_by_default(None) if own is not None
                    else adapter.benched_by_default(workload))):
                continue  # (the ORM rung's other pairs and a newer rung's layers run when named: 15 minutes)
            # an unavailable driver here is an implicit one (explicit ones were checked up front)
            reason = adapter.unavailable_reason() or (own.skip_reason(adapter) if own is not None else None)
            if reason:
                steps.append(CellResult(cfg.case(workload), target.name, driver_id, SKIPPED, detail=reason))
                continue
            own_variants = {DEFAULT: own.knobs()} if own is not None else None
            concurrency = cfg.concurrency if named else adapter.bench_concurrency(cfg.concurrency)
            for variant, knobs in (own_variants or variants(driver_id, workload)).items():
                steps += [CellSpec(target, driver_id, workload, variant, knobs, c) for c in concurrency]
    return steps


def step_seconds(step: Step, cfg: BenchConfig) -> float:
    """The nominal time of one step (what the configuration asks for, plus the fixed costs above)."""
    if isinstance(step, CellResult):
        return 0.0
    if isinstance(step, CeilingSpec):
        if step.target.kind == "postgresql":  # pgbench -T takes whole seconds
            per_run = max(1, round(cfg.seconds)) + TOOL_START_S
            return len(cfg.concurrency) * cfg.repeats * per_run
        return len(cfg.concurrency) * (cfg.repeats + 1) * (cfg.seconds + TOOL_START_S)  # mysqlslap calibrates first
    n = step.concurrency
    timed = cfg.repeats * (cfg.seconds + START_SLACK_NS * n / 1e9)
    if n > 1:
        return OPEN_S * 1.5 + cfg.warmup * 0.75 + timed  # N opens in parallel; the warm-up often ends early
    profiled = cfg.profile and step.variant == DEFAULT
    return OPEN_S + cfg.overhead + timed + (min(cfg.seconds, cfg.profile_seconds) * 1.5 if profiled else 0.0)


def estimate_seconds(plans: dict[str, list[Step]], cfg: BenchConfig) -> float:
    """Worker start + loading each target's rows + every step's nominal time. A busy machine stretches it: the
    estimate is what the run asks for, the progress lines say how it is going."""
    load = len(plans) * load_seconds(cfg)
    return POOL_START_S + load + sum(step_seconds(st, cfg) for steps in plans.values() for st in steps)


def load_seconds(cfg: BenchConfig) -> float:
    return LOAD_S_PER_1000_ROWS * cfg.rows / 1000


def _clock(seconds: float) -> str:
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"


@dataclass
class Progress:
    """``[k/N]`` and the time left, scaled by how the run is doing against its estimate so far."""

    total_steps: int
    total_s: float
    say: Callable[[str], None]
    started: float = field(default_factory=time.perf_counter)
    done_steps: int = 0
    done_s: float = 0.0

    def step(self, nominal_s: float, line: str | None) -> None:
        """One step done (``line`` None: a part of the estimate that is not a step, e.g. loading rows)."""
        self.done_s += nominal_s
        if line is None:
            return
        self.done_steps += 1
        elapsed = time.perf_counter() - self.started
        left = max(0.0, self.total_s - self.done_s) * (elapsed / self.done_s if self.done_s else 1.0)
        self.say(f"[{self.done_steps}/{self.total_steps}] {line}  ({_clock(elapsed)} elapsed, ~{_clock(left)} left)")


def bench(run: MatrixRun, cfg: BenchConfig, say: Callable[[str], None]) -> None:
    """Measure every cell into ``run``'s document (targets already prepared)."""
    plans = {t.name: plan_target(run, t, cfg) for t in run.targets if t.status == OK}
    measured = [st for steps in plans.values() for st in steps if not isinstance(st, CellResult)]
    total_s = estimate_seconds(plans, cfg)
    cells = sum(isinstance(st, CellSpec) for st in measured)
    say(f"{cells} cells and {len(measured) - cells} ceilings on {', '.join(plans) or 'no target'}: "
        f"about {_clock(total_s)} (min:s) on an idle machine; {cfg.repeats} repeats x {cfg.seconds:g}s per cell"
        + (f", {cfg.rate:g} ops/s per cell (--rate)" if cfg.rate else ""))
    progress = Progress(len(measured), total_s, say)
    pool = WorkerPool(max(cfg.concurrency))
    pool.start()
    progress.step(POOL_START_S, None)
    try:
        for target in [t for t in run.targets if t.status == OK]:
            say(f"loading {cfg.rows} rows into {target.name}")
            try:
                create_and_load(target, cfg.rows)
                progress.step(load_seconds(cfg), None)
            except Exception as exc:  # noqa: BLE001 - the target's cells become errors, the run goes on
                for w in cfg.workloads:
                    run.add(CellResult(cfg.case(w), target.name, "-", ERROR,
                                       detail=f"loading the benchmark tables failed: {type(exc).__name__}: {exc}"))
                continue
            target_cells: list[CellResult] = []
            try:
                for step in plans[target.name]:
                    if isinstance(step, CellResult):
                        target_cells.append(step)
                        continue
                    if isinstance(step, CeilingSpec):
                        done = ceiling_cells(target, step.workload, cfg)
                        shown = ", ".join(_shown(c) for c in done)
                    else:
                        done = [measure_cell(pool, step, cfg)]
                        shown = _shown(done[0])
                    target_cells += done
                    progress.step(step_seconds(step, cfg), f"{step.label()}: {shown}")
            finally:  # interrupted: the cells already measured on this target are kept (the run is incomplete)
                add_ratios(target_cells)
                for cell in target_cells:
                    run.add(cell)
    finally:
        pool.stop()


def _shown(cell: CellResult) -> str:
    if cell.outcome != MEASURED:
        return f"{cell.outcome}: {cell.detail}"
    where = f"c={cell.params['concurrency']} " if cell.params.get("variant") == CEILING_VARIANT else ""
    return f"{where}{cell.metrics['qps']:.0f} qps, CV {cell.metrics['cv_pct']:.0f}%"


def cmd_bench(args: Any) -> int:
    """The ``dbmatrix bench`` verb (options parsed by cli.py)."""
    cfg = BenchConfig.from_args(args.workload, args.concurrency, args.seconds, args.repeats, args.quick, args.rows,
                                getattr(args, "duration", None), getattr(args, "rate", None))
    old = load_document(args.compare) if args.compare else None
    named = [d.strip() for opt in args.driver for d in opt.split(",") if d.strip()]
    # --driver all: every driver and layer pair, each with every workload and concurrency asked (as if named)
    cfg.every = "all" in named
    run = MatrixRun.from_options(args.target, [] if cfg.every else args.driver, [], args.require, args.out)
    check_explicit_drivers(run, [] if cfg.every else named)

    def say(msg: str) -> None:
        print(f"dbmatrix bench: {msg}", file=sys.stderr, flush=True)

    started = time.perf_counter()
    try:
        run.prepare(say)  # a --require'd target that does not answer: one line, exit 2, nothing written
    except BaseException:
        run.cleanup()
        raise
    complete = False
    try:
        bench(run, cfg, say)
        complete = True
    finally:
        try:
            if old is not None:
                annotate(run.doc, old)
            path = run.write(complete)  # an interrupted run is written too, marked incomplete
        finally:
            run.cleanup()
    say(f"{len(run.doc.results)} cells in {_clock(time.perf_counter() - started)} (min:s); wrote {path}")
    say(noise_line([c.to_dict() for c in run.doc.results]) or "no cell measured")
    summary = summary_lines({"results": [c.to_dict() for c in run.doc.results]})
    if summary:
        print("fastest per workload (QPS ± 95% CI; rows whose intervals overlap share a rank, =N)"
              + (" — a --quick run: a smoke test, not a ranking" if cfg.quick else "") + ":")
        print("\n".join(f"  {line}" for line in summary))
    gaps = largest_gaps({"results": [c.to_dict() for c in run.doc.results]})
    if gaps:
        print("the ladder: the largest gap to the raw driver per target (x slower, 95% CI; report.md has the table):")
        print("\n".join(f"  {gap_line(target, r)}" for target, r in gaps))
    if old is not None:
        print_changes(run.doc)
    return 1 if any(c.outcome == ERROR for c in run.doc.results) else 0
