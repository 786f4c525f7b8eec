"""``migrate.lint``: squawk (PyPI ``squawk-cli``) over each revision's PostgreSQL SQL, one finding per rule hit.

Squawk's style rules (idempotent statements, bigint ids, timeouts set in the file, text over varchar) are left
out: they say nothing about whether a revision is safe to run on a live table. The safety rules stay
(``require-concurrent-index-creation``, ``adding-not-nullable-field``, ``changing-column-type``, ``renaming-column``,
``ban-drop-column``, ``constraint-missing-not-valid``, ...).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

STYLE_RULES = (
    "prefer-robust-stmts", "prefer-bigint-over-int", "prefer-bigint-over-smallint", "prefer-identity",
    "prefer-text-field", "prefer-timestamptz", "ban-char-field", "require-timeout-settings",
    "require-lock-timeout", "require-statement-timeout",
)
SQUAWK_TIMEOUT_S = 60


def squawk_path() -> str | None:
    """The squawk binary of this environment (the squawk-cli wheel puts it beside python), or on PATH."""
    here = Path(sys.executable).parent / "squawk"
    return str(here) if here.is_file() else shutil.which("squawk")


def lint_sql(sql_by_revision: dict[str, str], pg_version: str | None = None) -> dict[str, Any] | str:
    """{revision: [finding, ...] or an error line}; or one line saying why lint cannot run here."""
    exe = squawk_path()
    if exe is None:
        return "squawk is not installed (pip install squawk-cli, or the dbmatrix[migrate] extra)"
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="dbmatrix_squawk_") as tmp:
        for rev, sql in sql_by_revision.items():
            path = Path(tmp) / f"{rev}.sql"
            path.write_text(sql, encoding="utf-8")
            cmd = [exe, "--reporter", "json", "--exclude", ",".join(STYLE_RULES)]
            if pg_version:
                cmd += ["--pg-version", pg_version]
            try:
                proc = subprocess.run([*cmd, str(path)], capture_output=True, text=True, timeout=SQUAWK_TIMEOUT_S)
                found = json.loads(proc.stdout or "[]")
            except (subprocess.TimeoutExpired, json.JSONDecodeError, OSError) as exc:
                out[rev] = f"squawk failed: {type(exc).__name__}: {exc}"
                continue
            lines = sql.splitlines()
            out[rev] = [{"revision": rev, "rule": f["rule_name"], "message": f["message"],
                         "statement": lines[f["line"]].strip()[:160] if 0 <= f["line"] < len(lines) else None}
                        for f in found]
    return out
