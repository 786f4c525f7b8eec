"""Reports rendered from a results document alone (no database needed): Markdown, HTML, run-to-run diff."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..results import write_text_atomic
from .diff import Change, DiffReport, any_worse, compare, diff_documents, render_diff, render_diff_markdown
from .diff_html import render_diff_html
from .html import render_html
from .markdown import render_markdown

__all__ = [
    "Change",
    "DiffReport",
    "any_worse",
    "compare",
    "diff_documents",
    "render_diff",
    "render_diff_html",
    "render_diff_markdown",
    "render_html",
    "render_markdown",
    "write_reports",
]


def write_reports(doc: dict[str, Any], out_dir: Path) -> list[Path]:
    """Write ``report.md`` and ``report.html`` into ``out_dir`` atomically; return their paths."""
    out_dir = Path(out_dir)
    paths = [out_dir / "report.md", out_dir / "report.html"]
    # Render both before writing either, so a rendering bug never leaves one new and one stale report.
    texts = [render_markdown(doc), render_html(doc)]
    for path, text in zip(paths, texts, strict=True):
        write_text_atomic(path, text)
    return paths
