"""Which exceptions are findings about the database, and which are bugs of ours (``driver_finding``), and what the
capability table predicts for a capability an engine lacks."""

from __future__ import annotations

import sqlite3

import pytest

from dbmatrix.drivers import get_adapter
from dbmatrix.drivers.base import ConnectInfo, driver_finding
from dbmatrix.errors import DriverError
from dbmatrix.targets.capabilities import CAPABILITIES, profile_entry, refusal_errors


def test_dbapi_errors_are_findings_with_their_code() -> None:
    conn = sqlite3.connect(":memory:")
    with pytest.raises(sqlite3.Error) as info:
        conn.execute("SELEC 1")
    err = driver_finding(get_adapter("sqlite3"), info.value)
    assert isinstance(err, DriverError) and err.code == "SQLITE_ERROR" and err.cls == "OperationalError"


@pytest.mark.parametrize("exc", [TypeError("unsupported operand type(s) for +: 'int' and 'str'"),
                                 ValueError("too many values to unpack"), KeyError("sqlite"),
                                 AttributeError("'NoneType' object has no attribute 'rows'"), ValueError(1062, "x")])
@pytest.mark.parametrize("driver", ["sqlite3", "psycopg2", "pymysql", "sa-core+sqlite3"])
def test_our_bugs_are_not_findings(driver: str, exc: Exception) -> None:
    """A TypeError/ValueError/KeyError raised by our code (even one shaped like a MySQL (errno, message) pair)
    must propagate so the cell ends as ``error``."""
    assert driver_finding(get_adapter(driver), exc) is None


def test_listed_client_refusals_are_findings() -> None:
    nul = ValueError("A string literal cannot contain NUL (0x00) characters.")
    err = driver_finding(get_adapter("psycopg2"), nul)
    assert isinstance(err, DriverError) and err.cls == "ValueError" and err.code is None
    # the same refusal is not listed for another driver, and refusals are off where the caller says so
    assert driver_finding(get_adapter("sqlite3"), nul) is None
    assert driver_finding(get_adapter("psycopg2"), nul, refusals=False) is None


def test_a_statement_runs_through_the_strict_mapping(tmp_path) -> None:
    """End to end through a real session: the engine's error is a DriverError, our bug is not."""
    from sqlalchemy.engine import make_url

    session = get_adapter("sqlite3").connect(ConnectInfo("sqlite", make_url(f"sqlite:///{tmp_path / 'x.db'}")))
    try:
        with pytest.raises(DriverError) as info:
            session.execute("SELECT * FROM missing_table")
        assert info.value.code == "SQLITE_ERROR"

        def bug() -> None:
            raise TypeError("a bug of ours")

        with pytest.raises(TypeError):
            session._call(bug, refusals=True)
    finally:
        session.close()


@pytest.mark.parametrize("capability", sorted(CAPABILITIES))
@pytest.mark.parametrize("engine", ["postgresql", "mariadb", "mysql", "sqlite", "cockroachdb"])
def test_every_missing_capability_predicts_a_named_error(engine: str, capability: str) -> None:
    errors = refusal_errors(capability, engine)
    assert errors and all(isinstance(e, str) and e for e in errors)


def test_refusal_predictions_and_profile_entry() -> None:
    assert refusal_errors("returning_update", "mariadb") == ("1064",)
    assert refusal_errors("jsonb", "mariadb") == ("4161",)
    assert refusal_errors("listen_notify", "sqlite") == ("Unsupported",)
    with pytest.raises(KeyError):
        refusal_errors("no_such_capability", "mariadb")
    assert "PROFILES['mariadb']" in profile_entry("returning_update", "mariadb")
    assert "'returning_update'" in profile_entry("returning_update", "mariadb")


def test_raw_psycopg2_is_not_changed_by_sqlalchemy_registering_uuid() -> None:
    """SQLAlchemy's psycopg2 dialect registers a process-wide uuid.UUID adapter on connect; a raw psycopg2 session
    must still behave as psycopg2 alone (refuse uuid.UUID), and SQLAlchemy keeps its adapter afterwards."""
    import uuid

    import psycopg2.extensions as ext
    import sqlalchemy as sa
    from live import POSTGRES_URL, installed_adapter, postgres_info

    engine = sa.create_engine(POSTGRES_URL.replace("postgresql:", "postgresql+psycopg2:"))
    value = uuid.UUID("12345678-1234-5678-1234-567812345678")
    with engine.connect() as conn:  # on_connect: psycopg2.extras.register_uuid()
        assert conn.execute(sa.text("select cast(:v as uuid)"), {"v": value}).scalar() == value
    assert (uuid.UUID, ext.ISQLQuote) in ext.adapters
    session = installed_adapter("psycopg2").open(postgres_info())
    try:
        with pytest.raises(DriverError) as info:
            session.execute("select cast(:v as uuid)", {"v": value})
        assert info.value.cls == "ProgrammingError" and "UUID" in info.value.message
    finally:
        session.close()
    assert (uuid.UUID, ext.ISQLQuote) in ext.adapters  # put back for SQLAlchemy
    with engine.connect() as conn:
        assert conn.execute(sa.text("select cast(:v as uuid)"), {"v": value}).scalar() == value
    engine.dispose()
