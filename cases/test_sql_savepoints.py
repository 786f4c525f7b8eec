"""sql.savepoint_*: savepoints undo part of a transaction and keep the rest.

The statements are plain SQL (``SAVEPOINT a`` / ``ROLLBACK TO SAVEPOINT a``) inside the driver's own transaction
(``begin``/``commit``), so what is measured is the engine plus whatever the driver or SQLAlchemy does around a
failed statement. The committed rows are read back from a second session.
"""

from __future__ import annotations

from rowcheck import differences, record_comparison

from dbmatrix.casekit import requires
from dbmatrix.cell import Cell
from dbmatrix.drivers.base import Session
from dbmatrix.errors import DriverError


def setup(cell: Cell, base: str) -> tuple[Session, str]:
    t = cell.table(base)
    s = cell.connect()
    s.execute(f"CREATE TABLE {t} (id INTEGER PRIMARY KEY)")
    return s, t


def committed(cell: Cell, t: str) -> list[tuple]:
    """What another session sees after the transaction ended."""
    return cell.connect().execute(f"SELECT id FROM {t} ORDER BY id").rows


@requires("savepoints")
def test_savepoint_nested_rollback(cell):
    """Nested savepoints: ROLLBACK TO b undoes insert 3, ROLLBACK TO a undoes insert 2 (and releases b), and the
    work before and after them commits: exactly rows {1, 4}."""
    s, t = setup(cell, "nested")
    seen: dict[str, tuple[list, list]] = {}
    s.begin()
    try:
        s.execute(f"INSERT INTO {t} (id) VALUES (1)")
        s.execute("SAVEPOINT a")
        s.execute(f"INSERT INTO {t} (id) VALUES (2)")
        s.execute("SAVEPOINT b")
        s.execute(f"INSERT INTO {t} (id) VALUES (3)")
        s.execute("ROLLBACK TO SAVEPOINT b")
        seen["after ROLLBACK TO b"] = (s.execute(f"SELECT id FROM {t} ORDER BY id").rows, [(1,), (2,)])
        s.execute("ROLLBACK TO SAVEPOINT a")
        seen["after ROLLBACK TO a"] = (s.execute(f"SELECT id FROM {t} ORDER BY id").rows, [(1,)])
        s.execute(f"INSERT INTO {t} (id) VALUES (4)")
        s.commit()
    finally:
        if s.in_transaction:
            s.rollback()
    seen["committed"] = (committed(cell, t), [(1,), (4,)])
    record_comparison(cell, differences(seen), "rows {1, 4} committed; {1, 2} then {1} seen inside the transaction")


@requires("savepoints")
def test_savepoint_error_recovery(cell):
    """A failed statement (duplicate key) inside a savepoint, then ROLLBACK TO SAVEPOINT: the transaction goes
    on and commits the work before and after. (PostgreSQL aborts the whole transaction on an error; rolling
    back to a savepoint is how it continues.)"""
    s, t = setup(cell, "recover")
    s.begin()
    failure: DriverError | None = None
    try:
        s.execute(f"INSERT INTO {t} (id) VALUES (1)")
        s.execute("SAVEPOINT before_dup")
        try:
            s.execute(f"INSERT INTO {t} (id) VALUES (1)")
        except DriverError as exc:
            failure = exc
        s.execute("ROLLBACK TO SAVEPOINT before_dup")
        s.execute(f"INSERT INTO {t} (id) VALUES (2)")
        s.commit()
    except DriverError as exc:
        cell.differs(
            f"the transaction could not continue after ROLLBACK TO SAVEPOINT: {exc.cls} [{exc.code}]: {exc.message}"
        )
        return
    finally:
        if s.in_transaction:
            s.rollback()
    if failure is None:
        cell.differs("the duplicate key was accepted inside the savepoint")
        return
    record_comparison(
        cell,
        differences({"committed": (committed(cell, t), [(1,), (2,)])}),
        f"duplicate key failed with {failure.cls} [{failure.code}];"
        " after ROLLBACK TO SAVEPOINT rows {1, 2} committed",
        mechanism=f"error:{failure.code or failure.cls}",
    )


def test_statement_error_keeps_transaction(cell):
    """Without a savepoint, a failed statement (duplicate key) undoes only itself: the transaction goes on and
    COMMIT keeps the rows written before and after it — statement-level atomicity, as the SQL standard has it.
    PostgreSQL instead aborts the whole transaction (25P02) and its COMMIT rolls back: recorded as ``differs``."""
    s, t = setup(cell, "stmt_error")
    s.begin()
    failure: DriverError | None = None
    after: DriverError | None = None
    try:
        s.execute(f"INSERT INTO {t} (id) VALUES (1)")
        try:
            s.execute(f"INSERT INTO {t} (id) VALUES (1)")
        except DriverError as exc:
            failure = exc
        try:
            s.execute(f"INSERT INTO {t} (id) VALUES (2)")
        except DriverError as exc:
            after = exc
        try:
            s.commit()
        except DriverError as exc:
            after = after or exc
    finally:
        if s.in_transaction:
            s.rollback()
    rows = committed(cell, t)
    if failure is None:
        cell.differs(f"the duplicate key was accepted; committed rows {rows!r}")
    elif after is not None:
        cell.differs(
            f"after the duplicate key ({failure.code}) the transaction was aborted: the next statement failed with "
            f"{after.cls} [{after.code}]: {after.message}; committed rows {rows!r}",
            mechanism=f"abort:{after.code or after.cls}",
        )
    else:
        record_comparison(
            cell,
            differences({"committed": (rows, [(1,), (2,)])}),
            f"duplicate key failed with {failure.cls} [{failure.code}]; the transaction went on, rows {{1, 2}}"
            " committed",
            mechanism=f"error:{failure.code or failure.cls}",
        )
