"""Helpers of the ``orm.*`` cases (cases/test_orm.py): the layer's ORM kit, a plain-driver session for the reference,
and "the same value, with its type" for the field round trips."""

from __future__ import annotations

import datetime as dt
import decimal
import json
from typing import Any

from dbmatrix.cell import PRIMARY, Cell
from dbmatrix.drivers import default_orm_pairs
from dbmatrix.drivers.base import Session
from dbmatrix.layers.ormkit import OrmKit

# Each ORM's own default driver per engine (what it uses when the URL names none: ``Layer.default_dbapis``): the
# cells of a run that does not name its drivers, so the family stays cheap; ``--driver peewee+psycopg`` etc. run
# any other pair.
DEFAULT_DRIVERS = default_orm_pairs()


def orm_kit(cell: Cell, *sessions: Session) -> list[OrmKit] | None:
    """One kit per session (a new session each when none are given: one kit); None, with the cell recorded
    ``unsupported``, when the cell's driver is no ORM layer."""
    make = getattr(cell.driver, "orm_kit", None)
    if make is None:
        cell.unsupported(f"{cell.driver_id} has no ORM (orm.* runs over ORM layers: peewee+, sqlmodel+, sa-orm+, "
                         "django+, tortoise+, piccolo+)")
        return None
    prefix = cell.table("o")
    return [make(s, prefix) for s in (sessions or (cell.connect(),))]


def schema_kit(cell: Cell) -> OrmKit | None:
    """The kit of one new session, its schema created; None (recorded ``unsupported``) as for ``orm_kit``."""
    kits = orm_kit(cell)
    if kits is None:
        return None
    kits[0].create_schema()
    return kits[0]


def plain_session(cell: Cell) -> Session:
    """A session of the DBAPI driver under the cell's layer on the cell's scratch space: the reference reader."""
    assert cell.driver is not None
    session = cell.driver.under.connect(cell._connect_info(PRIMARY))
    cell.sessions.append(session)  # closed with the cell's own
    return session


def exact(sent: Any, got: Any) -> bool:
    """``got`` is ``sent`` with its type: same class, same value, and what equality hides (a Decimal's scale, a
    datetime's awareness, JSON's true vs 1)."""
    if type(got) is not type(sent):
        return False
    if isinstance(sent, dict):
        return json.dumps(sent, sort_keys=True) == json.dumps(got, sort_keys=True)
    if isinstance(sent, decimal.Decimal):
        return got == sent and got.as_tuple().exponent == sent.as_tuple().exponent
    if isinstance(sent, dt.datetime):
        return (got.tzinfo is None) == (sent.tzinfo is None) and got == sent
    return bool(got == sent)


def seed_things(plain: Session, kit: OrmKit, ns: dict[int, int], docs: dict[int, Any] | None = None) -> None:
    """Things ``id`` -> ``n`` named ``thing <id>`` (with ``f_json`` documents ``docs``), written by the plain driver
    so the ORM reads rows it did not write."""
    for pk, n in ns.items():
        doc = (docs or {}).get(pk)
        params = {"id": pk, "name": f"thing {pk}", "n": n, "doc": None if doc is None else json.dumps(doc)}
        plain.execute(f"INSERT INTO {kit.table('things')} (id, name, n, f_json) VALUES (:id, :name, :n, :doc)",
                      params)
