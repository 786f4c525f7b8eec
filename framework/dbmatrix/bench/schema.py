"""The benchmark schema: ``bench_users`` (the rows every read workload touches) and ``bench_events`` (written to).

Declared once with SQLAlchemy, so Core, the ORM and the DDL agree; the DBAPI workloads write the same tables by
name. Created and filled in the target's scratch space (which dbmatrix drops after the run).
"""

from __future__ import annotations

import random
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ..targets.admin import admin_drivername
from ..targets.model import Target

USERS, EVENTS = "bench_users", "bench_events"
TAGS = 10  # distinct values of doc.tag: a json_select filter keeps about a tenth of the rows it scans
LOAD_CHUNK = 5000
ANALYZE = {"postgresql": f"ANALYZE {USERS}, {EVENTS}", "cockroachdb": f"ANALYZE {USERS}",
           "mysql": f"ANALYZE TABLE {USERS}, {EVENTS}", "sqlite": "ANALYZE"}


class Base(DeclarativeBase):
    pass


JSON_TYPE = sa.JSON().with_variant(JSONB(), "postgresql")


class User(Base):
    __tablename__ = USERS
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(sa.String(64))
    email: Mapped[str] = mapped_column(sa.String(128))
    score: Mapped[int] = mapped_column(sa.Integer)
    doc: Mapped[Any] = mapped_column(JSON_TYPE)


class Event(Base):
    __tablename__ = EVENTS
    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.Integer)
    payload: Mapped[str] = mapped_column(sa.String(200))


users, events = User.__table__, Event.__table__


def user_row(i: int) -> dict[str, Any]:
    return {"id": i, "name": f"user {i}", "email": f"user{i}@example.com", "score": i % 1000,
            "doc": {"tag": f"t{i % TAGS}", "plan": "pro" if i % 3 else "free", "seen": [i % 7, i % 11]}}


def create_and_load(target: Target, rows: int) -> None:
    """Create the tables in ``target``'s scratch space and insert ``rows`` users (then ANALYZE)."""
    url = target.scratch_url
    if url is None:
        raise RuntimeError(f"target {target.name} has no scratch space")
    # A transactional engine (not the AUTOCOMMIT admin connection): one transaction for the whole load.
    engine = sa.create_engine(url.set(drivername=admin_drivername(target.kind)), poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            for stmt in target.init_sql:
                conn.exec_driver_sql(stmt)
            Base.metadata.drop_all(conn)  # only our own tables, in our own scratch space
            Base.metadata.create_all(conn)
            for start in range(1, rows + 1, LOAD_CHUNK):
                conn.execute(sa.insert(users), [user_row(i) for i in range(start, min(start + LOAD_CHUNK, rows + 1))])
        with engine.connect() as conn:
            for stmt in target.init_sql:
                conn.exec_driver_sql(stmt)
            conn.exec_driver_sql(ANALYZE[target.kind])
            conn.commit()
    finally:
        engine.dispose()


def random_ids(rows: int, n: int, seed: int, span: int = 1) -> list[int]:
    """``n`` random ids in ``1 .. rows - span + 1`` (a range of ``span`` ids starting there stays in the table)."""
    rnd = random.Random(seed)
    return [rnd.randint(1, max(1, rows - span + 1)) for _ in range(n)]
