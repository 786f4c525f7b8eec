"""``dbmatrix bench``: every workload over target x driver x variant x concurrency, into the run's results document.

Targets, drivers, ``--require`` and the output folder are ``dbmatrix run``'s (``MatrixRun``: selection, managed
servers, scratch space, cleanup, atomic results + reports). Each cell is measured by worker processes
(``worker.py``), one connection each, started once with ``spawn`` and reused; a cell at concurrency N uses N of
them, started together at a shared instant. At concurrency 1 the timed loop alternates with a bare loop of the same
call in short rounds (``overhead_pct``: the client CPU the harness adds per call), and for default variants one extra
repeat runs under cProfile ("where the time goes"). Ceilings (pgbench, mysqlslap) run in the same run, as
their own rows.
"""

from __future__ import annotations

import multiprocessing
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import UsageError
from ..matrix import MatrixRun
from ..results import ERROR, MEASURED, SKIPPED, WALL_MS, CellResult
from ..targets.model import OK, Target
from ..timing import cv_pct, mean_ci95, merge_encoded, percentile_curve_us, percentiles_us
from . import ceilings
from .ops import DEFAULT, TUNED, variants
from .schema import create_and_load
from .timesplit import bottleneck
from .worker import worker_main
from .workloads import BATCH_ROWS, WORKLOADS

CEILING_VARIANT = "ceiling"
REPLY_SLACK_S = 60
OVERHEAD_ROUNDS = 10  # on top of the work asked for, before a silent worker counts as hung


@dataclass
class BenchConfig:
    workloads: list[str]
    concurrency: list[int]
    seconds: float = 0.5
    repeats: int = 3
    warmup: float = 0.2
    rows: int = 100_000
    profile: bool = True
    quick: bool = False

    @classmethod
    def from_args(cls, workloads: list[str], concurrency: str | None, seconds: float | None, repeats: int | None,
                  quick: bool, rows: int | None = None) -> BenchConfig:
        names = [w.strip() for opt in workloads for w in opt.split(",") if w.strip()] or list(WORKLOADS)
        unknown = [w for w in names if w not in WORKLOADS]
        if unknown:
            raise UsageError(f"unknown workload {unknown[0]!r}; known workloads: {', '.join(WORKLOADS)}")
        conc_text = concurrency or ("1" if quick else "1,4")
        try:
            conc = sorted({int(c) for c in conc_text.split(",") if c.strip()})
        except ValueError:
            raise UsageError(f"--concurrency takes comma-separated integers, got {conc_text!r}") from None
        if not conc or min(conc) < 1 or max(conc) > 256:
            raise UsageError(f"--concurrency values must be between 1 and 256, got {conc_text!r}")
        cfg = cls(list(dict.fromkeys(names)), conc, quick=quick)
        if quick:
            cfg.seconds, cfg.repeats, cfg.warmup, cfg.rows = 0.1, 3, 0.05, 20_000
        if seconds is not None:
            if not 0 < seconds <= 3600:
                raise UsageError(f"--seconds must be > 0 and <= 3600, got {seconds}")
            cfg.seconds = seconds
        if repeats is not None:
            if repeats < 3:
                raise UsageError(f"--repeats must be at least 3 (a confidence interval needs them), got {repeats}")
            cfg.repeats = repeats
        if rows is not None:
            if rows < 1000:
                raise UsageError(f"--rows must be at least 1000, got {rows}")
            cfg.rows = rows
        return cfg


class WorkerFailed(Exception):
    """A worker answered with an error (one line)."""


class WorkerHung(Exception):
    """A worker did not answer in time; the pool is restarted."""


@dataclass
class WorkerPool:
    size: int
    _procs: list[Any] = field(default_factory=list)
    _pipes: list[Any] = field(default_factory=list)

    def start(self) -> None:
        ctx = multiprocessing.get_context("spawn")  # a clean interpreter: no inherited sockets, threads or loops
        for i in range(self.size):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=worker_main, args=(child,), name=f"dbmatrix-bench-{i}", daemon=True)
            proc.start()
            child.close()
            self._procs.append(proc)
            self._pipes.append(parent)

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
    n, case = spec.concurrency, WORKLOADS[spec.workload].case

    def cell(outcome: str, detail: str | None, metrics: dict[str, Any]) -> CellResult:
        metrics[WALL_MS] = round((time.perf_counter() - started) * 1000.0, 3)
        return CellResult(case=case, target=spec.target.name, driver=spec.driver, outcome=outcome,
                          params=spec.params(), detail=detail, metrics=metrics)

    repeat_timeout = cfg.seconds + REPLY_SLACK_S
    try:
        info = spec.target.connect_info()
        # each worker its own seed: different rows, the same sequence for every driver
        pool.ask_each([("open", spec.driver, info, spec.workload, spec.variant, cfg.rows, 1000 * i + 17)
                       for i in range(n)], REPLY_SLACK_S)
        pool.ask(n, ("warmup", cfg.warmup), cfg.warmup + REPLY_SLACK_S)
        runs: list[list[dict[str, Any]]] = []
        for _ in range(cfg.repeats):
            start_at = time.monotonic_ns() + 3_000_000 * n  # every worker starts at the same instant
            runs.append(pool.ask(n, ("run", start_at, cfg.seconds), repeat_timeout))
        overhead = None
        if n == 1:  # about one more repeat: the timed loop and a bare loop in alternating short rounds
            chunk_s = cfg.seconds / (2 * OVERHEAD_ROUNDS)
            pairs = pool.ask_one(("overhead", chunk_s, OVERHEAD_ROUNDS), 2 * repeat_timeout)["pairs"]
            overhead = overhead_ratio(pairs)
        # the bottleneck column belongs to the default row; tuned rows show their gain instead
        profiled = n == 1 and cfg.profile and spec.variant == DEFAULT
        profile = pool.ask_one(("profile", cfg.seconds), repeat_timeout) if profiled else None
        closed = pool.ask(n, ("close",), REPLY_SLACK_S)
    except WorkerHung as exc:
        pool.stop()
        pool.start()
        return cell(ERROR, str(exc), {})
    except WorkerFailed as exc:
        pool.reset(n)
        return cell(ERROR, str(exc), {})
    return cell(*_summarise(runs, overhead, profile, closed, spec))


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
               closed: list[dict[str, Any]], spec: CellSpec) -> tuple[str, str | None, dict[str, Any]]:
    qps = [sum(w["ops"] / (w["elapsed_ns"] / 1e9) for w in rep if w["elapsed_ns"] > 0) for rep in runs]
    ops = sum(w["ops"] for rep in runs for w in rep)
    errors = sum(w["errors"] for rep in runs for w in rep)
    first_error = next((w["first_error"] for rep in runs for w in rep if w["first_error"]), None)
    if ops == 0:
        return ERROR, first_error or "no operation completed", {"errors": errors}
    mean, half = mean_ci95(qps)
    hist = merge_encoded(w["hist"] for rep in runs for w in rep if w["hist"])
    cpu_ns = sum(w["cpu_ns"] for rep in runs for w in rep)
    rss = [round(c["rss_peak_kb"] / 1024.0, 1) for c in closed]
    metrics: dict[str, Any] = {
        "qps": round(mean, 1), "qps_ci95": round(half, 1), "qps_repeats": [round(q, 1) for q in qps],
        "cv_pct": round(cv_pct(qps), 2), **percentiles_us(hist), "latency_us": percentile_curve_us(hist),
        "cpu_us_per_op": round(cpu_ns / ops / 1000.0, 2), "errors": errors, "ops": ops,
        "rss_peak_mb": max(rss), "rss_peak_mb_workers": rss,
    }
    if spec.workload == "insert_batch":
        metrics["rows_per_op"] = BATCH_ROWS
    if overhead is not None:
        metrics["overhead_pct"] = round(100.0 * overhead, 2)
    detail = None
    if profile is not None:
        metrics["time_split_pct"] = profile["split_pct"]
        metrics["profile_top"] = profile["top"]
        detail = bottleneck(profile["split_pct"])
    if errors:
        detail = f"{errors} errors, first: {first_error}" + (f"; {detail}" if detail else "")
    return MEASURED, detail, metrics


def ceiling_cells(target: Target, workload: str, cfg: BenchConfig) -> list[CellResult]:
    tool = ceilings.tool_for(target)
    if tool is None or not WORKLOADS[workload].pgbench:
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


def bench(run: MatrixRun, cfg: BenchConfig, say: Callable[[str], None]) -> None:
    """Measure every cell into ``run``'s document (targets already prepared)."""
    pool = WorkerPool(max(cfg.concurrency))
    pool.start()
    try:
        for target in [t for t in run.targets if t.status == OK]:
            say(f"loading {cfg.rows} rows into {target.name}")
            try:
                create_and_load(target, cfg.rows)
            except Exception as exc:  # noqa: BLE001 - the target's cells become errors, the run goes on
                for w in cfg.workloads:
                    run.add(CellResult(WORKLOADS[w].case, target.name, "-", ERROR,
                                       detail=f"loading the benchmark tables failed: {type(exc).__name__}: {exc}"))
                continue
            target_cells: list[CellResult] = []
            for workload in cfg.workloads:
                target_cells += ceiling_cells(target, workload, cfg)
                for driver_id in run.driver_ids:
                    adapter = run.adapter(driver_id)
                    if not adapter.supports(target.kind):
                        continue
                    reason = adapter.unavailable_reason()
                    if reason:  # only implicit drivers get here (explicit ones were checked up front)
                        target_cells.append(CellResult(WORKLOADS[workload].case, target.name, driver_id, SKIPPED,
                                                       detail=reason))
                        continue
                    for variant, knobs in variants(driver_id, workload).items():
                        for c in cfg.concurrency:
                            spec = CellSpec(target, driver_id, workload, variant, knobs, c)
                            cell = measure_cell(pool, spec, cfg)
                            target_cells.append(cell)
                            say(f"{spec.label()}: " + (f"{cell.metrics['qps']:.0f} qps" if cell.outcome == MEASURED
                                                      else f"{cell.outcome}: {cell.detail}"))
            add_ratios(target_cells)
            for cell in target_cells:
                run.add(cell)
    finally:
        pool.stop()


def cmd_bench(args: Any) -> int:
    """The ``dbmatrix bench`` verb (options parsed by cli.py)."""
    from ..results import load_document
    from .compare import annotate, print_changes

    cfg = BenchConfig.from_args(args.workload, args.concurrency, args.seconds, args.repeats, args.quick, args.rows)
    old = load_document(args.compare) if args.compare else None
    run = MatrixRun.from_options(args.target, args.driver, [], args.require, args.out)
    check_explicit_drivers(run, [d for opt in args.driver for d in opt.split(",") if d.strip()])

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
    say(f"{len(run.doc.results)} cells in {time.perf_counter() - started:.0f}s; wrote {path}")
    if old is not None:
        print_changes(run.doc)
    return 1 if any(c.outcome == ERROR for c in run.doc.results) else 0
