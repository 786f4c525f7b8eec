"""The ladder table of a bench run: per target and workload, every stack over the same DBAPI driver, raw driver ->
builder -> ORM, with what each rung costs against the driver underneath, from the cells' ``metrics.ladder`` (rung,
driver underneath, ``raw_pct``, ``x_slower`` and its 95% interval, set by ``bench.runner.add_ladder``) and
``metrics.stage_pct`` (where the time goes, from the profile split: ``bench.timesplit.stage_split``).

A ladder is shown at the lowest concurrency measured (1 by default): the cost a layer adds per call, before the
machine's cores are shared between clients and server. Only drivers with at least one layer row measured over them
have a ladder.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from .benchkit import CEILING, PALETTE, _conc, _e, _md_cell, _num, _variant, bench_cells, svg_bars

RUNG_ORDER = {"driver": 0, "builder": 1, "orm": 2}
RUNG_COLOUR = {"driver": PALETTE[0], "builder": PALETTE[1], "orm": PALETTE[2]}
STAGE_LABELS = {"driver": "driver + server", "sql": "SQL building", "objects": "row → object",
                "layer": "layer (SQL + objects)", "other": "harness/other"}
HEADER = ["over", "stack", "rung", "variant", "QPS ± 95% CI", "P99 µs", "CPU µs/op", "% of raw driver",
          "x slower (95% CI)", "x CPU/op (95% CI)", "where the time goes", "knobs"]

Ladder = tuple[str, str, int, dict[str, list[dict[str, Any]]]]  # target, case, concurrency, {dbapi: rows}


def _ladder(r: dict[str, Any]) -> dict[str, Any]:
    return (r.get("metrics") or {}).get("ladder") or {}


def ladders(doc: dict[str, Any]) -> list[Ladder]:
    """Per target and workload, at the lowest concurrency measured there: the rows of each DBAPI driver that has a
    layer measured over it, raw driver first, then builders, then ORMs (by name; default before tuned)."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in bench_cells(doc):
        if r.get("outcome") == "measured" and _variant(r) != CEILING and _ladder(r):
            groups[(r["target"], r["case"])].append(r)
    out = []
    for (target, case), cells in sorted(groups.items()):
        low = min(_conc(r) for r in cells)
        by_dbapi: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in cells:
            if _conc(r) == low:
                by_dbapi[_ladder(r)["over"]].append(r)
        shown = {}
        for dbapi, rows in sorted(by_dbapi.items()):
            has_raw = any(r["driver"] == dbapi for r in rows)
            if has_raw and any(r["driver"] != dbapi for r in rows):
                shown[dbapi] = sorted(rows, key=lambda r: (RUNG_ORDER.get(_ladder(r)["rung"], 9), r["driver"] != dbapi,
                                                           r["driver"], _variant(r) != "default"))
        if shown:
            out.append((target, case, low, shown))
    return out


def time_split(r: dict[str, Any]) -> str:
    """``driver + server 40% · SQL building 25% · row → object 30%`` (the default row's profile; "—" without)."""
    stages = (r.get("metrics") or {}).get("stage_pct") or {}
    parts = [f"{STAGE_LABELS.get(k, k)} {v:.0f}%" for k, v in sorted(stages.items(), key=lambda kv: -kv[1]) if v >= 1]
    return " · ".join(parts) or "—"


def x_text(lad: dict[str, Any], key: str = "x_slower") -> str:
    if key not in lad:
        return "—"
    lo, hi = lad[f"{key.removesuffix('_slower')}_ci95"]
    return f"{lad[key]:.2f}x ({lo:.2f}–{hi:.2f})"


def row_values(r: dict[str, Any]) -> list[str]:
    m, lad = r["metrics"], _ladder(r)
    knobs = (r.get("params") or {}).get("knobs") or {}
    raw = "100% (the driver)" if "raw_pct" not in lad else f"{lad['raw_pct']:.0f}%"
    return [lad["over"], r["driver"], lad["rung"], _variant(r), f"{_num(m.get('qps'))} ± {_num(m.get('qps_ci95'))}",
            _num(m.get("p99_us"), "{:,.1f}"), _num(m.get("cpu_us_per_op"), "{:,.1f}"), raw, x_text(lad),
            x_text(lad, "cpu_x"), time_split(r), "; ".join(f"{k}: {v}" for k, v in knobs.items())]


def largest_gaps(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Per target: the default row with the largest gap to its raw driver over every workload of its ladder, the
    gap the run is surest of: the highest lower bound of the 95% interval (a noisy row's point estimate may be
    higher, but its interval says little)."""
    worst: dict[str, dict[str, Any]] = {}
    for target, _case, _low, shown in ladders(doc):
        for rows in shown.values():
            for r in rows:
                lad = _ladder(r)
                if _variant(r) == "default" and "x_slower" in lad and (
                        target not in worst or lad["x_ci95"][0] > _ladder(worst[target])["x_ci95"][0]):
                    worst[target] = r
    return sorted(worst.items())


def gap_line(target: str, r: dict[str, Any]) -> str:
    lad = _ladder(r)
    lo, hi = lad["x_ci95"]
    x = lad["x_slower"]
    how = f"is {x:.1f}x slower than" if x >= 1 else f"is no slower ({x:.2f}x) than"
    cpu = f"; {lad['cpu_x']:.1f}x its CPU per call" if "cpu_x" in lad else ""
    return (f"{target}: {r['driver']} on {r['case'].removeprefix('bench.')} at c={_conc(r)} {how} {lad['over']} "
            f"alone (95% CI {lo:.1f}–{hi:.1f}x; {lad['raw_pct']:.0f}% of its QPS{cpu}); time: {time_split(r)}")


INTRO = ("Every stack over the same DBAPI driver, in the same run: the raw driver, then builders (pypika, SQLAlchemy "
         "Core), then ORMs, at the lowest concurrency measured. % of raw driver and x slower compare each row with "
         "the raw driver's default row (x slower: the ratio of the two mean QPS with its 95% interval from both rows' "
         "repeats; x CPU/op: the same for the client CPU per call, steadier on a busy machine). Where the time goes: "
         "the default row's profile, split into the driver with the server's round trip, SQL building and row → "
         "object. Regenerate: `dbmatrix bench --target postgres --target mariadb "
         "--target sqlite` (every pair: `--driver all`).")


def ladder_markdown(doc: dict[str, Any], compact: bool = False) -> list[str]:
    """The ladder's Markdown; ``compact``: only the drivers with an ORM over them (the whole ladder), without the
    knobs column (report.html and the full report.md name them), for a report.md that must stay short."""
    found = ladders(doc)
    if compact:
        found = [(t, case, conc, {d: rows for d, rows in shown.items()
                                  if any(_ladder(r)["rung"] == "orm" for r in rows)}) for t, case, conc, shown in found]
        found = [f for f in found if f[3]]
    if not found:
        return []
    width = len(HEADER) - 1 if compact else len(HEADER)
    lines = ["### The ladder: raw driver → builder → ORM", "", INTRO, "",
             "Largest gap to the raw driver per target:", ""]
    if compact:
        lines[3:3] = ["", "Shortened to fit: the drivers with an ORM over them, without the knobs; report.html has "
                      "every ladder with its knobs and chart."]
    lines += [f"- {_md_cell(gap_line(t, r))}" for t, r in largest_gaps(doc)] or ["- (no layer row measured)"]
    lines.append("")
    for target, case, conc, shown in found:
        lines += [f"#### Ladder · {target} · {case} (c={conc})", "", "| " + " | ".join(HEADER[:width]) + " |",
                  "|" + "---|" * width]
        lines += ["| " + " | ".join(_md_cell(v) for v in row_values(r)[:width]) + " |"
                  for rows in shown.values() for r in rows]
        lines.append("")
    return lines


def ladder_chart(target: str, case: str, conc: int, shown: dict[str, list[dict[str, Any]]]) -> str:
    """Bars of each row's QPS as % of its raw driver (the driver itself: 100%), with the 95% interval, coloured by
    rung: the ladder's steps down."""
    bars: list[tuple[str, float, Any, str]] = []
    for rows in shown.values():
        for r in rows:
            lad = _ladder(r)
            pct = lad.get("raw_pct", 100.0)
            ci: Any = (100.0 / lad["x_ci95"][1], 100.0 / lad["x_ci95"][0]) if "x_ci95" in lad else 0.0
            label = r["driver"] + ("" if _variant(r) == "default" else f" ({_variant(r)})")
            bars.append((label, pct, ci, RUNG_COLOUR.get(lad["rung"], PALETTE[3])))
    return svg_bars(f"{target} {case}: % of the raw driver's QPS at concurrency {conc} (driver, builder, ORM)",
                    bars, unit="% of the raw driver", left=240, mark=100.0)


def ladder_html(doc: dict[str, Any]) -> str:
    found = ladders(doc)
    if not found:
        return ""
    intro = INTRO.replace("`", "")
    parts = ['<div id="bench-ladder" class="bench-ladder"><h3>The ladder: raw driver → builder → ORM</h3>',
             f"<p>{_e(intro)}</p>", "<p>Largest gap to the raw driver per target:</p><ul>"]
    parts += [f"<li>{_e(gap_line(t, r))}</li>" for t, r in largest_gaps(doc)]
    legend = " ".join(f'<span style="color:{c}">■ {_e(rung)}</span>' for rung, c in RUNG_COLOUR.items())
    parts.append(f"</ul><p>Chart colours: {legend}</p>")
    for target, case, conc, shown in found:
        parts.append(f"<h4>Ladder · {_e(target)} · {_e(case)} (c={conc})</h4>")
        parts.append('<table class="bench ladder"><thead><tr>' + "".join(f"<th>{_e(h)}</th>" for h in HEADER)
                     + "</tr></thead><tbody>")
        for rows in shown.values():
            parts += ["<tr>" + "".join(f"<td>{_e(v)}</td>" for v in row_values(r)) + "</tr>" for r in rows]
        parts.append("</tbody></table>")
        parts.append(f'<div class="bench-chart ladder-chart">{ladder_chart(target, case, conc, shown)}</div>')
    parts.append("</div>")
    return "\n".join(parts)
