"""What the performance section's renderers share (``report/bench.py``, ``report/ladder.py``): the bench cells of a
document, how a number, a variant and a concurrency read, escaping, and horizontal bars as inline SVG."""

from __future__ import annotations

import html
from typing import Any

CEILING = "ceiling"
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
           "#bab0ac", "#1f77b4", "#2ca02c")


def bench_cells(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The cells ``dbmatrix bench`` wrote (a bench case with a measured ``qps``, or one that failed)."""
    cells = [r for r in doc.get("results") or [] if str(r.get("case", "")).startswith("bench.")]
    if not any("qps" in (r.get("metrics") or {}) for r in cells):
        return []
    return cells


def _num(value: Any, fmt: str = "{:,.0f}") -> str:
    return fmt.format(value) if isinstance(value, int | float) and not isinstance(value, bool) else "—"


def _variant(r: dict[str, Any]) -> str:
    return (r.get("params") or {}).get("variant", "")


def _conc(r: dict[str, Any]) -> int:
    return int((r.get("params") or {}).get("concurrency", 1))


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


Interval = float | tuple[float, float]  # a CI's half-width, or its own (lo, hi) when it is not symmetric


def _bounds(value: float, ci: Interval) -> tuple[float, float]:
    return ci if isinstance(ci, tuple) else (value - ci, value + ci)


def svg_bars(title: str, bars: list[tuple[str, float, Interval, str]], width: int = 640, unit: str = "qps",
             left: int = 190, mark: float | None = None) -> str:
    """Horizontal bars ``(label, value, ci, colour)`` with their CI as a whisker (``ci``: half-width or (lo, hi));
    ``mark``: a dashed reference line at that value (the ladder's 100% of the raw driver)."""
    if not bars:
        return ""
    row, right = 18, 70
    height = 28 + row * len(bars)
    top = max(max(v, _bounds(v, h)[1]) for _, v, h, _ in bars) or 1.0
    scale = (width - left - right) / top
    parts = [f'<svg class="chart" width="{width}" height="{height}" '
             f'role="img" aria-label="{_e(title)}"><title>{_e(title)}</title>',
             f'<text x="4" y="14" font-size="12" font-weight="bold">{_e(title)}</text>']
    for i, (label, value, half, colour) in enumerate(bars):
        y = 22 + i * row
        w = max(1.0, value * scale)
        parts.append(f'<text x="{left - 4}" y="{y + 12}" font-size="11" text-anchor="end">{_e(label)}</text>')
        lo, hi = _bounds(value, half)
        shown = f"{value:,.0f} ± {half:,.0f}" if not isinstance(half, tuple) else f"{value:,.0f} ({lo:,.0f}–{hi:,.0f})"
        parts.append(f'<rect x="{left}" y="{y + 2}" width="{w:.1f}" height="{row - 5}" fill="{colour}">'
                     f'<title>{_e(label)}: {_e(shown)} {_e(unit)}</title></rect>')
        if hi > lo:
            x0, x1 = left + max(0.0, lo) * scale, left + hi * scale
            parts.append(f'<line x1="{x0:.1f}" x2="{x1:.1f}" y1="{y + 8}" y2="{y + 8}" stroke="#333"/>')
        parts.append(f'<text x="{left + w + 4:.1f}" y="{y + 12}" font-size="10">{value:,.0f}</text>')
    if mark is not None:
        x = left + mark * scale
        parts.append(f'<line class="mark" x1="{x:.1f}" x2="{x:.1f}" y1="20" y2="{height - 4}" stroke="#555" '
                     f'stroke-dasharray="3,3"><title>{mark:,.0f} {_e(unit)}</title></line>')
    parts.append("</svg>")
    return "".join(parts)
