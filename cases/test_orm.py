"""orm.*: an ORM's own API (models, sessions, querysets) judged on the real engine.

Each ORM layer (``peewee+``, ``sqlmodel+``, ``sa-orm+``) declares a small schema its own way and offers the idiomatic
operations on it (its ``orm_kit``, ``framework/dbmatrix/layers/``); the cases drive those and take the reference from
the engine: what it holds afterwards, read with the plain DBAPI driver under the layer, and the exact values and
types that come back. By default each ORM runs over its own default driver per engine (``ormcheck.DEFAULT_DRIVERS``).
"""

from __future__ import annotations

import collections
import concurrent.futures
import datetime as dt
import decimal
import uuid
from typing import Any

import pytest
from levelcheck import judge_level
from ormcheck import DEFAULT_DRIVERS, exact, orm_kit, plain_session, schema_kit, seed_things

from dbmatrix.casekit import axes, expect
from dbmatrix.cell import Cell, describe_error, show
from dbmatrix.engines import IsolationUnsupported, engine_for
from dbmatrix.errors import DriverError
from dbmatrix.layers.ormkit import CROSSED_FIELDS, FIELDS, ISOLATION_LEVELS, LOCK_MODES, Colour

pytestmark = axes("target", "driver", drivers=DEFAULT_DRIVERS)
WAIT_S = 15  # bounds every wait on another session (each session carries its own lock timeout too)

VALUES: dict[str, Any] = {
    "json": {"text": "é ✓", "list": [1, 2.5, None, True], "nested": {"a": 1}},
    "uuid": uuid.UUID("1b4e28ba-2fa1-11d2-883f-0016d3cca427"),
    "decimal": decimal.Decimal("1234567890.1234"),  # all 14 digits, 4 of them after the point
    "datetime_aware": dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2))),
    "datetime_naive": dt.datetime(2024, 5, 6, 7, 8, 9, 123456),
    "bool": True,
    "bytes": b"\x00\xffdbm\x80",
    "bigint": 2**62 + 1,
    "enum": Colour.GREEN,
    "array": [3, 1, 2],
}
VALUES.update({"datetime_aware_notz": VALUES["datetime_aware"], "datetime_naive_tz": VALUES["datetime_naive"]})
assert set(VALUES) == set(FIELDS) | set(CROSSED_FIELDS)


def field_roundtrip(cell: Cell, field: str) -> None:
    """A ``field`` value saved through the ORM's model comes back exactly, with its type (a fresh query)."""
    kit, sent = schema_kit(cell), VALUES[field]
    if kit is None:
        return
    try:
        pk = kit.save_field(field, sent)
    except DriverError as exc:
        cell.unsupported(exc)
        return
    got = kit.load_field(pk, field)
    stored = plain_session(cell).execute(
        f"SELECT {kit.column(field)} FROM {kit.table('things')} WHERE id = :id", {"id": pk}).scalar()
    where = f"the engine holds {show(stored)} (read with {cell.driver.dbapi})"  # type: ignore[union-attr]
    if exact(sent, got):
        cell.supported(f"{kit.orm} saved and read back {show(got)}; {where}")
    else:
        cell.differs(f"{kit.orm} saved {show(sent)} and read back {show(got)}; {where}")


def test_field_roundtrip_json(cell: Cell) -> None:
    field_roundtrip(cell, "json")


def test_field_roundtrip_uuid(cell: Cell) -> None:
    field_roundtrip(cell, "uuid")


def test_field_roundtrip_decimal(cell: Cell) -> None:
    field_roundtrip(cell, "decimal")


def test_field_roundtrip_datetime_aware(cell: Cell) -> None:
    field_roundtrip(cell, "datetime_aware")


def test_field_roundtrip_datetime_naive(cell: Cell) -> None:
    field_roundtrip(cell, "datetime_naive")


def test_field_roundtrip_bool(cell: Cell) -> None:
    field_roundtrip(cell, "bool")


def test_field_roundtrip_bytes(cell: Cell) -> None:
    field_roundtrip(cell, "bytes")


def test_field_roundtrip_bigint(cell: Cell) -> None:
    field_roundtrip(cell, "bigint")


def test_field_roundtrip_enum(cell: Cell) -> None:
    field_roundtrip(cell, "enum")


def test_field_roundtrip_array(cell: Cell) -> None:
    field_roundtrip(cell, "array")


def test_field_roundtrip_datetime_aware_notz(cell: Cell) -> None:
    """An aware datetime into the field declared without the ORM's time-zone setting."""
    field_roundtrip(cell, "datetime_aware_notz")


def test_field_roundtrip_datetime_naive_tz(cell: Cell) -> None:
    """A naive datetime into the field declared with the ORM's time-zone setting."""
    field_roundtrip(cell, "datetime_naive_tz")


def test_bulk_insert_returns_ids(cell: Cell) -> None:
    """The ORM's bulk insert sets each object's primary key, and each is the id the engine gave that row."""
    kit, names = schema_kit(cell), [f"bulk {i}" for i in range(5)]
    if kit is None:
        return
    kit.count_statements()
    ids, call = kit.bulk_insert(names)
    rows = plain_session(cell).execute(f"SELECT name, id FROM {kit.table('things')} ORDER BY id").rows
    held = {name: pk for name, pk in rows}
    metrics = {"statements": kit.statements, "objects": len(names)}
    if any(pk is None for pk in ids):
        cell.differs(f"{call}: the objects carry no ids ({show(ids)}); the engine gave {held}", metrics=metrics)
    elif dict(zip(names, ids, strict=True)) != held:
        cell.differs(f"{call}: objects carry {dict(zip(names, ids, strict=True))}, the engine holds {held}",
                     metrics=metrics)
    else:
        cell.supported(f"{call} set every id as the engine gave it, in {kit.statements} statement(s)",
                       metrics=metrics)


def test_upsert(cell: Cell) -> None:
    """The ORM's own conflict API inserts a new row, then updates it in place on a second call for the same key."""
    kit = schema_kit(cell)
    if kit is None:
        return
    try:
        call = kit.upsert("u", 1)
        kit.upsert("u", 2)
    except DriverError as exc:
        cell.unsupported(exc)
        return
    rows = plain_session(cell).execute(f"SELECT name, n FROM {kit.table('things')}").rows
    if rows == [("u", 2)]:
        cell.supported(f"{call}: inserted, then updated the row in place: {rows}")
    else:
        cell.differs(f"{call}: after inserting n=1 then upserting n=2 the engine holds {rows}")


@pytest.mark.parametrize("mode", LOCK_MODES)
def test_select_for_update(cell: Cell, mode: str) -> None:
    """The ORM's locking read, checked by the lock observer while a plain session holds row 1: ``plain`` waits,
    ``skip_locked`` returns row 2 at once, ``nowait`` fails at once with the engine's lock error. A read that runs
    without the lock (the clause silently dropped) is ``differs``."""
    a = plain_session(cell)
    kit = schema_kit(cell)
    if kit is None:
        return
    things = kit.table("things")
    for pk in (1, 2, 3):
        a.execute(f"INSERT INTO {things} (id, name) VALUES (:id, :name)", {"id": pk, "name": f"row {pk}"})
    try:
        step, call = kit.lock_step(mode)
    except DriverError as exc:
        cell.unsupported(exc)
        return
    a.begin()
    a.execute(f"UPDATE {things} SET n = 1 WHERE id = 1")  # A holds row 1 (SQLite: the database's write lock)
    future: concurrent.futures.Future[Any] = kit.submit(step, call)
    try:
        blocked = cell.observer().wait_until_blocked(kit.session, future, WAIT_S)
    finally:
        a.rollback()
    try:
        got, err = future.result(WAIT_S), None
    except DriverError as exc:
        got, err = None, exc
    finally:
        try:
            kit.end(False)
        except DriverError:
            pass  # the step's own outcome is the finding; a broken transaction has nothing left to end
    failed = f"{err.cls} [{err.code}]: {err.message}" if err is not None else ""
    want = {"plain": [1], "skip_locked": [2], "nowait": None}[mode]
    if mode == "plain" and blocked and err is None and got == want:
        cell.supported(f"{call} waited for the row lock, then read {got}", mechanism="blocked")
    elif mode == "skip_locked" and not blocked and err is None and got == want:
        cell.supported(f"{call} skipped the locked row at once and read {got}", mechanism="skipped")
    elif mode == "nowait" and not blocked and err is not None:
        cell.supported(f"{call} refused at once: {failed}", mechanism=f"error:{err.code or err.cls}")
    elif not blocked and err is None and got == [1]:
        cell.differs(f"{call} ran and read the locked row {got} without waiting: the lock clause was dropped "
                     "(nothing is locked)")
    else:
        cell.differs(f"{call}: {'waited' if blocked else 'did not wait'}, then "
                     f"{failed or f'read {show(got)}'}")


def test_nested_transactions(cell: Cell) -> None:
    """An inner (nested) transaction rolled back undoes only its own work: the outer one commits what it did."""
    kit = schema_kit(cell)
    if kit is None:
        return
    try:
        names, call = kit.nested()
    except DriverError as exc:
        cell.unsupported(exc)
        return
    held = [r[0] for r in plain_session(cell).execute(f"SELECT name FROM {kit.table('things')} ORDER BY id").rows]
    if names == held == ["outer"]:
        cell.supported(f"{call}: the outer work stayed, the inner was undone ({held})", mechanism="savepoint")
    else:
        cell.differs(f"{call}: the engine holds {held} (the ORM read {names}); expected ['outer']")


@expect("measured")
def test_n_plus_one(cell: Cell) -> None:
    """Statements the driver sent for "10 books with their authors": lazily (one per author) and eagerly."""
    kit = schema_kit(cell)
    if kit is None:
        return
    kit.seed_books(10)
    kit.count_statements()
    counts, calls = {}, {}
    want = [(f"book {i}", f"author {i}") for i in range(10)]
    for way, eager in (("lazy", False), ("eager", True)):
        kit.statements = 0
        rows, calls[way] = kit.books_with_authors(eager)
        counts[way] = kit.statements
        if rows != want:
            cell.differs(f"{calls[way]} returned {show(rows)}")
            return
    detail = (f"lazy: {counts['lazy']} statements ({calls['lazy']}); eager: {counts['eager']} "
              f"({calls['eager']}); counted at each DBAPI cursor execute")
    if counts["eager"] >= counts["lazy"]:
        cell.differs(f"eager loading saved nothing: {detail}", metrics=counts)
    else:
        cell.record("measured", detail, metrics=counts)


@expect("prevented")
@pytest.mark.parametrize("form", ["read_modify_save", "atomic"])
def test_concurrent_increment(cell: Cell, form: str) -> None:
    """Two sessions each add 100 to one balance at the ORM's default transaction settings, the read-modify-save way
    (A and B read, A saves and commits, then B) or the atomic way (an UPDATE with an expression: B's waits for A's
    row lock). ``prevented``: both applied, or the engine refused B (its code); ``allowed``: a lost update.
    SQLite runs on a database file of the cell's own in WAL mode."""
    if cell.kind == "sqlite":
        cell.scratch_database()
        plain_session(cell).execute("PRAGMA journal_mode=WAL")
    kits = orm_kit(cell, cell.connect(), cell.connect())
    if kits is None:
        return
    a, b = kits
    a.create_schema()
    pk = a.seed_account(0)
    refused: DriverError | None = None
    blocked = False
    if form == "read_modify_save":
        call = "read the model, balance += 100, save, commit"
        seen = [a.read_balance(pk), b.read_balance(pk)]
        a.save_balance(pk, seen[0] + 100)
        try:
            b.save_balance(pk, seen[1] + 100)
        except DriverError as exc:
            refused = exc
            b.end(False)
    else:
        step_a, call = a.add_atomic(pk, 100)
        a.run(step_a)
        step_b, _ = b.add_atomic(pk, 100)
        future = b.submit(step_b, call)
        try:
            blocked = cell.observer().wait_until_blocked(b.session, future, WAIT_S)
        finally:
            a.end(True)
        try:
            future.result(WAIT_S)
            b.end(True)
        except DriverError as exc:
            refused = exc
            b.end(False)
    final = plain_session(cell).execute(f"SELECT balance FROM {a.table('accounts')} WHERE id = :id",
                                        {"id": pk}).scalar()
    metrics = {"final_balance": final, "b_waited": blocked}
    if refused is not None:
        cell.record("prevented", f"{call}: the engine refused B ({refused.cls} [{refused.code}]: {refused.message});"
                    f" the balance is {final}: the application must retry B",
                    mechanism=f"error:{refused.code or refused.cls}", metrics=metrics)
    elif final == 200:
        how = "B waited for A's row lock" if blocked else "B ran after A"
        cell.record("prevented", f"{call}: both applied (balance {final}); {how}",
                    mechanism="blocked" if blocked else "serial", metrics=metrics)
    elif final == 100:
        cell.record("allowed", f"{call}: a lost update: both read 0, both saved 100 (balance {final})",
                    mechanism="lost update", metrics=metrics)
    else:
        cell.differs(f"{call}: the balance is {show(final)}, neither 100 nor 200", metrics=metrics)


def test_update_returning(cell: Cell) -> None:
    """One UPDATE through the ORM returns the changed rows, as the engine holds them afterwards (plain driver)."""
    kit = schema_kit(cell)
    if kit is None:
        return
    plain = plain_session(cell)
    seed_things(plain, kit, {1: 1, 2: 2, 3: 3})
    try:
        got, call = kit.update_returning([1, 3], 10)
    except DriverError as exc:
        cell.unsupported(exc)
        return
    held = [tuple(r) for r in plain.execute(f"SELECT id, n FROM {kit.table('things')} ORDER BY id").rows]
    changed = [r for r in held if r[0] in (1, 3)]
    if held != [(1, 11), (2, 2), (3, 13)]:
        cell.differs(f"{call}: the engine holds {held}, not n + 10 on rows 1 and 3 only (returned {show(got)})")
    elif got != changed:
        cell.differs(f"{call} returned {show(got)}; the engine holds {changed}")
    else:
        cell.supported(f"{call} returned {got}, the rows as the engine holds them")


@pytest.mark.parametrize("level", ISOLATION_LEVELS)
def test_isolation_level(cell: Cell, level: str) -> None:
    """A transaction asked for at ``level`` through the ORM runs at that level, as the server reports it inside the
    transaction (read as isolation.effective_level reads it); a level the engine has not is ``unsupported``."""
    engine = engine_for(cell.kind, cell.engine)
    try:
        engine.check_isolation(level)
    except IsolationUnsupported as exc:
        cell.unsupported(exc)
        return
    kits = orm_kit(cell)
    if kits is None:
        return
    kit = kits[0]
    try:
        reported, call = kit.isolated_read(level, lambda: engine.transaction_isolation(kit.session))
    except DriverError as exc:  # the ORM has no way to ask, or the engine or the ORM refuses the level
        cell.unsupported(exc)
        return
    judge_level(cell, f"{kit.orm}: {call}", engine.expected_report(level), reported)


JSON_ROWS: dict[int, Any] = {1: {"colour": "red", "size": 1}, 2: {"colour": "green", "size": 2},
                             3: {"colour": "red", "size": 2, "tags": ["a"]}, 4: {"colour": "blue"}, 5: None}


def test_json_filter(cell: Cell) -> None:
    """The ORM's JSON key lookup in a WHERE (a string and an integer value) selects exactly the rows whose
    document has that key at that value (hand-checked from the seeded documents)."""
    kit = schema_kit(cell)
    if kit is None:
        return
    seed_things(plain_session(cell), kit, dict.fromkeys(JSON_ROWS, 0), JSON_ROWS)
    calls, wrong = [], []
    for key, value in (("colour", "red"), ("size", 2)):
        want = [pk for pk, doc in JSON_ROWS.items() if doc is not None and exact(value, doc.get(key))]
        try:
            got, call = kit.json_filter(key, value)
        except DriverError as exc:
            cell.unsupported(exc)
            return
        calls.append(call)
        if got != want:
            wrong.append(f"{call} selected {show(got)}, the documents with {key} = {value!r} are {want}")
    if wrong:
        cell.differs("; ".join(wrong))
    else:
        cell.supported(f"{'; '.join(calls)}: the rows of the documents with that key and value")


WINDOW_NS = {1: 5, 2: 3, 3: 0, 4: 7, 5: -2}


def test_window(cell: Cell) -> None:
    """The ORM's window function (a running SUM ordered by id) returns what the engine computes for the same rows
    (the same SQL through the plain driver)."""
    kit = schema_kit(cell)
    if kit is None:
        return
    plain = plain_session(cell)
    seed_things(plain, kit, WINDOW_NS)
    try:
        got, call = kit.window()
    except DriverError as exc:
        cell.unsupported(exc)
        return
    engine = [tuple(r) for r in plain.execute(
        f"SELECT name, SUM(n) OVER (ORDER BY id) FROM {kit.table('things')} ORDER BY id").rows]
    want = [(f"thing {pk}", sum(n for k, n in WINDOW_NS.items() if k <= pk)) for pk in WINDOW_NS]
    if engine != want:  # the reference itself is checked by hand: our seeding or the engine is off
        raise AssertionError(f"the engine's own running sum is {engine}, by hand {want}")
    if [tuple(r) for r in got] != engine:
        cell.differs(f"{call} returned {show(got)}; the engine computes {engine}")
    else:
        cell.supported(f"{call} returned the engine's running totals {[r[1] for r in got]} "
                       f"({type(got[0][1]).__name__})")


def test_cte(cell: Cell) -> None:
    """The ORM's common table expression (WITH ...) selects the rows the same filter selects on the engine."""
    kit = schema_kit(cell)
    if kit is None:
        return
    plain = plain_session(cell)
    seed_things(plain, kit, WINDOW_NS)
    try:
        got, call = kit.cte(3)
    except DriverError as exc:
        cell.unsupported(exc)
        return
    engine = [r[0] for r in plain.execute(
        f"WITH big AS (SELECT name FROM {kit.table('things')} WHERE n >= 3) SELECT name FROM big ORDER BY name").rows]
    if engine != ["thing 1", "thing 2", "thing 4"]:
        raise AssertionError(f"the engine's own CTE selects {engine}")
    if got != engine:
        cell.differs(f"{call} selected {show(got)}; the engine selects {engine}")
    else:
        cell.supported(f"{call} selected {got}, as the engine does")


POOLED_CLIENTS, POOLED_ROUNDS = 8, 10


def _pooled_run(cell: Cell, fix: str | None, options: dict[str, Any] | None) -> tuple[list[DriverError], str]:
    """POOLED_CLIENTS clients, each a kit on a session of its own (with ``options``, then ``fix`` applied), run
    ``pooled_work(POOLED_ROUNDS)`` at once; (the errors the clients stopped on, the calls made)."""
    kits = orm_kit(cell, *(cell.connect(options=options) for _ in range(POOLED_CLIENTS)))
    assert kits is not None
    for kit in kits:
        if fix is not None:
            kit.with_fix(fix)

    def client(kit: Any) -> tuple[DriverError | None, str]:
        try:
            return None, kit.pooled_work(POOLED_ROUNDS)
        except DriverError as exc:
            return exc, ""

    with concurrent.futures.ThreadPoolExecutor(POOLED_CLIENTS, thread_name_prefix="dbm-orm-client") as pool:
        outcomes = list(pool.map(client, kits, timeout=300))
    return [e for e, _ in outcomes if e is not None], next((c for _, c in outcomes if c), "")


@axes("target", "driver", kinds=("postgresql",), drivers=DEFAULT_DRIVERS)
def test_pooler_safe(cell: Cell) -> None:
    """POOLED_CLIENTS concurrent clients run the ORM's everyday work (get, filter, streaming, a save in a
    transaction) at its defaults. Behind a transaction pooler (PgBouncer) a failure is ``differs`` naming the
    engine's code, and each documented fix (the kit's ``pooler_fixes``, the driver's own connect options as in
    pooling.prepared_statements) is applied and run again: the outcome of each is in the findings, the fixes that
    work in ``params["options"]``. A direct PostgreSQL target is the control group."""
    kits = orm_kit(cell)
    if kits is None:
        return
    kits[0].create_schema()
    kits[0].bulk_insert([f"seed {i}" for i in range(30)])
    failures, calls = _pooled_run(cell, None, None)
    if not failures:
        cell.supported(f"{POOLED_CLIENTS} clients x {POOLED_ROUNDS} rounds of {calls} at the ORM's defaults: no "
                       "error", metrics={"clients": POOLED_CLIENTS, "rounds": POOLED_ROUNDS})
        return
    codes = sorted({e.code or e.cls for e in failures})
    # the mechanism names the code most clients failed with (ties: the first in order), so one client's rarer
    # follow-on error (a name clash after a failed prepare) cannot change the cell's verdict
    common = collections.Counter(e.code or e.cls for e in failures).most_common()
    main_code = min(code for code, n in common if n == common[0][1])
    fixes: dict[str, tuple[str, dict[str, Any] | None, str | None]] = {
        name: (setting, None, name) for name, setting in kits[0].pooler_fixes.items()}
    driver_fix = cell.driver.pooler_fix()  # type: ignore[union-attr]
    if driver_fix is not None:
        fixes["driver"] = (f"connect options {driver_fix}", driver_fix, None)
    findings: list[dict[str, Any]] = [{"fix": None, "failed_clients": len(failures), "codes": codes}]
    working: dict[str, str] = {}
    for name, (setting, options, kit_fix) in fixes.items():
        left, fixed_calls = _pooled_run(cell, kit_fix, options)
        findings.append({"fix": name, "setting": setting, "calls": fixed_calls, "failed_clients": len(left),
                         "codes": sorted({e.code or e.cls for e in left})})
        if not left:
            working[name] = setting
    cell.params["options"] = {**(cell.params.get("options") or {}), "fixes": working}
    remedy = (f"fixed by: {'; '.join(f'{k} ({v})' for k, v in working.items())}" if working
              else "no documented fix made it pass")
    done = f" ({calls})" if calls else ""  # the calls of a client that got through
    cell.differs(f"{len(failures)} of {POOLED_CLIENTS} clients failed at the ORM's defaults{done}: "
                 f"{describe_error(failures[0])}; {remedy}", mechanism=f"error:{main_code}", findings=findings,
                 metrics={"clients": POOLED_CLIENTS, "rounds": POOLED_ROUNDS, "failed_clients": len(failures)})
