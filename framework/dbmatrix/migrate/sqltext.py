"""Statements as text: split alembic's offline output, and compare it with what ran online."""

from __future__ import annotations

import re

_TOOL = re.compile(r"alembic_version|_yoyo_|yoyo_lock|django_migrations", re.IGNORECASE)
_SKIP = re.compile(r"^(begin|commit|rollback|select|pragma|show|set |savepoint|release)", re.IGNORECASE)
_PARAM = re.compile(r"%\(\w+\)s|%s|\?|(?<!:):\w+|\$\d+")


def split_offline(text: str) -> list[str]:
    """alembic's offline output -> statements (comments and blank lines dropped)."""
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("--")]
    return [s.strip() for s in re.split(r";\s*(?:\n|$)", "\n".join(lines)) if s.strip()]


def _norm(statement: str) -> str:
    # identifier quoting differs between the MySQL and MariaDB dialects (reserved words): it is cosmetic here
    text = re.sub(r"\s+", " ", re.sub(r"[`\"]", "", statement))
    return re.sub(r"\s+\)", ")", re.sub(r"\(\s+", "(", text)).strip().rstrip(";").lower()


def _schema_statements(statements: list[str]) -> list[str]:
    return [_norm(s) for s in statements if not _TOOL.search(s) and not _SKIP.match(s.strip())]


def compare_statements(offline_text: str, online: list[str]) -> tuple[list[str], list[str]]:
    """(only offline, only online): schema statements, tool bookkeeping and reads left out. An online statement
    with bind parameters matches an offline one with the same text up to its first parameter."""
    off = _schema_statements(split_offline(offline_text))
    on = _schema_statements(online)
    only_on = []
    for s in on:
        m = _PARAM.search(s)
        prefix = s[: m.start()] if m else s
        hit = next((o for o in off if (o.startswith(prefix) if m else o == s)), None)
        if hit is None:
            only_on.append(s)
        else:
            off.remove(hit)
    return off, only_on
