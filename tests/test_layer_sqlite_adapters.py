"""A layer's process-wide sqlite3 adapters (Peewee: Decimal, date, time as text; Django: Decimal, date, datetime, and
converters for declared column types) never reach plain sqlite3 cells."""

from __future__ import annotations

import decimal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path


def test_peewee_adapters_hold_only_while_a_peewee_session_is_open(tmp_path: Path) -> None:
    # a fresh interpreter: the first import of peewee is the one that registers its adapters
    code = textwrap.dedent(f"""
        import decimal, sqlite3
        from dbmatrix.drivers import get_adapter
        from dbmatrix.drivers.base import ConnectInfo
        from sqlalchemy.engine import make_url

        def binds_decimal(conn):
            try:
                conn.execute("SELECT ?", (decimal.Decimal("1.5"),)).fetchone()
                return True
            except sqlite3.ProgrammingError:
                return False

        plain = sqlite3.connect(":memory:")
        assert not binds_decimal(plain)
        info = ConnectInfo(kind="sqlite", url=make_url("sqlite:///{tmp_path}/x.db"), engine="sqlite")
        session = get_adapter("peewee+sqlite3").connect(info)
        session.peewee.execute_sql("CREATE TABLE t (d DECIMAL)")
        session.peewee.execute_sql("INSERT INTO t VALUES (?)", (decimal.Decimal("2.5"),))  # Peewee binds it
        assert not binds_decimal(plain), "between Peewee's statements, plain sqlite3 binds as sqlite3 does"
        session.close()
        assert not binds_decimal(plain), "after the Peewee session, plain sqlite3 binds as a plain user's would"
        session.close()  # twice: released once
        assert not binds_decimal(plain)
        print("ok")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stdout + proc.stderr


def test_django_adapters_and_converters_hold_only_in_djangos_cursors(tmp_path: Path) -> None:
    code = textwrap.dedent(f"""
        import decimal, sqlite3
        from dbmatrix.drivers import get_adapter
        from dbmatrix.drivers.base import ConnectInfo
        from sqlalchemy.engine import make_url

        def binds_decimal(conn):
            try:
                conn.execute("SELECT ?", (decimal.Decimal("1.5"),)).fetchone()
                return True
            except sqlite3.ProgrammingError:
                return False

        def bool_column(conn):  # Django registers a converter for declared type "bool"; sqlite3 has none
            return conn.execute("SELECT b FROM t").fetchone()[0]

        plain = sqlite3.connect("{tmp_path}/x.db", detect_types=sqlite3.PARSE_DECLTYPES)
        plain.execute("CREATE TABLE t (b bool)")
        plain.execute("INSERT INTO t VALUES (1)")
        plain.commit()
        info = ConnectInfo(kind="sqlite", url=make_url("sqlite:///{tmp_path}/x.db"), engine="sqlite")
        session = get_adapter("django+sqlite3").connect(info)
        wrapper = session.django

        def django_reads():
            with wrapper.cursor() as cursor:
                cursor.execute("SELECT %s, b FROM t", [decimal.Decimal("2.5")])  # Django's adapter binds it
                return cursor.fetchone()

        assert session._do(django_reads) == ("2.5", True), "Django's cursors have its adapters and converters"
        assert not binds_decimal(plain), "between Django's statements, plain sqlite3 binds as sqlite3 does"
        assert bool_column(plain) == 1, "and converts declared types with sqlite3's own converters"
        session.close()
        assert not binds_decimal(plain) and bool_column(plain) == 1
        print("ok")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stdout + proc.stderr


def test_plain_sqlite3_has_no_decimal_adapter_here() -> None:
    # this process may already have run Peewee cells: the plain driver still refuses Decimal as sqlite3 does
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute("SELECT ?", (decimal.Decimal("1.5"),))
        bound = True
    except sqlite3.ProgrammingError:
        bound = False
    assert not bound
