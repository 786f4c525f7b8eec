"""The Django ORM layer (``django+<dbapi>``) on the live servers, beyond the session contract suite
(tests/test_sessions.py covers every id) and the ``orm.*`` cases: where it sits, that Django's ``DatabaseWrapper``
adopts the DBAPI adapter's connection and sees every statement, that Django's exceptions come out as the DBAPI's
codes, and every operation of its ORM kit (the second set included) with the values and types Django really gives."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import decimal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from live import installed_adapter, live_info, mariadb_info, pgbouncer_info

from dbmatrix.drivers import layer_pairs
from dbmatrix.drivers.base import Session
from dbmatrix.engines import engine_for
from dbmatrix.errors import DriverError
from dbmatrix.layers.django_kit import DjangoKit
from dbmatrix.layers.ormkit import Colour

DRIVERS = ["django+psycopg", "django+mysqlclient", "django+sqlite3"]
DUPLICATE = {"postgresql": "23505", "mysql": "1062", "sqlite": "SQLITE_CONSTRAINT_UNIQUE"}
UTC = dt.UTC
AWARE = dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
NAIVE = dt.datetime(2024, 5, 6, 7, 8, 9, 123456)


def test_django_sits_on_the_drivers_its_backends_import() -> None:
    # psycopg 3 is installed here, so Django's PostgreSQL backend uses it and never psycopg2
    assert layer_pairs()["django"] == ["psycopg", "mysqlclient", "sqlite3"]


@pytest.fixture(params=DRIVERS)
def kit(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DjangoKit]:
    adapter = installed_adapter(request.param)
    session = adapter.connect(live_info(request.param, str(tmp_path / "dj.db")))
    kit = adapter.orm_kit(session, f"dbm_dj_{uuid.uuid4().hex[:8]}")  # type: ignore[attr-defined]
    try:
        kit.create_schema()
        yield kit
    finally:
        for table in ("books", "authors", "things", "accounts"):
            try:
                session.execute(f"DROP TABLE {kit.table(table)}")
            except DriverError:
                pass  # a failed create_schema left fewer tables
        session.close()


def test_statements_go_through_the_adopted_connection(kit: DjangoKit) -> None:
    """Django's wrapper holds the DBAPI adapter's own connection, its ORM's statements are the DBAPI cursor's, and
    a duplicate key comes out as the DBAPI's code."""
    session, kind = kit.session, kit.session.info.kind
    assert kit.wrapper.connection is session.driver_connection()
    kit.count_statements()
    kit.save_field("bool", True)
    assert kit.statements == 1
    assert session.execute(f"SELECT count(*) FROM {kit.table('things')}").scalar() == 1  # through Django's cursor
    kit.run(lambda: kit.Thing.objects.create(name="dup"))
    with pytest.raises(DriverError) as dup:
        kit.run(lambda: kit.Thing.objects.create(name="dup"))
    assert dup.value.code == DUPLICATE[kind], dup.value


def test_a_session_can_carry_django_settings_of_its_own() -> None:
    """``options={'django': {...}}`` sets DATABASES keys for one session (Django applies them when it connects)."""
    adapter = installed_adapter("django+mysqlclient")
    session = adapter.connect(mariadb_info(), options={"django": {"OPTIONS": {"isolation_level": "serializable"}}})
    try:
        assert session.execute("SELECT @@tx_isolation").scalar() == "SERIALIZABLE"
    finally:
        session.close()


def roundtrip(kit: DjangoKit, field: str, value: object) -> object:
    return kit.load_field(kit.save_field(field, value), field)


def test_fields_come_back_as_django_gives_them(kit: DjangoKit) -> None:
    kind = kit.session.info.kind
    exact = {"json": {"a": [1, 2.5, None, True]}, "uuid": uuid.uuid4(), "decimal": decimal.Decimal("1234567890.1234"),
             "datetime_naive": NAIVE, "bool": True, "bytes": b"\x00\xffdbm", "bigint": 2**62 + 1}
    for field, value in exact.items():
        got = roundtrip(kit, field, value)
        assert type(got) is type(value) and got == value, (field, got)
    got = roundtrip(kit, "datetime_aware", AWARE)  # USE_TZ=True: the same instant, in UTC
    assert got == AWARE and got.tzinfo == UTC  # type: ignore[union-attr]
    enum = roundtrip(kit, "enum", Colour.GREEN)  # TextChoices: a fresh query gives the plain str
    assert type(enum) is str and enum == "green"
    # a naive value with USE_TZ on: Django warns and takes it as TIME_ZONE's (UTC) wall time
    with pytest.warns(RuntimeWarning, match="received a naive datetime"):
        assert roundtrip(kit, "datetime_naive_tz", NAIVE) == NAIVE.replace(tzinfo=UTC)
    if kind == "postgresql":
        assert roundtrip(kit, "array", [3, 1, 2]) == [3, 1, 2]
        # an aware value with USE_TZ off: timestamptz stores the instant, Django reads back naive UTC wall time
        assert roundtrip(kit, "datetime_aware_notz", AWARE) == AWARE.astimezone(UTC).replace(tzinfo=None)
    else:
        with pytest.raises(DriverError) as no_array:
            kit.save_field("array", [3, 1, 2])
        assert no_array.value.cls == "Unsupported"
        with pytest.raises(DriverError) as refused:  # Django's own refusal, before anything is sent
            kit.save_field("datetime_aware_notz", AWARE)
        assert refused.value.cls == "ValueError" and "timezone-aware" in refused.value.message


def test_first_set_of_operations(kit: DjangoKit) -> None:
    ids, _ = kit.bulk_insert(["a", "b", "c"])
    held = kit.session.execute(f"SELECT id FROM {kit.table('things')} ORDER BY id").rows
    assert ids == [r[0] for r in held]
    kit.upsert("u", 1)
    kit.upsert("u", 2)
    assert kit.session.execute(f"SELECT n FROM {kit.table('things')} WHERE name = 'u'").rows == [(2,)]
    step, _ = kit.lock_step("plain")
    first = kit.run(step)
    kit.end(False)
    assert first == [1]
    names, _ = kit.nested()
    assert names[-1] == "outer" and "inner" not in names
    kit.seed_books(4)
    kit.count_statements()
    for eager, want in ((False, 5), (True, 1)):
        kit.statements = 0
        rows, _ = kit.books_with_authors(eager)
        assert rows == [(f"book {i}", f"author {i}") for i in range(4)] and kit.statements == want
    pk = kit.seed_account(0)
    assert kit.read_balance(pk) == 0
    kit.save_balance(pk, 100)
    step, _ = kit.add_atomic(pk, 100)
    kit.run(step)
    kit.end(True)
    assert kit.session.execute(f"SELECT balance FROM {kit.table('accounts')}").scalar() == 200


def test_second_set_of_operations(kit: DjangoKit) -> None:
    session, kind = kit.session, kit.session.info.kind
    for name, n, doc in (("x", 1, {"tag": "a", "k": 1}), ("y", 2, {"tag": "b", "k": 2}),
                         ("z", 3, {"tag": "a", "k": 2})):
        kit.run(lambda name=name, n=n, doc=doc: kit.Thing.objects.create(name=name, n=n, f_json=doc))
    assert kit.json_filter("tag", "a")[0] == [1, 3]
    assert kit.json_filter("k", 2)[0] == [2, 3]
    running = kit.window()[0]
    assert running == [("x", 1), ("y", 3), ("z", 6)] and all(type(total) is int for _, total in running)
    for unsupported in (lambda: kit.update_returning([1], 1), lambda: kit.cte(1)):
        with pytest.raises(DriverError) as err:
            unsupported()
        assert err.value.cls == "Unsupported"
    engine = engine_for(kind, session.info.engine)
    if kind == "sqlite":
        with pytest.raises(DriverError) as no_level:
            kit.isolated_read("read uncommitted", lambda: engine.transaction_isolation(session))
        assert no_level.value.cls == "Unsupported"
        levels = ["serializable"]
    else:
        levels = ["read committed", "repeatable read", "serializable"]
    for level in levels:
        got, _ = kit.isolated_read(level, lambda: engine.transaction_isolation(session))
        assert got == engine.expected_report(level), (level, got)
    if kind != "sqlite":
        probe = engine.read_isolation_sql or ""
        normalise = engine.normalise_isolation
        # afterwards the session is back at Django's default: READ COMMITTED on MySQL, the server's on PostgreSQL
        assert normalise(session.execute(probe).scalar()) == "read committed"
        if kind == "postgresql":
            assert session.driver_connection().isolation_level is None  # psycopg sends a plain BEGIN again
    assert "iterator" in kit.pooled_work(2)


def test_pooler_fix_makes_iterator_work_behind_pgbouncer() -> None:
    """8 clients through PgBouncer transaction pooling: ``.iterator()``'s WITH HOLD cursor is gone when the next
    statement lands on another server connection (34000); DISABLE_SERVER_SIDE_CURSORS fixes it."""
    adapter = installed_adapter("django+psycopg")
    prefix = f"dbm_djp_{uuid.uuid4().hex[:8]}"
    sessions: list[Session] = [adapter.connect(pgbouncer_info()) for _ in range(8)]
    kits = [adapter.orm_kit(s, prefix) for s in sessions]  # type: ignore[attr-defined]
    try:
        kits[0].create_schema()

        def outcomes() -> list[str]:
            def work(k: DjangoKit) -> str:
                try:
                    k.pooled_work(5)
                    return "ok"
                except DriverError as exc:
                    return exc.code or exc.cls

            with concurrent.futures.ThreadPoolExecutor(len(kits)) as pool:
                return list(pool.map(work, kits))

        at_defaults = outcomes()
        assert set(at_defaults) <= {"ok", "34000"} and "34000" in at_defaults, at_defaults
        for k in kits:
            k.with_fix("DISABLE_SERVER_SIDE_CURSORS")
        assert outcomes() == ["ok"] * len(kits)
    finally:
        for table in ("books", "authors", "things", "accounts"):
            sessions[0].execute(f"DROP TABLE IF EXISTS {kits[0].table(table)}")
        for s in sessions:
            s.close()


def test_migration_checks_refuse_a_process_django_runs_standalone_in() -> None:
    """The ORM layer's standalone settings never stand in for an application's: configuring Django with a settings
    module after a django+ session is a usage error (a fresh interpreter: Django configures once per process)."""
    code = ("from dbmatrix.django_settings import configure, configure_standalone\n"
            "from dbmatrix.errors import UsageError\n"
            "configure_standalone()\n"
            "try:\n    configure('shop.settings')\nexcept UsageError as exc:\n    print('refused:', exc)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "refused: Django is already configured standalone" in proc.stdout, \
        proc.stdout + proc.stderr
