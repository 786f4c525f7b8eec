"""The benchmark workloads: their SQL (``:name`` parameters, per target kind) and the parameters of each call.

Parameters are generated up front (a ring of ready-made values the timed loop cycles through), so the loop measures
the driver, not ``random``. Every layer runs the same statements: the DBAPI drivers as SQL below, SQLAlchemy
layers as the equivalent Core/ORM constructs (``ops_sqlalchemy``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from .schema import EVENTS, TAGS, USERS, random_ids

RING = 4096  # parameter sets per connection, cycled
RANGE_ROWS = 100
BATCH_ROWS = 1000
BATCH_RING = 4  # distinct insert batches, cycled


@dataclass(frozen=True)
class Workload:
    name: str
    summary: str

    @property
    def case(self) -> str:
        return f"bench.{self.name}"


WORKLOADS: dict[str, Workload] = {w.name: w for w in (
    Workload("pk_select", "SELECT id, name, email by primary key, random ids"),
    Workload("range_select", f"{RANGE_ROWS} rows per query by id range (decoding cost)"),
    Workload("insert_batch", f"{BATCH_ROWS} rows per transaction, the driver's fastest correct way"),
    Workload("update_txn", "read-modify-write transaction: SELECT ... FOR UPDATE, UPDATE, INSERT"),
    Workload("json_select", "filter on a JSON field, return the document"),
)}

PK_SQL = f"SELECT id, name, email FROM {USERS} WHERE id = :id"
RANGE_SQL = f"SELECT id, name, email, score FROM {USERS} WHERE id BETWEEN :lo AND :hi"
_JSON_TAG = {"postgresql": "doc->>'tag'", "cockroachdb": "doc->>'tag'", "mysql": "JSON_VALUE(doc, '$.tag')",
             "sqlite": "json_extract(doc, '$.tag')"}
UPDATE_SQL = f"UPDATE {USERS} SET score = :score WHERE id = :id"
INSERT_SQL = f"INSERT INTO {EVENTS} (user_id, payload) VALUES (:user_id, :payload)"
COPY_COLUMNS = ("user_id", "payload")


def json_sql(kind: str) -> str:
    return f"SELECT doc FROM {USERS} WHERE id BETWEEN :lo AND :hi AND {_JSON_TAG[kind]} = :tag"


def lock_select_sql(kind: str) -> str:
    """The read of the read-modify-write: locks the row where the engine has row locks (SQLite locks the file)."""
    lock = "" if kind == "sqlite" else " FOR UPDATE"
    return f"SELECT score FROM {USERS} WHERE id = :id{lock}"


def select_sql(workload: str, kind: str) -> str:
    return {"pk_select": PK_SQL, "range_select": RANGE_SQL, "json_select": json_sql(kind)}[workload]


def call_params(workload: str, rows: int, seed: int) -> list[dict[str, Any]]:
    """One parameter set per call (``RING`` of them) for ``workload``."""
    if workload in ("pk_select", "update_txn"):
        return [{"id": i, "user_id": i, "payload": f"touched {i}"} for i in random_ids(rows, RING, seed)]
    if workload == "range_select":
        return [{"lo": i, "hi": i + RANGE_ROWS - 1} for i in random_ids(rows, RING, seed, RANGE_ROWS)]
    if workload == "json_select":
        rnd = random.Random(seed + 1)
        return [{"lo": i, "hi": i + RANGE_ROWS - 1, "tag": f"t{rnd.randrange(TAGS)}"}
                for i in random_ids(rows, RING, seed, RANGE_ROWS)]
    raise KeyError(workload)


def insert_batches(rows: int, seed: int) -> list[list[dict[str, Any]]]:
    """``BATCH_RING`` batches of ``BATCH_ROWS`` event rows."""
    rnd = random.Random(seed)
    return [[{"user_id": rnd.randint(1, rows), "payload": f"event {b}-{i} " + "x" * 40} for i in range(BATCH_ROWS)]
            for b in range(BATCH_RING)]


def values_insert_sql(batch: list[dict[str, Any]]) -> str:
    """One batch as a single multi-VALUES INSERT with literal values (the ceilings' insert_batch: a C client sends
    every row's text each time, as psycopg2's execute_values does)."""
    values = ",".join(f"({int(r['user_id'])},'{r['payload']}')" for r in batch)  # ints and [a-z0-9 -]: no quoting
    return f"INSERT INTO {EVENTS} (user_id, payload) VALUES {values}"


def pgbench_script(workload: str, rows: int) -> str:
    """The same statements as a pgbench script (pgbench's ``:name`` variables are our parameter names)."""
    span = RANGE_ROWS - 1
    if workload == "insert_batch":
        return f"BEGIN;\n{values_insert_sql(insert_batches(rows, 7)[0])};\nEND;\n"
    if workload == "pk_select":
        return f"\\set id random(1, {rows})\n{PK_SQL};\n"
    if workload == "range_select":
        return f"\\set lo random(1, {rows - span})\n\\set hi :lo + {span}\n{RANGE_SQL};\n"
    if workload == "json_select":
        # the tag is a string: pgbench variables are numbers, so the script compares with 't' || :t
        sql = json_sql("postgresql").replace(":tag", "('t' || CAST(:t AS text))")
        return f"\\set lo random(1, {rows - span})\n\\set hi :lo + {span}\n\\set t random(0, {TAGS - 1})\n{sql};\n"
    if workload == "update_txn":
        return (f"\\set id random(1, {rows})\nBEGIN;\n{lock_select_sql('postgresql')};\n"
                f"UPDATE {USERS} SET score = score + 1 WHERE id = :id;\n"
                f"INSERT INTO {EVENTS} (user_id, payload) VALUES (:id, 'touched');\nEND;\n")
    raise KeyError(workload)
