"""sql.cte_*: common table expressions — plain, recursive over a real tree, and combined with DML.

Every query result is compared in full with what Python computes from the same data.
"""

from __future__ import annotations

from collections import defaultdict

from rowcheck import compare, differences, insert_rows, record_comparison, whole_decimal

from dbmatrix.casekit import requires
from dbmatrix.errors import DriverError

ORDERS = [  # (id, customer, amount)
    (1, "ada", 30),
    (2, "bob", 5),
    (3, "ada", 12),
    (4, "cy", 40),
    (5, "bob", 7),
    (6, "dee", 1),
    (7, "cy", 2),
    (8, "ada", 8),
    (9, "eve", 50),
    (10, "dee", 3),
]
THRESHOLD = 40

TREE_SIZE = 1600  # 40 x 40 generated rows: no recursion deeper than 40 (MySQL stops at 1000 by default)


def tree_parent(n: int) -> int | None:
    """The parent of node ``n``: a scrambled earlier node, so the tree is bushy and about 16 levels deep.
    The same arithmetic runs in SQL (``TREE_INSERT``); all intermediate values fit a 32-bit integer."""
    return None if n == 1 else n - 1 - ((n * 7919) % 1009) % (n - 1)


TREE_INSERT = """
INSERT INTO {t} (id, parent_id)
WITH RECURSIVE digit(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM digit WHERE i < 39),
     node(n) AS (SELECT a.i * 40 + b.i + 1 FROM digit a CROSS JOIN digit b)
SELECT n, CASE WHEN n = 1 THEN NULL ELSE n - 1 - ((n * 7919) % 1009) % (n - 1) END FROM node
"""


@requires("cte")
def test_cte_plain(cell):
    """Chained non-recursive CTEs (one read twice) give the same rows as the aggregation done in Python."""
    t = cell.table("orders")
    s = cell.connect()
    s.execute(f"CREATE TABLE {t} (id INTEGER PRIMARY KEY, customer VARCHAR(20) NOT NULL, amount INTEGER NOT NULL)")
    insert_rows(s, t, ("id", "customer", "amount"), ORDERS)
    got = s.execute(
        f"WITH totals AS (SELECT customer, SUM(amount) AS total, COUNT(*) AS n FROM {t} GROUP BY customer),"
        " big AS (SELECT customer, total, n FROM totals WHERE total >= :threshold)"
        " SELECT customer, total, n, (SELECT MAX(total) FROM totals) AS top FROM big ORDER BY customer",
        {"threshold": THRESHOLD},
    ).rows
    totals: dict[str, list[int]] = defaultdict(list)
    for _, customer, amount in ORDERS:
        totals[customer].append(amount)
    top = max(sum(v) for v in totals.values())
    want = [(c, sum(v), len(v), top) for c, v in sorted(totals.items()) if sum(v) >= THRESHOLD]
    diffs, side = compare({"result": (got, want)}, side=[whole_decimal])  # about CTEs, not SUM's type
    record_comparison(cell, diffs, f"{len(want)} customers over {THRESHOLD}: {want}", findings=side)


@requires("cte_recursive")
def test_cte_recursive_tree(cell):
    """WITH RECURSIVE walks a 1,600-node tree built in SQL by one INSERT ... SELECT from a recursive
    generator: nodes per depth, the descendants of one node, and the path from the deepest leaf to the root
    are exactly what Python computes from the same parent function."""
    t = cell.table("tree")
    s = cell.connect()
    s.execute(f"CREATE TABLE {t} (id INTEGER PRIMARY KEY, parent_id INTEGER)")
    s.execute(TREE_INSERT.format(t=t))

    parent = {n: tree_parent(n) for n in range(1, TREE_SIZE + 1)}
    children: dict[int, list[int]] = defaultdict(list)
    depth = {1: 0}
    for n in range(2, TREE_SIZE + 1):  # parents are always smaller, so depth[parent] is known already
        children[parent[n]].append(n)
        depth[n] = depth[parent[n]] + 1

    checks: dict[str, tuple[list, list]] = {}
    stored = s.execute(f"SELECT COUNT(*), SUM(id), SUM(parent_id) FROM {t}").rows
    checks["stored tree"] = (stored, [(TREE_SIZE, sum(parent), sum(p for p in parent.values() if p))])

    per_depth = s.execute(
        f"WITH RECURSIVE walk(id, depth) AS (SELECT id, 0 FROM {t} WHERE parent_id IS NULL"
        f" UNION ALL SELECT c.id, walk.depth + 1 FROM {t} c JOIN walk ON c.parent_id = walk.id)"
        " SELECT depth, COUNT(*) FROM walk GROUP BY depth ORDER BY depth"
    ).rows
    histogram: dict[int, int] = defaultdict(int)
    for d in depth.values():
        histogram[d] += 1
    checks["nodes per depth"] = (per_depth, sorted(histogram.items()))

    root = 10  # an inner node with a subtree of 174 nodes
    subtree = s.execute(
        f"WITH RECURSIVE sub(id) AS (SELECT id FROM {t} WHERE parent_id = :root"
        f" UNION ALL SELECT c.id FROM {t} c JOIN sub ON c.parent_id = sub.id) SELECT COUNT(*), SUM(id) FROM sub",
        {"root": root},
    ).rows
    below, stack = [], list(children[root])
    while stack:
        n = stack.pop()
        below.append(n)
        stack.extend(children[n])
    checks[f"descendants of {root}"] = (subtree, [(len(below), sum(below))])

    leaf = min(n for n in depth if depth[n] == max(depth.values()))
    path = s.execute(
        f"WITH RECURSIVE up(id, parent_id, hops) AS (SELECT id, parent_id, 0 FROM {t} WHERE id = :leaf"
        f" UNION ALL SELECT p.id, p.parent_id, up.hops + 1 FROM {t} p JOIN up ON p.id = up.parent_id)"
        " SELECT id FROM up ORDER BY hops",
        {"leaf": leaf},
    ).rows
    want_path = [leaf]
    while parent[want_path[-1]] is not None:
        want_path.append(parent[want_path[-1]])  # type: ignore[arg-type]
    checks[f"path {leaf} -> root"] = (path, [(n,) for n in want_path])

    diffs, side = compare(checks, side=[whole_decimal])  # the case is about recursion, not SUM's type
    record_comparison(
        cell,
        diffs,
        f"{TREE_SIZE} nodes, max depth {max(depth.values())}, {len(below)} descendants of node {root},"
        f" path {leaf} -> root of {len(want_path)} nodes summing to {sum(want_path)}",
        findings=side,
    )


@requires("cte_dml")
def test_cte_dml(cell):
    """A data-modifying CTE moves rows in one statement:
    ``WITH moved AS (DELETE ... RETURNING ...) INSERT INTO dst SELECT ... FROM moved``."""
    src, dst = cell.table("src"), cell.table("dst")
    s = cell.connect()
    for t in (src, dst):
        s.execute(f"CREATE TABLE {t} (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)")
    rows = [(i, i * 10) for i in range(1, 7)]
    insert_rows(s, src, ("id", "v"), rows)
    s.execute(
        f"WITH moved AS (DELETE FROM {src} WHERE id % 2 = 0 RETURNING id, v)"
        f" INSERT INTO {dst} (id, v) SELECT id, v FROM moved"
    )
    left = s.execute(f"SELECT id, v FROM {src} ORDER BY id").rows
    moved = s.execute(f"SELECT id, v FROM {dst} ORDER BY id").rows
    diffs = differences({"left in src": (left, rows[0::2]), "moved to dst": (moved, rows[1::2])})
    record_comparison(cell, diffs, f"moved {len(moved)} rows in one statement")


@requires("cte")
def test_cte_before_dml(cell):
    """A read-only CTE may prefix UPDATE and DELETE (``WITH picked AS (SELECT ...) DELETE ... WHERE id IN
    (SELECT id FROM picked)``) — the form SQLite and MySQL 8 accept even without data-modifying CTEs."""
    t = cell.table("prefix")
    s = cell.connect()
    s.execute(f"CREATE TABLE {t} (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)")
    rows = [(i, i * 10) for i in range(1, 9)]
    insert_rows(s, t, ("id", "v"), rows)
    try:
        s.execute(
            f"WITH doomed AS (SELECT id FROM {t} WHERE v > :cut) DELETE FROM {t} WHERE id IN (SELECT id FROM doomed)",
            {"cut": 60},
        )
        s.execute(
            f"WITH odd AS (SELECT id FROM {t} WHERE id % 2 = 1)"
            f" UPDATE {t} SET v = v + 100 WHERE id IN (SELECT id FROM odd)"
        )
    except DriverError as exc:
        cell.unsupported(exc)
        return
    got = s.execute(f"SELECT id, v FROM {t} ORDER BY id").rows
    want = [(i, v + 100 if i % 2 else v) for i, v in rows if v <= 60]
    record_comparison(
        cell, differences({"rows": (got, want)}), f"rows after WITH ... DELETE and WITH ... UPDATE: {want}"
    )
