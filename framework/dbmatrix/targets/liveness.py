"""A target that stops answering mid-run is noticed once: the cell that met it is ``skipped`` with the reason, the
target is marked so that every remaining cell on it is skipped at once (instead of each waiting out its own
timeouts), and the run goes on with the other targets; the summary and results.json say when it stopped.

Only an error that looks like a lost or timed-out connection is a candidate, and only a fresh, bounded probe that
fails too makes it a verdict: a case that kills its own connection (pooling, cancellation) never stops a target.
"""

from __future__ import annotations

import datetime as dt
import re

from ..redaction import scrub
from ..results import ERROR, SKIPPED, CellResult
from .admin import detect_server, failure_reason
from .model import OK, Target

STOPPED = "target-stopped"  # the mechanism of the cell that met the silence
_UNANSWERED = re.compile(
    r"timeout expired|timed out|TimeoutError|lost connection|gone away|can't connect|could not connect|"
    r"connection refused|server closed the connection|connection reset|broken pipe|connection is closed|"
    r"ConnectionDoesNotExist|terminating connection due to administrator command", re.I)


def looks_unanswered(detail: str | None) -> bool:
    """The error text of a lost or timed-out connection (a candidate; ``probe`` decides)."""
    return bool(detail and _UNANSWERED.search(detail))


def probe(target: Target) -> str | None:
    """None when the target answers a fresh connection now (within the admin connect bound), else why not."""
    try:
        detect_server(target.kind, target.scratch_url or target.url)
    except Exception as exc:  # noqa: BLE001 - any failure to answer is the answer
        return failure_reason(exc)
    return None


def after_cell(target: Target | None, result: CellResult) -> bool:
    """Check a cell that ended in a connection error; when its target no longer answers, mark the target skipped
    (every later cell on it is skipped by the plugin) and turn this cell into a ``skipped`` one. True if so."""
    if target is None or target.kind == "sqlite" or target.status != OK or result.outcome != ERROR:
        return False
    if not looks_unanswered(result.detail):
        return False
    # a session that gave up on a silent server asked a fresh connection first (Session._answer): no second probe
    why = ("a fresh connection timed out or failed too" if "ServerStoppedAnswering" in (result.detail or "")
           else probe(target))
    if why is None:
        return False  # the server answers: the error is the case's finding (or ours), not a dead target
    at = dt.datetime.now(dt.UTC).strftime("%H:%M:%S UTC")
    target.skip(f"stopped answering at {at} (during {result.case}): {scrub(why)}")
    result.outcome, result.mechanism = SKIPPED, STOPPED
    result.detail = f"target {target.name} {target.reason}; the cell's own error: {result.detail}"
    return True
