"""sql.window_*: window functions give exactly the values computed in Python from the same rows.

The data has ties in both the ordering key (``day``) and the ranked value (``amount``), so the cases also
prove the tie rules: RANK leaves gaps and DENSE_RANK does not, and the default frame (RANGE ... CURRENT ROW)
includes peer rows while an explicit ROWS frame does not.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from rowcheck import compare, differences, insert_rows, record_comparison, whole_decimal

from dbmatrix.casekit import requires
from dbmatrix.cell import Cell
from dbmatrix.errors import DriverError

Row = tuple[int, str, int, int]  # id, region, day, amount
SALES: list[Row] = [(i, ("east", "north", "west")[i % 3], (i * 5) % 6 + 1, (i * 37) % 7 * 10) for i in range(1, 31)]


def partitions(order: Callable[[Row], Any]) -> dict[str, list[Row]]:
    """Rows per region, each list sorted by ``order``."""
    out: dict[str, list[Row]] = defaultdict(list)
    for row in SALES:
        out[row[1]].append(row)
    return {region: sorted(rows, key=order) for region, rows in out.items()}


def load(cell: Cell) -> tuple[Any, str]:
    t = cell.table("sales")
    s = cell.connect()
    s.execute(
        f"CREATE TABLE {t} (id INTEGER PRIMARY KEY, region VARCHAR(10) NOT NULL, day INTEGER NOT NULL,"
        " amount INTEGER NOT NULL)"
    )
    insert_rows(s, t, ("id", "region", "day", "amount"), SALES)
    return s, t


@requires("window_functions")
def test_window_ranking(cell):
    """ROW_NUMBER, RANK and DENSE_RANK over partitions, with ties in the ranked value."""
    s, t = load(cell)
    got = s.execute(
        "SELECT id,"
        " ROW_NUMBER() OVER (PARTITION BY region ORDER BY amount DESC, id),"
        " RANK() OVER (PARTITION BY region ORDER BY amount DESC),"
        f" DENSE_RANK() OVER (PARTITION BY region ORDER BY amount DESC) FROM {t} ORDER BY id"
    ).rows
    want = {}
    for rows in partitions(lambda r: (-r[3], r[0])).values():
        for pos, (i, _, _, amount) in enumerate(rows, start=1):
            rank = 1 + sum(1 for r in rows if r[3] > amount)
            dense = 1 + len({r[3] for r in rows if r[3] > amount})
            want[i] = (i, pos, rank, dense)
    ties = sum(1 for i, pos, rank, _ in want.values() if pos != rank)
    record_comparison(
        cell,
        differences({"ranks": (got, [want[i] for i in sorted(want)])}),
        f"{len(want)} rows in 3 partitions, {ties} ranked below their row number by ties",
    )


@requires("window_functions")
def test_window_lag_lead(cell):
    """LAG and LEAD (with and without an offset) read the neighbouring rows of the partition, NULL past its edge."""
    s, t = load(cell)
    got = s.execute(
        "SELECT id,"
        " LAG(amount) OVER (PARTITION BY region ORDER BY day, id),"
        " LEAD(amount, 2) OVER (PARTITION BY region ORDER BY day, id),"
        f" LAG(id, 1) OVER (PARTITION BY region ORDER BY day, id) FROM {t} ORDER BY id"
    ).rows
    want = {}
    for rows in partitions(lambda r: (r[2], r[0])).values():
        for k, (i, _, _, _) in enumerate(rows):
            lag = rows[k - 1][3] if k >= 1 else None
            lead2 = rows[k + 2][3] if k + 2 < len(rows) else None
            prev_id = rows[k - 1][0] if k >= 1 else None
            want[i] = (i, lag, lead2, prev_id)
    record_comparison(
        cell,
        differences({"lag/lead": (got, [want[i] for i in sorted(want)])}),
        f"{len(want)} rows: LAG NULL at each partition start, LEAD(.., 2) NULL on the last two rows of each",
    )


@requires("window_functions")
def test_window_lag_lead_default(cell):
    """The standard third argument of LAG/LEAD replaces the NULL past the partition edge:
    ``LEAD(amount, 2, -1)``, ``LAG(amount, 1, 0)``."""
    s, t = load(cell)
    try:
        got = s.execute(
            "SELECT id,"
            " LEAD(amount, 2, -1) OVER (PARTITION BY region ORDER BY day, id),"
            f" LAG(amount, 1, 0) OVER (PARTITION BY region ORDER BY day, id) FROM {t} ORDER BY id"
        ).rows
    except DriverError as exc:
        cell.unsupported(exc)
        return
    want = {}
    for rows in partitions(lambda r: (r[2], r[0])).values():
        for k, (i, _, _, _) in enumerate(rows):
            lead2 = rows[k + 2][3] if k + 2 < len(rows) else -1
            lag = rows[k - 1][3] if k >= 1 else 0
            want[i] = (i, lead2, lag)
    record_comparison(
        cell,
        differences({"lag/lead with default": (got, [want[i] for i in sorted(want)])}),
        f"{len(want)} rows: the defaults fill every partition edge",
    )


@requires("window_functions")
def test_window_running_sum(cell):
    """Running SUM per partition: an explicit ROWS frame adds row by row; the default frame (RANGE UNBOUNDED
    PRECEDING) gives peer rows (same ``day``) the same total; a frameless SUM is the partition total."""
    s, t = load(cell)
    got = s.execute(
        "SELECT id,"
        " SUM(amount) OVER (PARTITION BY region ORDER BY day, id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW),"
        " SUM(amount) OVER (PARTITION BY region ORDER BY day),"
        " SUM(amount) OVER (PARTITION BY region),"
        f" COUNT(*) OVER (PARTITION BY region ORDER BY day) FROM {t} ORDER BY id"
    ).rows
    want, peer_rows = {}, 0
    for rows in partitions(lambda r: (r[2], r[0])).values():
        total = sum(r[3] for r in rows)
        for k, (i, _, day, _) in enumerate(rows):
            upto_row = sum(r[3] for r in rows[: k + 1])
            upto_day = sum(r[3] for r in rows if r[2] <= day)
            peer_rows += upto_row != upto_day
            want[i] = (i, upto_row, upto_day, total, sum(1 for r in rows if r[2] <= day))
    diffs, side = compare({"sums": (got, [want[i] for i in sorted(want)])}, side=[whole_decimal])  # frames, not types
    record_comparison(
        cell, diffs, f"{len(want)} rows; {peer_rows} rows where the default RANGE frame includes later peers",
        findings=side,
    )


@requires("window_functions")
def test_window_named(cell):
    """A named window (``WINDOW w AS (...)``) is shared by several functions and refined with a frame
    (``OVER (w ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING)``)."""
    s, t = load(cell)
    got = s.execute(
        "SELECT id, ROW_NUMBER() OVER w, FIRST_VALUE(id) OVER w,"
        " SUM(amount) OVER (w ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING)"
        f" FROM {t} WINDOW w AS (PARTITION BY region ORDER BY day, id) ORDER BY id"
    ).rows
    want = {}
    for rows in partitions(lambda r: (r[2], r[0])).values():
        for k, (i, _, _, _) in enumerate(rows):
            moving = sum(r[3] for r in rows[max(k - 1, 0) : k + 2])
            want[i] = (i, k + 1, rows[0][0], moving)
    diffs, side = compare({"named window": (got, [want[i] for i in sorted(want)])}, side=[whole_decimal])
    record_comparison(cell, diffs, f"{len(want)} rows through one named window, refined by a ROWS frame",
                      findings=side)
