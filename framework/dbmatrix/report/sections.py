"""Extra per-family sections in the reports (e.g. benchmark tables and charts for the ``bench`` family).

A family module registers renderers here; the Markdown and HTML reports call them after that family's findings:

    markdown(family, doc) -> list[str]   # Markdown lines
    html(family, doc) -> str             # an HTML fragment (escape every value; no network references)

Modules listed in ``_PROVIDERS`` are imported lazily, so a family whose renderer module is missing or broken
still gets the generic report. Such a module may instead offer whole-document functions ``<family>_markdown(doc)
-> str`` and ``<family>_html(doc) -> str`` (as ``report/bench.py`` does); their headings are nested under the
family's own heading.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._model import Family

MarkdownSection = Callable[[Family, dict[str, Any]], list[str]]
HtmlSection = Callable[[Family, dict[str, Any]], str]


@dataclass(frozen=True)
class FamilySection:
    markdown: MarkdownSection | None = None
    html: HtmlSection | None = None


_registry: dict[str, FamilySection] = {}
# family -> module that calls ``register`` when imported (``markdown_section`` / ``html_section`` also work)
_PROVIDERS = {"bench": "dbmatrix.report.bench", "isolation": "dbmatrix.report.isolation"}
_loaded: set[str] = set()


def register(family: str, *, markdown: MarkdownSection | None = None, html: HtmlSection | None = None) -> None:
    _registry[family] = FamilySection(markdown, html)


def section_for(family: str) -> FamilySection | None:
    module_name = _PROVIDERS.get(family)
    if module_name and module_name not in _loaded:
        _loaded.add(module_name)
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            module = None
        if module is not None and family not in _registry:
            md, ht = getattr(module, "markdown_section", None), getattr(module, "html_section", None)
            whole_md, whole_ht = getattr(module, f"{family}_markdown", None), getattr(module, f"{family}_html", None)
            if md is None and whole_md is not None:
                md = _nested_markdown(whole_md)
            if ht is None and whole_ht is not None:
                ht = _nested_html(whole_ht)
            if md or ht:
                register(family, markdown=md, html=ht)
    return _registry.get(family)


def _nested_markdown(render: Callable[[dict[str, Any]], str]) -> MarkdownSection:
    """A whole-document renderer's Markdown with its headings moved two levels down (under ``### family``)."""

    def section(family: Family, doc: dict[str, Any]) -> list[str]:
        text = render(doc)
        return [f"##{line}" if line.startswith("#") else line for line in text.splitlines()] if text else []

    return section


def _nested_html(render: Callable[[dict[str, Any]], str]) -> HtmlSection:
    return lambda family, doc: render(doc)


FAMILY_LEVEL = 3  # ``### family`` in report.md; a section's own headings go below it


def markdown_lines(family: Family, doc: dict[str, Any]) -> list[str]:
    section = section_for(family.name)
    lines = section.markdown(family, doc) if section and section.markdown else []
    return nest_headings(lines, FAMILY_LEVEL + 1)


def nest_headings(lines: list[str], level: int) -> list[str]:
    """Shift Markdown headings so the highest becomes ``level``: a section's ``## Title`` must not close the
    family it belongs to (and make the next families look like its parts). Code blocks are left alone."""
    fenced, found = False, []
    for line in lines:
        fenced = fenced != line.startswith("```")
        if not fenced and line.startswith("#"):
            found.append(len(line) - len(line.lstrip("#")))
    shift = level - min(found) if found else 0
    if shift <= 0:
        return lines
    out, fenced = [], False
    for line in lines:
        fenced = fenced != line.startswith("```")
        out.append("#" * shift + line if not fenced and line.startswith("#") else line)
    return out


def summary_markdown_lines(family: Family, doc: dict[str, Any]) -> list[str]:
    """A family's compact section (``<family>_summary_markdown(doc) -> str`` in its module, e.g. the bench's
    ladder), which report.md keeps when the family's full section does not fit."""
    module_name = _PROVIDERS.get(family.name)
    try:
        module = importlib.import_module(module_name) if module_name else None
    except ImportError:
        return []
    render = getattr(module, f"{family.name}_summary_markdown", None)
    text = render(doc) if render else ""
    return nest_headings(text.splitlines(), FAMILY_LEVEL + 1) if text else []


def html_fragment(family: Family, doc: dict[str, Any]) -> str:
    section = section_for(family.name)
    return section.html(family, doc) if section and section.html else ""
