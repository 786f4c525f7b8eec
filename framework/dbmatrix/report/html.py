"""Render a results document as one self-contained HTML page: a heat map of cases × (target, driver).

Inline CSS and vanilla JS only, with no network references, so the file opens from a CI artifact or an
air-gapped machine. Cells carry only a class (their outcome); what a cell says (detail, metrics, findings,
artifacts) travels once in a JSON block and is shown in the details panel on click, which keeps ~1000 cells
well under 200 kB. Filters and the selected cell live in the URL fragment so a view can be linked.
Every text value is HTML-escaped after secrets are masked.
"""

from __future__ import annotations

import base64
import hashlib
import json
from html import escape
from typing import Any

from ..redaction import scrub
from ..results import OUTCOMES
from . import _model as m
from .sections import html_fragment

# Three-letter class per outcome (short, because there is one per cell); the glyph keeps outcomes apart in
# monochrome print and for colour-blind readers.
CODES = {o: o[:3] for o in OUTCOMES}
_STYLE = {
    "supported": ("#7cc47c", "#000", ""),
    "pass": ("#7cc47c", "#000", ""),
    "prevented": ("#b5dfa0", "#000", "✓"),
    "not-found": ("#e8eedf", "#333", "?"),  # a bounded search found nothing: pale, never the prevented tick
    "unsupported": ("#cfcfcf", "#333", "–"),
    "differs": ("#ffc85c", "#000", "≠"),
    "allowed": ("#f2a0a0", "#000", "!"),
    "fail": ("#e05d5d", "#fff", "✗"),
    "measured": ("#9cc0ee", "#000", "·"),
    "error": ("#7a1010", "#fff", "E"),
    "skipped": ("#f4f4f4", "#999", "s"),
}
_OTHER_STYLE = ("#d9c7f0", "#000", "?")  # an outcome added to the vocabulary later (e.g. a search's not-found)
CELL_PX = 15
LONG_LABEL = 56  # characters of a short row label beyond which it may not fit the case column on one line

_CSS = """
*{box-sizing:border-box}
body{font:13px/1.35 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#222;background:#fff}
header{padding:8px 12px 4px;border-bottom:1px solid #ddd}
h1{font-size:16px;margin:0 0 2px}h1 code{font-size:13px;color:#555}
p{margin:3px 0}.incomplete{color:#b00;font-weight:700}.skipped-t{color:#8a5a00}
#filters{display:flex;gap:10px;flex-wrap:wrap;align-items:center;margin:4px 0}
#filters label{white-space:nowrap}#filters select{max-width:11em}#filters input[type=search]{width:11em}
.legend{display:flex;flex-wrap:wrap;gap:4px;margin:4px 0}
.legend button{font:inherit;font-size:12px;border:1px solid #bbb;background:#fff;border-radius:3px;padding:0 5px;
 cursor:pointer}
.legend button[aria-pressed=true]{border-color:#000;box-shadow:0 0 0 1px #000}
.sw{display:inline-block;width:12px;height:12px;vertical-align:-2px;margin-right:3px;border:1px solid #999;
 text-align:center;font-size:9px;line-height:11px}
#layout{display:flex;align-items:flex-start;gap:10px;padding:6px 12px}
main{flex:0 1 auto;min-width:0;max-width:100%}
#wrap{overflow:auto;max-height:calc(100vh - 130px);max-width:100%;width:fit-content;border:1px solid #ccc}
#matrix{border-collapse:separate;border-spacing:0;font-size:11px}
#matrix td,#matrix th{padding:0;border-right:1px solid #fff;border-bottom:1px solid #fff}
#matrix thead th{position:sticky;background:#f3f3f3;z-index:2;font-weight:600}
#matrix thead tr.tg th{top:0;height:20px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis;
 max-width:1px;border-left:2px solid #888;padding:0 2px;text-align:left}
#matrix thead tr.dr th{top:20px;height:150px;vertical-align:bottom;width:CELLpx;min-width:CELLpx;max-width:CELLpx}
#matrix thead tr.dr th span{writing-mode:vertical-rl;transform:rotate(180deg);white-space:nowrap;
 font-weight:400;display:inline-block;max-height:146px;overflow:hidden;padding:2px 0}
#matrix th.case{position:sticky;left:0;z-index:1;background:#fff;text-align:left;font-weight:400;
 white-space:nowrap;max-width:360px;min-width:120px;padding:0 6px 0 3px;
 height:CELLpx;border-right:1px solid #ccc}
#matrix th.case.long{white-space:normal;overflow-wrap:anywhere;line-height:1.2;min-width:360px}
#matrix thead th.corner{left:0;z-index:3;top:0;text-align:left;vertical-align:bottom;padding:3px;
 min-width:120px;max-width:360px;border-right:1px solid #ccc}
#matrix tr.fh th{position:sticky;left:0;text-align:left;background:#e9eef5;padding:2px 4px;font-weight:600;
 white-space:nowrap;z-index:1;cursor:pointer;border-top:2px solid #fff}
#matrix tr.fh .alike{font-weight:400;color:#335;margin-left:8px;text-decoration:underline}
#matrix td{width:CELLpx;min-width:CELLpx;height:CELLpx;text-align:center;cursor:pointer;line-height:CELLpx;
 font-size:10px}
#matrix td:not([class]),#matrix td[class=tb]{cursor:default}
#matrix td.tb,#matrix th.tb{border-left:2px solid #888}
#matrix td.dv,.sw.dvs{box-shadow:inset 0 0 0 2px #d00000;font-weight:700}
#matrix td.dv::after{content:"⚠"!important;color:#d00000}
#matrix td.na{opacity:.45}
#findings small.why{color:#333;font-style:italic}
#matrix td.sel{outline:2px solid #1a4fd0;outline-offset:-1px;position:relative;z-index:1}
#matrix.hl-on td:not(.hl){opacity:.25}
#matrix tr.r:hover th.case{background:#eef3ff}
#matrix th.case .p{color:#335}
OUTCOME_RULES
aside{flex:1 1 380px;min-width:340px;max-width:900px;max-height:calc(100vh - 130px);overflow:auto;
 border:1px solid #ccc;padding:6px 8px;
 position:sticky;top:6px;font-size:12px}
aside h2{font-size:13px;margin:4px 0}
#cell{border-bottom:1px solid #ccc;padding-bottom:6px;margin-bottom:6px}
#cell dl{display:grid;grid-template-columns:max-content 1fr;gap:1px 8px;margin:4px 0}
#cell dt{color:#666}#cell dd{margin:0;white-space:pre-wrap;word-break:break-word}
#cell table{border-collapse:collapse;margin:4px 0}#cell td,#cell th{border:1px solid #ddd;padding:1px 4px;
 text-align:left;vertical-align:top;word-break:break-word}
#cell button{float:right}
#findings details{margin:3px 0}#findings summary{font-weight:600;cursor:pointer}
#findings ul{margin:2px 0;padding-left:14px}#findings li{margin:2px 0;cursor:pointer}
#findings li.on{background:#fff3c4}#findings small{color:#555;display:block;word-break:break-word}
.n{font-variant-numeric:tabular-nums;color:#333}
footer{padding:6px 12px}footer table{border-collapse:collapse;font-size:12px}
footer td,footer th{border:1px solid #ddd;padding:2px 6px;text-align:left}
#extras{padding:0 12px}
.extra{margin:8px 0;overflow-x:auto}.extra table{border-collapse:collapse;font-size:12px;margin:4px 0}
.extra td,.extra th{border:1px solid #ddd;padding:2px 6px;text-align:left}.extra h2{font-size:14px}
[hidden]{display:none!important}
@media (max-width:1100px){#layout{flex-direction:column}aside{width:100%;position:static;max-height:none;flex:none}
 #wrap{max-height:70vh}#cell{position:fixed;left:0;right:0;bottom:0;max-height:45vh;overflow:auto;background:#fff;
 box-shadow:0 -2px 10px rgba(0,0,0,.35);z-index:10;padding:8px 12px;margin:0}}
@media (max-width:700px){#matrix th.case,#matrix thead th.corner{max-width:150px;min-width:90px}}
"""

_JS = r"""
(function () {
  var D = JSON.parse(document.getElementById("dbm-data").textContent);
  function S(i) { return i === undefined ? undefined : D.s[i]; }
  var T = document.getElementById("matrix");
  if (!T) { document.body.setAttribute("data-ready", "1"); return; }
  var F = {target: "", driver: "", family: "", outcome: "", q: "", dev: "", alike: "", sel: "", open: ""};
  var SELECTS = ["target", "driver", "family", "outcome"];
  var rows = [].slice.call(T.querySelectorAll("tbody tr.r"));
  var heads = [].slice.call(T.querySelectorAll("thead tr.dr th"));
  var tgs = [].slice.call(T.querySelectorAll("thead tr.tg th[data-first]"));
  var fams = [].slice.call(T.querySelectorAll("tbody[data-f]"));
  var items = [].slice.call(document.querySelectorAll("#findings li[data-cells]"));
  function $(id) { return document.getElementById(id); }
  function plural(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }
  function code(td) { var c = td.classList[0]; return c && c !== "tb" ? c : ""; }
  function readHash() {
    location.hash.replace(/^#/, "").split("&").forEach(function (kv) {
      var i = kv.indexOf("="), k = i < 0 ? kv : kv.slice(0, i), v = i < 0 ? "" : decodeURIComponent(kv.slice(i + 1));
      if (Object.prototype.hasOwnProperty.call(F, k)) { F[k] = v; }
    });
  }
  function writeHash() {
    var h = [];
    Object.keys(F).forEach(function (k) { if (F[k]) { h.push(k + "=" + encodeURIComponent(F[k])); } });
    try { history.replaceState(null, "", h.length ? "#" + h.join("&") : location.pathname + location.search); }
    catch (e) { /* some file:// contexts refuse history updates; filtering still works */ }
  }
  function syncForm() {
    SELECTS.forEach(function (k) { $("f-" + k).value = F[k]; });
    $("f-q").value = F.q; $("f-dev").checked = !!F.dev; $("f-alike").checked = !!F.alike;
    [].forEach.call(document.querySelectorAll(".legend button"), function (b) {
      b.setAttribute("aria-pressed", b.dataset.o === F.outcome ? "true" : "false");
    });
  }
  function opened() { return F.open ? F.open.split(",") : []; }
  function apply() {
    var colOK = D.cols.map(function (c) {
      return (!F.target || c[0] === F.target) && (!F.driver || c[1] === F.driver);
    });
    heads.forEach(function (th, i) { th.hidden = !colOK[i]; });
    tgs.forEach(function (th) {
      var first = +th.dataset.first, n = 0;
      for (var i = first; i < first + (+th.dataset.n); i++) { if (colOK[i]) { n++; } }
      th.hidden = n === 0; th.colSpan = Math.max(n, 1);
    });
    var q = F.q.toLowerCase(), oc = F.outcome ? D.codes[F.outcome] : "", open = opened(), rowOK = {};
    var selecting = !!(oc || q), tally = {};
    var famInfo = {};
    rows.forEach(function (tr) {
      var fam = tr.parentNode.dataset.f, tds = tr.cells, seen = {}, kinds = 0, n = 0, dev = false, hit = !oc;
      for (var i = 1; i < tds.length; i++) {
        var td = tds[i], ok = colOK[i - 1];
        td.hidden = !ok;
        var o = code(td);
        if (!ok || !o) { continue; }
        if (!seen[o]) { seen[o] = 1; kinds++; }
        n++;
        if (td.classList.contains("dv")) { dev = true; }
        if (o === oc) { hit = true; }
      }
      var base = n > 0 && (!F.family || fam === F.family) && (!q || tr.dataset.c.toLowerCase().indexOf(q) >= 0)
        && (!F.dev || dev) && hit;
      var alike = kinds === 1 && !dev && n > 1;  // a lone cell is never folded away
      rowOK[tr.dataset.r] = base;
      // an outcome or case-text filter selects rows: what it selects is shown, folded or not
      tr.hidden = !base || (alike && !F.alike && !selecting && open.indexOf(fam) < 0);
      if (base) {
        for (var j = 1; j < tds.length; j++) {
          var oj = colOK[j - 1] && code(tds[j]);
          if (oj) { tally[oj] = (tally[oj] || 0) + 1; }
        }
      }
      var fi = famInfo[fam] || (famInfo[fam] = {rows: 0, folded: 0});
      if (base) { fi.rows++; if (tr.hidden) { fi.folded++; } }
    });
    fams.forEach(function (tb) {
      var fi = famInfo[tb.dataset.f] || {rows: 0, folded: 0}, isOpen = open.indexOf(tb.dataset.f) >= 0;
      tb.hidden = fi.rows === 0;
      var a = tb.querySelector(".alike");
      a.textContent = fi.folded ? plural(fi.folded, "row") + " alike in every column hidden — show"
        : (isOpen && !F.alike ? "hide rows alike in every column" : "");
      tb.querySelector(".rows").textContent = plural(fi.rows, "row");
    });
    var famTotals = {};
    items.forEach(function (li) {
      var n = 0;
      if (!oc || li.dataset.o === F.outcome) {
        li.dataset.cells.split(" ").forEach(function (rc) {
          var p = rc.split("."), cell = D.cells[rc];
          if (rowOK[p[0]] && colOK[+p[1]] && (!F.dev || (cell && S(cell.v) === "deviation"))) { n++; }
        });
      }
      li.hidden = n === 0;
      li.querySelector(".n").textContent = "×" + n;
      var f = li.closest("details").dataset.f;
      famTotals[f] = (famTotals[f] || 0) + n;
    });
    [].forEach.call(document.querySelectorAll("#findings details[data-f]"), function (d) {
      var n = famTotals[d.dataset.f] || 0;
      d.hidden = n === 0 && !!(F.family || F.target || F.driver || F.outcome || F.q || F.dev);
      d.querySelector("summary .n").textContent = n + " cells";
      var reasons = [].filter.call(d.querySelectorAll("li[data-cells]"), function (li) { return !li.hidden; });
      d.querySelector("summary .nr").textContent = plural(reasons.length, "reason");
    });
    [].forEach.call(document.querySelectorAll(".legend button"), function (b) {
      b.querySelector(".c").textContent = tally[D.codes[b.dataset.o]] || 0;
    });
    [].forEach.call(document.querySelectorAll("#extras section.extra[data-f]"), function (sec) {
      sec.hidden = !!F.family && sec.dataset.f !== F.family;
    });
    var shown = rows.filter(function (tr) { return !tr.hidden; }).length;
    $("shown").textContent = shown + " of " + rows.length + " rows shown";
    T.setAttribute("data-o", oc);
    showCell();
    syncForm();
    writeHash();
  }
  function td(rc) {
    var p = rc.split("."), tr = T.querySelector('tr.r[data-r="' + p[0] + '"]');
    return tr ? tr.cells[+p[1] + 1] : null;
  }
  function add(parent, tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) { e.textContent = text; }
    if (cls) { e.className = cls; }
    parent.appendChild(e); return e;
  }
  function show(v) { return typeof v === "string" ? v : JSON.stringify(v); }
  function scrollTo(cell) {
    // only the matrix's own scroll box moves (not the page), leaving room for the sticky header rows
    var wrap = $("wrap"), head = T.tHead.offsetHeight;
    wrap.scrollTop = Math.max(0, cell.offsetTop - head - 2 * cell.offsetHeight);
  }
  function showCell() {
    [].forEach.call(T.querySelectorAll("td.sel"), function (e) { e.classList.remove("sel"); });
    var box = $("cell"), c = F.sel ? D.cells[F.sel] : null;
    box.hidden = !c;
    if (!c) { return; }
    var p = F.sel.split("."), row = D.rows[+p[0]], col = D.cols[+p[1]], cellTd = td(F.sel);
    if (cellTd) {
      cellTd.classList.add("sel");
      if (!document.body.hasAttribute("data-ready")) { scrollTo(cellTd); }  // a linked cell: bring it into view
    }
    box.textContent = "";
    var close = add(box, "button", "×"); close.type = "button"; close.title = "close";
    close.addEventListener("click", function () { F.sel = ""; apply(); });
    add(box, "h2", row[0]);
    var dl = add(box, "dl");
    function item(k, v) { if (v !== undefined && v !== null && v !== "") { add(dl, "dt", k); add(dl, "dd", v); } }
    item("params", row[1]);
    item("target", col[0] + (D.targets[col[0]] ? " (" + D.targets[col[0]] + ")" : ""));
    item("driver", col[1] || "(no driver)");
    item("outcome", S(c.o));
    item("mechanism", S(c.m));
    item("expected", S(c.e));
    item("why expected", S(c.w));
    item("verdict", S(c.v));
    item("detail", S(c.d));
    if (c.x && Object.keys(c.x).length) {
      add(box, "h2", "Metrics");
      var mt = add(box, "table");
      Object.keys(c.x).sort().forEach(function (k) {
        var tr = add(mt, "tr"); add(tr, "th", k); add(tr, "td", show(c.x[k]));
      });
    }
    if (c.f && c.f.length) {
      add(box, "h2", "Findings");
      var keys = [];
      c.f.forEach(function (f) {
        Object.keys(f).forEach(function (k) { if (keys.indexOf(k) < 0) { keys.push(k); } });
      });
      var ft = add(box, "table"), hr = add(ft, "tr");
      keys.forEach(function (k) { add(hr, "th", k); });
      c.f.forEach(function (f) {
        var tr = add(ft, "tr"); keys.forEach(function (k) { add(tr, "td", f[k] === undefined ? "" : show(f[k])); });
      });
    }
    if (c.a && c.a.length) {
      add(box, "h2", "Artifacts");
      var ul = add(box, "ul");
      c.a.forEach(function (path) { var a = add(add(ul, "li"), "a", path); a.href = path; });
    }
  }
  function highlight(li) {
    var on = !li.classList.contains("on");
    items.forEach(function (x) { x.classList.remove("on"); });
    [].forEach.call(T.querySelectorAll("td.hl"), function (e) { e.classList.remove("hl"); });
    T.classList.toggle("hl-on", on);
    if (!on) { return; }
    li.classList.add("on");
    li.dataset.cells.split(" ").forEach(function (rc) {
      var e = td(rc);
      if (!e) { return; }
      e.classList.add("hl");
      var tr = e.parentNode, fam = tr.parentNode.dataset.f;
      if (tr.hidden && opened().indexOf(fam) < 0) { F.open = opened().concat([fam]).join(","); }
    });
    apply();
  }
  function init() {
    readHash();
    SELECTS.forEach(function (k) {
      $("f-" + k).addEventListener("change", function (e) { F[k] = e.target.value; apply(); });
    });
    $("f-q").addEventListener("input", function (e) { F.q = e.target.value; apply(); });
    $("f-dev").addEventListener("change", function (e) { F.dev = e.target.checked ? "1" : ""; apply(); });
    $("f-alike").addEventListener("change", function (e) { F.alike = e.target.checked ? "1" : ""; apply(); });
    [].forEach.call(document.querySelectorAll(".legend button"), function (b) {
      b.addEventListener("click", function () { F.outcome = F.outcome === b.dataset.o ? "" : b.dataset.o; apply(); });
    });
    T.addEventListener("click", function (e) {
      var cell = e.target.closest("td"), head = e.target.closest("tr.fh");
      if (cell && code(cell)) {
        F.sel = cell.parentNode.dataset.r + "." + (cell.cellIndex - 1); apply();
      } else if (head) {
        var fam = head.parentNode.dataset.f, open = opened(), i = open.indexOf(fam);
        if (i < 0) { open.push(fam); } else { open.splice(i, 1); }
        F.open = open.join(","); apply();
      }
    });
    items.forEach(function (li) { li.addEventListener("click", function () { highlight(li); }); });
    apply();
    document.body.setAttribute("data-ready", "1");
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); } else { init(); }
})();
"""


def _e(value: object) -> str:
    return escape(m.text(value), quote=True)


def _css(used: list[str]) -> str:
    rules = []
    for outcome in OUTCOMES:
        bg, fg, glyph = _STYLE.get(outcome, _OTHER_STYLE)
        code = CODES[outcome]
        rules.append(f'#matrix td.{code},.sw.{code},b.{code}{{background:{bg};color:{fg}}}')
        if glyph:
            rules.append(f'#matrix td.{code}::after{{content:"{glyph}"}}')
        if outcome in used:
            rules.append(f'#matrix[data-o="{code}"] td:not(.{code}){{opacity:.2}}')
    return _CSS.replace("OUTCOME_RULES", "\n".join(rules)).replace("CELL", str(CELL_PX))


class _Strings:
    """A string table: the same detail text is shared by many drivers, so each cell stores an index."""

    def __init__(self) -> None:
        self.values: list[str] = []
        self._ids: dict[str, int] = {}

    def __call__(self, value: str) -> int:
        if value not in self._ids:
            self._ids[value] = len(self.values)
            self.values.append(value)
        return self._ids[value]


def _cell_data(cell: dict[str, Any], strings: _Strings) -> dict[str, Any]:
    """What the details panel shows for one cell, with short keys and shared strings (one entry per cell)."""
    out: dict[str, Any] = {"o": strings(m.text(cell.get("outcome")))}
    for key, short in (("verdict", "v"), ("expected", "e"), ("mechanism", "m"), ("detail", "d"),
                       ("expected_reason", "w")):
        if cell.get(key) not in (None, ""):
            out[short] = strings(m.text(cell[key]))
    for key, short in (("metrics", "x"), ("findings", "f"), ("artifacts", "a")):
        if cell.get(key):
            out[short] = cell[key]
    return out


def _script_json(data: Any) -> str:
    # Scrub secrets, then make "<" inert so no value can close the script element.
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
    return scrub(text, known=False).replace("<", "\\u003c")


def _td(cell: dict[str, Any] | None, boundary: bool) -> str:
    classes = []
    if cell is not None:
        classes.append(CODES.get(str(cell.get("outcome")), "unk"))
        if m.is_deviation(cell):
            classes.append("dv")
        elif m.is_impossible(cell):
            classes.append("na")
    if boundary:
        classes.append("tb")
    return f'<td class="{" ".join(classes)}"></td>' if classes else "<td></td>"


def _header(doc: dict[str, Any]) -> str:
    run = doc.get("run") or {}
    counts, total, deviations = m.summary(doc)
    ok = [t for t in doc.get("targets") or [] if isinstance(t, dict) and t.get("status") == "ok"]
    took = m.duration_text(doc)
    line = f"<strong>{m.plural(total, 'cell')}</strong> on {m.plural(len(ok), 'target')}"
    line += f" in {_e(took)}" if took else ""
    line += f"; deviations: <strong>{deviations}</strong>" if deviations else "; deviations: 0"
    if not run.get("complete"):
        line += ' — <span class="incomplete">incomplete run: partial results</span>'
    skipped = "".join(
        f'<p class="skipped-t">Skipped target <strong>{_e(t.get("name"))}</strong>: '
        f"{_e(m.one_line(t.get('reason')))}</p>"
        for t in m.skipped_targets(doc)
    )
    legend = "".join(
        f'<button type="button" data-o="{_e(o)}" aria-pressed="false" title="show rows with {_e(o)} cells">'
        f'<span class="sw {CODES.get(o, "unk")}"></span>{_e(o)} <span class="c">{n}</span></button>'
        for o, n in counts
    )
    if deviations:
        legend += f'<span><span class="sw dvs">⚠</span>deviation {deviations}</span>'
    return (
        f"<header><h1>dbmatrix report <code>{_e(run.get('id'))}</code></h1>"
        f'<p class="summary">{line} · <span id="shown"></span></p>{skipped}'
        f"{_filters(doc)}<div class=\"legend\">{legend}</div></header>"
    )


def _options(values: list[str]) -> str:
    return '<option value="">all</option>' + "".join(f'<option value="{_e(v)}">{_e(v)}</option>' for v in values)


def _filters(doc: dict[str, Any]) -> str:
    results = doc.get("results") or []
    fams = m.families(doc)
    targets = list(dict.fromkeys(t for t, _ in m.all_columns(doc, fams)))
    drivers = sorted({c.get("driver") or "" for c in results} - {""})
    return (
        f'<form id="filters" onsubmit="{_FORM_HANDLER}">'
        f'<label>Target <select id="f-target">{_options(targets)}</select></label>'
        f'<label>Driver <select id="f-driver">{_options(drivers)}</select></label>'
        f'<label>Family <select id="f-family">{_options([f.name for f in fams])}</select></label>'
        f'<label>Outcome <select id="f-outcome">{_options(m.outcomes_used(doc))}</select></label>'
        '<label>Case <input type="search" id="f-q" placeholder="filter case ids"></label>'
        '<label><input type="checkbox" id="f-dev"> only deviations</label>'
        '<label><input type="checkbox" id="f-alike"> show rows alike in every column</label>'
        "</form>"
    )


def _matrix(doc: dict[str, Any], fams: list[m.Family]) -> tuple[str, dict[str, Any]]:
    cols = m.all_columns(doc, fams)
    first_of_target = {i for i, c in enumerate(cols) if i == 0 or cols[i - 1][0] != c[0]}
    groups: list[tuple[str, int, int]] = []  # (target, first column, span)
    for i, (target, _) in enumerate(cols):
        if i in first_of_target:
            groups.append((target, i, 0))
        groups[-1] = (groups[-1][0], groups[-1][1], groups[-1][2] + 1)
    tg = "".join(f'<th colspan="{n}" data-first="{i}" data-n="{n}" title="{_e(t)}">{_e(t)}</th>' for t, i, n in groups)
    spans = {first: n for _, first, n in groups}

    def label(i: int, target: str, driver: str) -> str:
        # a lone column's target header is too narrow to read, so its driver label names the target too
        return f"{target} · {m.driver_label(driver)}" if spans.get(i) == 1 else m.driver_label(driver)

    dr = "".join(
        f'<th data-target="{_e(t)}" data-driver="{_e(d)}" title="{_e(t)} / {_e(m.driver_label(d))}"'
        f'{" class=tb" if i in first_of_target else ""}><span>{_e(label(i, t, d))}</span></th>'
        for i, (t, d) in enumerate(cols)
    )
    head = (f'<thead><tr class="tg"><th class="corner" rowspan="2">case</th>{tg}</tr>'
            f'<tr class="dr">{dr}</tr></thead>')
    strings = _Strings()
    data: dict[str, Any] = {"cols": [list(c) for c in cols], "rows": [], "cells": {}, "s": strings.values}
    bodies = []
    for fam in fams:
        body = [f'<tbody data-f="{_e(fam.name)}"><tr class="fh"><th colspan="{len(cols) + 1}">{_e(fam.name)} '
                '<span class="rows"></span><span class="alike"></span></th></tr>']
        for row in fam.rows:
            r = len(data["rows"])
            data["rows"].append([row[0], m.params_text(json.loads(row[1]))])
            tds = []
            for c, col in enumerate(cols):
                cell = fam.cells.get((row, col))
                if cell is not None:
                    data["cells"][f"{r}.{c}"] = _cell_data(cell, strings)
                tds.append(_td(cell, c in first_of_target))
            label = _e(fam.row_label(row))
            case, values = _short_label(fam.name, row)
            short = _e(case) + (f' <span class="p">· {_e(values)}</span>' if values else "")
            # a label too long for the column wraps (its row grows) rather than being cut
            cls = "case long" if len(case) + len(values) + 3 > LONG_LABEL else "case"
            body.append(f'<tr class="r" data-r="{r}" data-c="{label}"><th class="{cls}" title="{label}">'
                        f'{short}</th>{"".join(tds)}</tr>')
        body.append("</tbody>")
        bodies.append("".join(body))
    return f'<table id="matrix">{head}{"".join(bodies)}</table>', data


def _why(finding: m.Finding) -> str:
    """Why the expectations predict this finding's outcome: each distinct reason of its cells."""
    return "".join(f'<small class="why">expected because: {_e(r)}</small>' for r in finding.why)


def _short_label(family: str, row: m.RowKey) -> tuple[str, str]:
    """The row's case without its family (the family's header row names it) and its parameters' values:
    ``dirty_write`` and ``read uncommitted``, so rows that differ only in a parameter stay apart in a narrow
    column."""
    case = row[0].removeprefix(f"{family}.")
    params = json.loads(row[1])
    return case, " · ".join(v if isinstance(v, str) else json.dumps(v) for _, v in sorted(params.items()))


def _findings(fams: list[m.Family], data: dict[str, Any]) -> str:
    index = {}  # (row key, column) -> "r.c", the same addresses the matrix uses
    cols = {tuple(c): i for i, c in enumerate(data["cols"])}
    r = 0
    for fam in fams:
        for row in fam.rows:
            for col in fam.columns:
                index[(row, col)] = f"{r}.{cols[col]}"
            r += 1
    parts = []
    for fam in fams:
        items = []
        for finding in fam.findings():
            cells = " ".join(index[(m.row_of(c), m.column_of(c))] for c in finding.cells)
            code = CODES.get(finding.outcome, "unk")
            dev = f" ⚠ {finding.deviations} deviations" if finding.deviations else ""
            reason = _e(m.one_line(finding.reason, 200)) or "<em>no detail</em>"
            mech = f" <code>{_e(finding.mechanism)}</code>" if finding.mechanism else ""
            items.append(
                f'<li data-o="{_e(finding.outcome)}" data-cells="{cells}" title="click: highlight these cells">'
                f'<b class="{code}">{_e(finding.outcome)}</b>{mech} <span class="n"></span>{dev} {reason}'
                f"<small>{_e(fam.where(finding.cells))}</small>{_why(finding)}</li>"
            )
        body = f"<ul>{''.join(items)}</ul>" if items else "<p>Nothing differs between engines or drivers.</p>"
        parts.append(f'<details open data-f="{_e(fam.name)}"><summary>{_e(fam.name)} · '
                     f'<span class="nr">{m.plural(len(items), "reason")}</span> · <span class="n"></span></summary>'
                     f"{body}</details>")
    return (f'<div id="findings"><h2>Findings: what differs, by reason</h2>{"".join(parts) or "<p>No results.</p>"}'
            "</div>")


def _footer(doc: dict[str, Any]) -> str:
    keys = ("name", "kind", "server_version", "url", "status", "reason")
    rows = "".join(
        "<tr>" + "".join(f"<td>{_e(t.get(k))}</td>" for k in keys) + f"<td>{_e(m.target_properties(t))}</td></tr>"
        for t in doc.get("targets") or [] if isinstance(t, dict)
    )
    head = "".join(f"<th>{k.replace('_', ' ')}</th>" for k in keys) + "<th>properties</th>"
    run = doc.get("run") or {}
    meta = " · ".join(f"{k}: {_e(run.get(k))}" for k in ("started", "finished", "complete", "python", "dbmatrix"))
    if m.libraries_text(doc):
        meta += f"<br>libraries: {_e(m.libraries_text(doc))}"
    return (f'<footer><details><summary>Targets and run</summary><table class="targets"><thead><tr>{head}</tr>'
            f"</thead><tbody>{rows}</tbody></table><p>{meta}</p></details></footer>")


_FORM_HANDLER = "return false"  # the filter form's onsubmit: allowed by its hash, like the page's one script


def _csp(script: str, style: str) -> str:
    """A Content-Security-Policy that lets exactly this page's own script and style run: a results document from
    elsewhere cannot add a script, a ``javascript:`` link, a remote image or a form target that does anything."""
    def digest(text: str) -> str:
        return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"

    return (f"default-src 'none'; script-src {digest(script)} 'unsafe-hashes' {digest(_FORM_HANDLER)}; "
            f"style-src {digest(style)}; img-src data:; base-uri 'none'; form-action 'none'")


def render_html(doc: dict[str, Any]) -> str:
    """The whole report as a single HTML page: summary and filters, the heat map, findings and a details panel."""
    fams = m.families(doc)
    table, data = _matrix(doc, fams)
    data["codes"] = CODES
    data["targets"] = {t.get("name"): ", ".join(x for x in (m.text(t.get("kind")), m.text(t.get("server_version")),
                                                            m.target_properties(t)) if x)
                       for t in doc.get("targets") or [] if isinstance(t, dict)}
    extras = "".join(
        f'<section class="extra" data-f="{_e(f.name)}">{frag}</section>'
        for f in fams if (frag := html_fragment(f, doc))
    )
    # the families' own sections come after the matrix and the findings, so nothing stands between those two
    main = f'<div id="wrap">{table}</div>' if fams else "<p>No results.</p>"
    run_id = _e((doc.get("run") or {}).get("id"))
    style = _css(m.outcomes_used(doc))
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_csp(_JS, style)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>dbmatrix report {run_id}</title><style>{style}</style></head>"
        f'<body>{_header(doc)}<div id="layout"><main>{main}</main>'
        f'<aside><div id="cell" hidden></div>{_findings(fams, data)}</aside></div>'
        f'<div id="extras">{extras}</div>{_footer(doc)}'
        f'<script type="application/json" id="dbm-data">{_script_json(data)}</script>'
        f"<script>{_JS}</script></body></html>\n"
    )
    return scrub(page, known=False)
