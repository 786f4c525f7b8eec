"""The performance section of the reports, from ``bench.*`` cells of a results document alone.

``bench_markdown(doc)`` gives the seed-style table per target and workload (driver, QPS with its 95% CI, P99,
ceiling %, bottleneck, tuned gain, plus CV, CPU wait and harness overhead so readers can judge the numbers, and the
run's noise in one line: ``noise_line``);
Both start with the ladder (``report/ladder.py``: every stack over one DBAPI driver, raw driver -> builder -> ORM).
``bench_html(doc)`` gives the same tables with charts drawn as inline SVG (no scripts, no CDN): QPS bars per
driver, latency percentile curves, and concurrency scaling, and for cells with a per-second series (``--duration``
of 2 s or more) ops/s and P99 over time, where stalls show. Both return "" when the document has no bench cells.
"""

from __future__ import annotations

import math
import os
import statistics
from collections import defaultdict
from typing import Any

from .benchkit import CEILING, PALETTE, _conc, _e, _md_cell, _num, _variant, bench_cells, svg_bars
from .ladder import ladder_html, ladder_markdown


def _groups(doc: dict[str, Any]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in bench_cells(doc):
        groups[(r["target"], r["case"])].append(r)
    return groups


def _interval(r: dict[str, Any]) -> tuple[float, float]:
    m = r.get("metrics") or {}
    qps, half = float(m.get("qps") or 0.0), float(m.get("qps_ci95") or 0.0)
    return qps - half, qps + half


def ranks(cells: list[dict[str, Any]]) -> dict[int, str]:
    """Rank of each measured driver cell (by ``id``) among ``cells`` of one concurrency: 1 + the number of cells
    faster beyond doubt (their 95% interval lies wholly above this one's). Cells whose intervals overlap share a
    rank, written ``=2``: the run cannot tell them apart. Ceilings (pgbench, mysqlslap) are not ranked."""
    rows = [r for r in cells if r.get("outcome") == "measured" and _variant(r) != CEILING]
    out = {}
    for r in rows:
        lo, hi = _interval(r)
        out[id(r)] = 1 + sum(1 for o in rows if o is not r and _interval(o)[0] > hi)
    shared = {n for n in out.values() if list(out.values()).count(n) > 1}
    return {k: (f"={n}" if n in shared else str(n)) for k, n in out.items()}


def _overhead(value: Any) -> str:
    """The harness overhead; a negative estimate is noise (the bare loop was slower this time), never shown raw."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "—"
    return f"{value:.1f}" if value >= 0.05 else "≈0 (within noise)"


def table_rows(cells: list[dict[str, Any]]) -> list[list[str]]:
    """One row per (driver, variant, concurrency), fastest first within a concurrency and ranked only where the
    intervals say so; a tuned variant is a row of its own with its gain over the default one."""
    rows = []
    shown = sorted(cells, key=lambda r: (_conc(r), _variant(r) != CEILING,
                                         -((r.get("metrics") or {}).get("qps") or 0)))
    rank = {}
    for conc in {_conc(r) for r in cells}:
        rank.update(ranks([r for r in cells if _conc(r) == conc]))
    for r in shown:
        m = r.get("metrics") or {}
        if r.get("outcome") != "measured":
            rows.append([_name(r), str(_conc(r)), r.get("outcome", "?"), "", "", "", "", r.get("detail") or "", "",
                         "", "", ""])
            continue
        gain = ""
        if _variant(r) == "tuned":
            gain = _num(m.get("tuned_gain_pct"), "{:+.0f}%")
            base = next((b for b in cells if b["driver"] == r["driver"] and _conc(b) == _conc(r)
                         and _variant(b) == "default" and b.get("outcome") == "measured"), None)
            if base is not None and _overlap(r, base):
                gain += " (within noise)"  # the two 95% intervals overlap
        qps = f"{_num(m.get('qps'))} ± {_num(m.get('qps_ci95'))}"
        cmp = m.get("compare")
        if cmp and cmp.get("beyond_noise"):
            qps += f" ({cmp['verdict']} {cmp['change_pct']:+.0f}%)"
        rows.append([_name(r), str(_conc(r)), qps, rank.get(id(r), ""), _num(m.get("p50_us"), "{:,.1f}"),
                     _num(m.get("p99_us"), "{:,.1f}"), _num(m.get("ceiling_pct"), "{:.0f}%"),
                     r.get("detail") or "" if _variant(r) != CEILING else "", gain, _num(m.get("cv_pct"), "{:.1f}"),
                     _num(m.get("cpu_wait_pct"), "{:.0f}"), _overhead(m.get("overhead_pct"))])
    return rows


def _name(r: dict[str, Any]) -> str:
    variant = _variant(r)
    return r["driver"] + (f" ({variant})" if variant and variant != "default" else "")


def _overlap(a: dict[str, Any], b: dict[str, Any]) -> bool:
    (alo, ahi), (blo, bhi) = _interval(a), _interval(b)
    return alo <= bhi and blo <= ahi


HEADER = ["driver", "conc.", "QPS ± 95% CI", "rank", "P50 µs", "P99 µs", "ceiling %", "bottleneck (profile)",
          "tuned gain", "CV %", "CPU wait %", "harness overhead %"]


def quick_line(doc: dict[str, Any]) -> str:
    """Said at the top of the section when the run was ``dbmatrix bench --quick``: a smoke test, not a ranking."""
    cells = bench_cells(doc)
    if not any((r.get("metrics") or {}).get("quick") for r in cells):
        return ""
    return ("**A `--quick` run**: short repeats on a small table, a smoke test of the harness and the drivers; "
            "its numbers are noisy and not for choosing between drivers (run `dbmatrix bench` without `--quick`).")


def summary_lines(doc: dict[str, Any], top: int = 3) -> list[str]:
    """The console's summary: per target, workload and concurrency, the fastest rows with their intervals and
    ranks (shared where the intervals overlap), and the ceiling."""
    lines = []
    for (target, case), cells in sorted(_groups(doc).items()):
        for conc in sorted({_conc(r) for r in cells}):
            at = [r for r in cells if _conc(r) == conc and r.get("outcome") == "measured"]
            rank = ranks(at)
            drivers = sorted((r for r in at if _variant(r) != CEILING), key=lambda r: -r["metrics"]["qps"])
            parts = [f"{rank[id(r)]}. {_name(r)} {_num(r['metrics']['qps'])} ± {_num(r['metrics'].get('qps_ci95'))}"
                     for r in drivers[:top]]
            if len(drivers) > top:
                parts.append(f"… {len(drivers) - top} more")
            ceilings = [f"{r['driver']} {_num(r['metrics']['qps'])}" for r in at if _variant(r) == CEILING]
            failed = sum(1 for r in cells if _conc(r) == conc and r.get("outcome") != "measured")
            line = f"{target} {case.removeprefix('bench.')} c={conc}: " + ("; ".join(parts) or "nothing measured")
            line += f" (ceiling {', '.join(ceilings)})" if ceilings else ""
            line += f"; {failed} failed" if failed else ""
            lines.append(line)
    return lines


def noise_line(cells: list[dict[str, Any]]) -> str:
    """The run's noise in one sentence: median CV of the measured cells, how long their load generator waited for a
    CPU (``cpu_wait_pct``: ready to run, but another process had the core), and the load average."""
    measured = [r["metrics"] for r in cells if r.get("outcome") == "measured" and _variant(r) != CEILING
                and "cv_pct" in (r.get("metrics") or {})]
    if not measured:
        return ""
    cv = statistics.median(m["cv_pct"] for m in measured)
    line = f"Noise: median CV {cv:.1f}% over {len(measured)} cells"
    waits = [m["cpu_wait_pct"] for m in measured if "cpu_wait_pct" in m]
    if waits:
        line += f"; the load generator waited for a CPU {statistics.median(waits):.0f}% of its timed windows (median)"
    loads = [m["load_1m"] for m in measured if "load_1m" in m]
    if loads:
        line += f"; load average {statistics.median(loads):.1f} (median; this machine has {os.cpu_count()} CPUs)"
    return line + ". A high CV with a high CPU wait is the machine's other work, not the driver."


def knob_lines(cells: list[dict[str, Any]]) -> list[str]:
    seen: dict[tuple[str, str], dict[str, str]] = {}
    for r in cells:
        knobs = (r.get("params") or {}).get("knobs")
        if knobs and _variant(r) == "tuned":
            seen.setdefault((r["driver"], _variant(r)), knobs)
    return [f"{d}: " + "; ".join(f"{k} = {v}" for k, v in knobs.items()) for (d, _), knobs in sorted(seen.items())]


def bench_markdown(doc: dict[str, Any]) -> str:
    groups = _groups(doc)
    if not groups:
        return ""
    lines = ["## Performance (dbmatrix bench)", "",
             "QPS is the mean over repeats with its 95% confidence interval; P50/P99 from HdrHistogram merged over "
             "workers; ceiling % against pgbench/mysqlslap with the same statements and concurrency in the same run; "
             "bottleneck from a cProfile of one repeat; tuned gain is the tuned variant against the default one; "
             "CPU wait is the share of the timed windows the load generator was ready but had no CPU. Rank: 1 + the "
             "rows faster beyond their 95% intervals; rows whose intervals overlap share a rank (=2).", ""]
    quick = quick_line(doc)
    if quick:
        lines[1:1] = ["", quick]
    noise = noise_line(bench_cells(doc))
    if noise:
        lines += [noise, ""]
    lines += ladder_markdown(doc)
    for (target, case), cells in sorted(groups.items()):
        lines += [f"### {target} · {case}", "", "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
        lines += ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in table_rows(cells)]
        knobs = knob_lines(cells)
        if knobs:
            lines += ["", "Tuned knobs:", *[f"- {_md_cell(k)}" for k in knobs]]
        for line in over_time_lines(cells):
            lines += ["", _md_cell(line)]
        lines.append("")
    return "\n".join(lines)


def bench_summary_markdown(doc: dict[str, Any]) -> str:
    """What report.md keeps of the performance section when all of it does not fit: the ladder, compact."""
    lines = ladder_markdown(doc, compact=True)
    return "\n".join(["## Performance (dbmatrix bench): the ladder", "", *lines[1:]]) if lines else ""


# --- HTML + SVG -----------------------------------------------------------------------------------------------


def svg_lines(title: str, series: list[tuple[str, list[tuple[float, float]]]], x_label: str, y_label: str,
              log_x_nines: bool = False, log_y: bool = False, width: int = 640, height: int = 260,
              max_ticks: int | None = None) -> str:
    """Line chart; ``log_x_nines`` spaces percentiles by their nines (50, 90, 99, 99.9 equally apart)."""
    series = [(name, pts) for name, pts in series if pts]
    if not series:
        return ""
    left, right, top, bottom = 60, 170, 24, 36

    def fx(x: float) -> float:
        return -math.log10(max(1e-6, 1.0 - x / 100.0)) if log_x_nines else x

    def fy(y: float) -> float:
        return math.log10(max(y, 1e-3)) if log_y else y

    xs = [fx(x) for _, pts in series for x, _ in pts]
    ys = [fy(y) for _, pts in series for _, y in pts]
    x0, x1 = min(xs), max(xs)
    y0, y1 = (min(ys), max(ys)) if log_y else (0.0, max(ys))
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)

    def px(x: float) -> float:
        return left + (fx(x) - x0) / (x1 - x0) * (width - left - right)

    def py(y: float) -> float:
        return height - bottom - (fy(y) - y0) / (y1 - y0) * (height - top - bottom)

    parts = [f'<svg class="chart" width="{width}" height="{height}" role="img" '
             f'aria-label="{_e(title)}"><title>{_e(title)}</title>',
             f'<text x="4" y="14" font-size="12" font-weight="bold">{_e(title)}</text>',
             f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="#888"/>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#888"/>',
             f'<text x="{(left + width - right) / 2:.0f}" y="{height - 4}" font-size="11" text-anchor="middle">'
             f'{_e(x_label)}</text>',
             f'<text x="4" y="{top + 10}" font-size="11">{_e(y_label)}</text>']
    ticks_x = sorted({x for _, pts in series for x, _ in pts})
    if max_ticks and len(ticks_x) > max_ticks:  # a time axis: a label every few points, not on each
        ticks_x = ticks_x[:: math.ceil(len(ticks_x) / max_ticks)]
    for x in ticks_x:
        parts.append(f'<text x="{px(x):.1f}" y="{height - bottom + 14}" font-size="10" text-anchor="middle">'
                     f'{x:g}</text>')
    for frac in (0.0, 0.5, 1.0):
        yv = y0 + frac * (y1 - y0)
        label = 10 ** yv if log_y else yv
        ypos = height - bottom - frac * (height - top - bottom)
        parts.append(f'<text x="{left - 4}" y="{ypos + 4:.1f}" font-size="10" text-anchor="end">{label:,.0f}</text>')
    for i, (name, pts) in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{path}">'
                     f'<title>{_e(name)}</title></polyline>')
        parts.append(f'<text x="{width - right + 6}" y="{top + 12 + 13 * i}" font-size="10" fill="{colour}">'
                     f'{_e(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def charts(cells: list[dict[str, Any]], title: str) -> str:
    measured = [r for r in cells if r.get("outcome") == "measured" and (r.get("metrics") or {}).get("qps")]
    if not measured:
        return ""
    low = min(_conc(r) for r in measured)
    at_low = sorted((r for r in measured if _conc(r) == low), key=lambda r: -r["metrics"]["qps"])
    colour = {"default": PALETTE[0], "tuned": PALETTE[1], CEILING: PALETTE[4]}
    bars = [(f"{r['driver']} {_variant(r)}", r["metrics"]["qps"], r["metrics"].get("qps_ci95", 0.0),
             colour.get(_variant(r), PALETTE[2])) for r in at_low]
    out = [svg_bars(f"{title}: QPS at concurrency {low}", bars)]
    curves = [(f"{r['driver']} {_variant(r)}", [(p, us) for p, us in r["metrics"].get("latency_us", [])])
              for r in at_low if _variant(r) in ("default", CEILING)][: len(PALETTE)]
    out.append(svg_lines(f"{title}: latency percentiles at concurrency {low}", curves, "percentile", "µs",
                         log_x_nines=True, log_y=True))
    by_driver: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for r in measured:
        if _variant(r) in ("default", CEILING):
            by_driver[r["driver"]].append((float(_conc(r)), r["metrics"]["qps"]))
    scaling = [(d, sorted(pts)) for d, pts in sorted(by_driver.items()) if len(pts) > 1][: len(PALETTE)]
    if scaling:
        out.append(svg_lines(f"{title}: QPS by concurrency", scaling, "concurrency (worker processes)", "QPS"))
    return "".join(f'<div class="bench-chart">{c}</div>' for c in out if c)


def _series_cells(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in cells if r.get("outcome") == "measured" and (r.get("metrics") or {}).get("series")]


def _cell_name(r: dict[str, Any]) -> str:
    return f"{r['driver']} {_variant(r)} c={_conc(r)}"


def series_charts(cells: list[dict[str, Any]], title: str) -> str:
    """Ops/s and P99 per second of each cell with a series: a stall is a dip in the one and a spike in the other."""
    with_series = _series_cells(cells)[: len(PALETTE)]
    if not with_series:
        return ""

    def points(r: dict[str, Any], key: str) -> list[tuple[float, float]]:
        s = r["metrics"]["series"]
        return [(t, v) for t, v in zip(s["t_s"], s[key], strict=False) if v is not None]

    width = with_series[0]["metrics"]["series"].get("bucket_s", 1)
    axis = f"seconds into the cell's timed windows (repeats end to end; {width} s buckets)"
    out = [svg_lines(f"{title}: ops/s over time", [(_cell_name(r), points(r, "ops_s")) for r in with_series],
                     axis, "ops/s", max_ticks=12),
           svg_lines(f"{title}: P99 over time", [(_cell_name(r), points(r, "p99_us")) for r in with_series],
                     axis, "P99 µs", max_ticks=12)]
    return "".join(f'<div class="bench-chart bench-series">{c}</div>' for c in out if c)


def over_time_lines(cells: list[dict[str, Any]]) -> list[str]:
    """One line each for what ``--rate`` and the series say: the schedule's lag, and the slowest second."""
    lines = []
    rated = [r for r in cells if r.get("outcome") == "measured" and "rate_ops_s" in (r.get("metrics") or {})]
    if rated:
        worst = max(rated, key=lambda r: r["metrics"]["lag_max_us"])
        late = sum(r["metrics"]["late_ops"] for r in rated)
        missed = sum(r["metrics"].get("missed_ops", 0) for r in rated)
        lines.append(f"At --rate {rated[0]['metrics']['rate_ops_s']:g} ops/s (latency from each call's scheduled "
                     f"start): {late} calls started more than one interval late"
                     + (f", {missed} were still queued when their window ended" if missed else "")
                     + f"; worst start lag {worst['metrics']['lag_max_us']:,.0f} µs ({_cell_name(worst)}).")
    slowest: tuple[float, float, float, str] | None = None
    for r in _series_cells(cells):
        s = r["metrics"]["series"]
        p99 = [(v, t) for t, v in zip(s["t_s"], s["p99_us"], strict=False) if v is not None]
        if len(p99) > 1:
            v, t = max(p99)
            median = statistics.median(x for x, _ in p99)
            if slowest is None or v / max(median, 1e-9) > slowest[0] / max(slowest[2], 1e-9):
                slowest = (v, t, median, _cell_name(r))
    if slowest is not None:
        v, t, median, name = slowest
        lines.append(f"Slowest second: {name} at t={t:g} s, P99 {v:,.0f} µs against a median second's "
                     f"{median:,.0f} µs.")
    return lines


def bench_html(doc: dict[str, Any]) -> str:
    groups = _groups(doc)
    if not groups:
        return ""
    # a <div>, not a <section>: the report's family filters work on its family sections
    parts = ['<div id="bench-performance" class="bench-report"><h2>Performance (dbmatrix bench)</h2>',
             "<p>QPS: mean over repeats ± 95% CI. Ceiling: pgbench/mysqlslap with the same statements and "
             "concurrency in the same run. Bottleneck: cProfile of one repeat. CPU wait: the share of the timed "
             "windows the load generator was ready but had no CPU. Rank: 1 + the rows faster beyond their 95% "
             "intervals; rows whose intervals overlap share a rank (=2).</p>"]
    quick = quick_line(doc)
    if quick:
        parts.append(f"<p><strong>{_e(quick.replace('**', '').replace('`', ''))}</strong></p>")
    noise = noise_line(bench_cells(doc))
    if noise:
        parts.append(f"<p>{_e(noise)}</p>")
    parts.append(ladder_html(doc))
    for (target, case), cells in sorted(groups.items()):
        parts.append(f"<h3>{_e(target)} · {_e(case)}</h3>")
        parts.append('<table class="bench"><thead><tr>' + "".join(f"<th>{_e(h)}</th>" for h in HEADER)
                     + "</tr></thead><tbody>")
        for row in table_rows(cells):
            parts.append("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in row) + "</tr>")
        parts.append("</tbody></table>")
        knobs = knob_lines(cells)
        if knobs:
            parts.append("<p>Tuned knobs:</p><ul>" + "".join(f"<li>{_e(k)}</li>" for k in knobs) + "</ul>")
        parts.append(charts(cells, f"{target} {case}"))
        parts += [f"<p>{_e(line)}</p>" for line in over_time_lines(cells)]
        parts.append(series_charts(cells, f"{target} {case}"))
    parts.append("</div>")
    return "\n".join(parts)
