"""How a transaction's running isolation level is judged against the level asked for (isolation.effective_level,
orm.isolation_level): the engine's report inside the transaction (``Engine.transaction_isolation``) against what it
reports for a transaction really at that level (``Engine.expected_report``)."""

from __future__ import annotations

from typing import Any

from dbmatrix.cell import Cell
from dbmatrix.engines.sqlite import NO_TRANSACTION

# strength, to tell a downgrade from an upgrade (SQLite's modes: a write lock taken at BEGIN is more than none)
RANK = {NO_TRANSACTION: 0, "read uncommitted": 1, "read committed": 2, "repeatable read": 3, "serializable": 4,
        "deferred": 4, "immediate": 5}


def judge_level(cell: Cell, api: str, asked: str, reported: Any) -> None:
    """``supported`` when the server reports ``asked`` inside the transaction ``api`` opened, else ``differs``
    naming both (a lower level: a silent downgrade)."""
    found = {"api": api, "asked": asked, "reported": reported}
    if reported == asked:
        cell.supported(f"{api}: the server reports {reported!r} inside the transaction", findings=[found])
        return
    how = "a silent downgrade" if RANK.get(reported, 0) < RANK.get(asked, 0) else "not the level asked for"
    cell.differs(f"{api}: asked for {asked!r}, the server reports {reported!r} inside the transaction ({how})",
                 mechanism="read-back", findings=[found])
