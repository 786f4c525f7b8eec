"""Render a results document as one self-contained HTML file.

Inline CSS and vanilla JS only, with no network references, so the file opens from a CI artifact or an
air-gapped machine. Every text value is HTML-escaped after secrets are masked.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from ..redaction import scrub
from . import _model as m
from .bench import bench_html

_CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:top}
thead th{background:#f3f3f3;font-weight:600}
.params{color:#666;font-weight:normal}
.cell{white-space:nowrap;cursor:help}
.empty{color:#bbb;text-align:center}
.outcome-supported,.outcome-pass{background:#c8ecc8}
.outcome-prevented{background:#dff3d2}
.outcome-unsupported{background:#dedede}
.outcome-differs{background:#ffe0a3}
.outcome-allowed,.outcome-fail{background:#f6b5b5}
.outcome-measured{background:#cfe2fb}
.outcome-error{background:#8b1a1a;color:#fff}
.outcome-skipped{background:#f4f4f4;color:#888}
.deviation{outline:3px solid #d40000;outline-offset:-3px;font-weight:700}
.incomplete{color:#b00;font-weight:700}
#filters{display:flex;gap:1em;flex-wrap:wrap;margin:1em 0;padding:.5em;background:#fafafa;border:1px solid #ddd}
.legend span{display:inline-block;padding:1px 6px;margin:0 3px 3px 0;border:1px solid #ccc}
.details li{font-family:ui-monospace,monospace;font-size:12px}
[hidden]{display:none!important}
"""

# Filtering: columns carry data-target/data-driver, sections carry data-family. The current filter is kept
# in location.hash (e.g. #target=sqlite&family=types) so a filtered view can be linked and reloaded.
_JS = """
(function () {
  var ids = {target: "filter-target", driver: "filter-driver", family: "filter-family"};
  function values(sel, attr) {
    var seen = {};
    document.querySelectorAll(sel).forEach(function (el) { seen[el.getAttribute(attr)] = 1; });
    return Object.keys(seen).sort();
  }
  function fill(select, list) {
    list.forEach(function (v) {
      var o = document.createElement("option"); o.value = v; o.textContent = v; select.appendChild(o);
    });
  }
  function current() {
    var f = {};
    Object.keys(ids).forEach(function (k) { f[k] = document.getElementById(ids[k]).value; });
    f.deviations = document.getElementById("filter-deviations").checked;
    return f;
  }
  function apply() {
    var f = current();
    document.querySelectorAll("section.family").forEach(function (sec) {
      var visibleCols = 0;
      sec.querySelectorAll("[data-target][data-driver]").forEach(function (el) {
        var ok = (!f.target || el.dataset.target === f.target) && (!f.driver || el.dataset.driver === f.driver);
        el.hidden = !ok;
        if (ok && el.tagName === "TH") { visibleCols++; }
      });
      sec.querySelectorAll("tbody tr").forEach(function (tr) {
        var cells = tr.querySelectorAll("td.cell:not([hidden])");
        var dev = tr.querySelectorAll("td.cell.deviation:not([hidden])");
        tr.hidden = cells.length === 0 || (f.deviations && dev.length === 0);
      });
      if (f.deviations) {
        sec.querySelectorAll("li[data-target]:not([hidden])").forEach(function (li) {
          li.hidden = !li.dataset.deviation;
        });
      }
      var visibleRows = sec.querySelectorAll("tbody tr:not([hidden])").length;
      sec.hidden = (f.family && sec.dataset.family !== f.family) || visibleCols === 0 || visibleRows === 0;
    });
    var h = [];
    Object.keys(ids).forEach(function (k) { if (f[k]) { h.push(k + "=" + encodeURIComponent(f[k])); } });
    if (f.deviations) { h.push("deviations=1"); }
    try {
      history.replaceState(null, "", h.length ? "#" + h.join("&") : location.pathname);
    } catch (e) { /* some file:// contexts refuse history updates; filtering still works */ }
  }
  function init() {
    fill(document.getElementById(ids.target), values("table.matrix th[data-target]", "data-target"));
    fill(document.getElementById(ids.driver), values("table.matrix th[data-driver]", "data-driver"));
    fill(document.getElementById(ids.family), values("table.matrix", "data-family"));
    location.hash.replace(/^#/, "").split("&").forEach(function (kv) {
      var p = kv.split("="), k = p[0], v = decodeURIComponent(p[1] || "");
      if (ids[k]) { document.getElementById(ids[k]).value = v; }
      if (k === "deviations") { document.getElementById("filter-deviations").checked = v === "1"; }
    });
    Object.keys(ids).forEach(function (k) { document.getElementById(ids[k]).addEventListener("change", apply); });
    document.getElementById("filter-deviations").addEventListener("change", apply);
    apply();
    document.body.setAttribute("data-ready", "1");
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); } else { init(); }
})();
"""


def _e(value: object) -> str:
    return escape(m.text(value), quote=True)


def _tooltip(cell: dict[str, Any]) -> str:
    parts = [
        f"{k}: {m.text(cell[k])}" for k in ("outcome", "mechanism", "detail", "expected", "verdict") if cell.get(k)
    ]
    if cell.get("params"):
        parts.append(f"params: {m.params_text(cell['params'])}")
    for name, value in sorted((cell.get("metrics") or {}).items()):
        parts.append(f"{name}: {value}")
    return "\n".join(parts)


def _td(cell: dict[str, Any] | None, target: str, driver: str) -> str:
    col = f'data-target="{_e(target)}" data-driver="{_e(driver)}"'
    if cell is None:
        return f'<td class="empty" {col}>{m.NO_CELL}</td>'
    outcome = str(cell.get("outcome"))
    params = json.dumps(cell.get("params") or {}, sort_keys=True)
    classes = f"cell outcome-{outcome}" + (" deviation" if m.is_deviation(cell) else "")
    attrs = (
        f'class="{_e(classes)}" data-case="{_e(cell.get("case"))}" {col} data-outcome="{_e(outcome)}"'
        f' data-verdict="{_e(cell.get("verdict"))}" data-params="{_e(params)}"'
        f' title="{_e(_tooltip(cell))}"'
    )
    return f"<td {attrs}>{_e(m.short_text(cell))}</td>"


def _detail_li(cell: dict[str, Any]) -> str:
    flag = ' data-deviation="1"' if m.is_deviation(cell) else ""
    col = f'data-target="{_e(cell.get("target"))}" data-driver="{_e(cell.get("driver"))}"'
    return f"<li {col}{flag}>{_e(m.detail_line(cell))}</li>"


def _family(fam: m.Family) -> str:
    head = "".join(
        f'<th data-target="{_e(t)}" data-driver="{_e(d)}">{_e(t)}<br><span class="params">{_e(d)}</span></th>'
        for t, d in fam.columns
    )
    rows = []
    for row in fam.rows:
        params = m.params_text(json.loads(row[1]))
        label = _e(row[0]) + (f' <span class="params">{_e(params)}</span>' if params else "")
        tds = "".join(_td(fam.cells.get((row, col)), *col) for col in fam.columns)
        rows.append(f'<tr><th scope="row">{label}</th>{tds}</tr>')
    details = fam.details()
    items = "".join(_detail_li(c) for c in details)
    details_html = (
        f'<details class="details" open><summary>Details ({len(details)})</summary><ul>{items}</ul></details>'
        if details
        else ""
    )
    return (
        f'<section class="family" data-family="{_e(fam.name)}"><h2>{_e(fam.name)}</h2>'
        f'<table class="matrix" data-family="{_e(fam.name)}"><thead><tr><th>case</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>{details_html}</section>"
    )


def _targets(doc: dict[str, Any]) -> str:
    keys = ("name", "kind", "server_version", "url", "status", "reason")
    rows = "".join(
        f'<tr class="target-{_e(t.get("status"))}">' + "".join(f"<td>{_e(t.get(k))}</td>" for k in keys) + "</tr>"
        for t in doc.get("targets") or []
    )
    head = "".join(f"<th>{k.replace('_', ' ')}</th>" for k in keys)
    return f'<h2>Targets</h2><table class="targets"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


def _header(doc: dict[str, Any]) -> str:
    run = doc.get("run") or {}
    complete = "yes" if run.get("complete") else '<span class="incomplete">no — partial results</span>'
    items = [
        ("Started", _e(run.get("started"))),
        ("Finished", _e(run.get("finished"))),
        ("Complete", complete),
        ("Python", _e(run.get("python"))),
        ("dbmatrix", _e(run.get("dbmatrix"))),
    ]
    meta = "".join(f"<li>{k}: {v}</li>" for k, v in items)
    legend = "".join(f'<span class="outcome-{o}">{o}</span>' for o in m.OUTCOMES)
    legend += '<span class="deviation">deviation ⚠</span>'
    return (
        f"<h1>dbmatrix report — run <code>{_e(run.get('id'))}</code></h1><ul class='run'>{meta}</ul>"
        f'<p class="summary"><strong>Summary:</strong> {_e(m.summary_line(doc))}</p>'
        f'<p class="legend">{legend}</p>'
    )


_FILTERS = (
    '<form id="filters" onsubmit="return false">'
    '<label>Target <select id="filter-target"><option value="">all</option></select></label>'
    '<label>Driver <select id="filter-driver"><option value="">all</option></select></label>'
    '<label>Family <select id="filter-family"><option value="">all</option></select></label>'
    '<label><input type="checkbox" id="filter-deviations"> only rows with deviations</label>'
    "</form>"
)


def render_html(doc: dict[str, Any]) -> str:
    """The whole report as a single HTML page: header, filters, targets, one matrix per case family."""
    fams = m.families(doc)
    body = "".join(_family(f) for f in fams) or "<p>No results.</p>"
    body += bench_html(doc)  # performance tables and charts (report/bench.py)
    run_id = _e((doc.get("run") or {}).get("id"))
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>dbmatrix report {run_id}</title><style>{_CSS}</style></head>"
        f"<body>{_header(doc)}{_FILTERS}{_targets(doc)}{body}<script>{_JS}</script></body></html>\n"
    )
    return scrub(page)
