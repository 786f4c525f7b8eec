"""What the psqlpy adapter says of psqlpy (its module docstring), checked against the live server on 5432: the
value conversion refused client-side, errors without SQLSTATE, results without rowcount or empty-result columns,
and statements prepared (named) by default unless ``prepared=False``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from live import installed_adapter, postgres_info

from dbmatrix.drivers.base import Session
from dbmatrix.errors import DriverError


@pytest.fixture
def session() -> Iterator[Session]:
    with installed_adapter("psqlpy").connect(postgres_info()) as s:
        yield s


def _statements(s: Session, text: str) -> list[str]:
    return [r[0] for r in s.execute(f"SELECT name FROM pg_prepared_statements WHERE statement = '{text}'").rows]


def test_parameters_convert_to_the_type_the_server_inferred(session: Session) -> None:
    """An int for a parameter the server typed text is psqlpy's TypeError, a finding; no type at all is 42P18 on
    the server, which psqlpy reports by class with no code."""
    assert session.execute("SELECT CAST(:v AS INTEGER) AS v", {"v": 7}).rows == [(7,)]
    with pytest.raises(DriverError) as refused:
        session.execute("SELECT :v AS v", {"v": 7})
    assert (refused.value.cls, refused.value.code) == ("TypeError", None)
    assert refused.value.message == "'int' object is not an instance of 'str'"
    with pytest.raises(DriverError) as untyped:
        session.execute("SELECT pg_typeof(:v)", {"v": "x"})
    assert untyped.value.code is None and untyped.value.cls == "DatabaseError"
    assert untyped.value.message == "could not determine data type of parameter $1"


def test_errors_have_no_sqlstate(session: Session) -> None:
    t = f"dbm_tmp_{uuid.uuid4().hex[:10]}"
    session.execute(f"CREATE TEMP TABLE {t} (k int PRIMARY KEY)")
    session.execute(f"INSERT INTO {t} VALUES (1)")
    with pytest.raises(DriverError) as dup:
        session.execute(f"INSERT INTO {t} VALUES (1)")
    assert (dup.value.cls, dup.value.code) == ("ConnectionExecuteError", None)
    assert dup.value.message.startswith("duplicate key value violates unique constraint")
    assert session.execute("SELECT 1 AS one").rows == [(1,)]  # the session is still usable


def test_results_have_no_rowcount_and_empty_ones_no_columns(session: Session) -> None:
    t = f"dbm_tmp_{uuid.uuid4().hex[:10]}"
    session.execute(f"CREATE TEMP TABLE {t} (k int, v int)")
    assert session.execute(f"INSERT INTO {t} VALUES (1, 10), (2, 20)").rowcount == -1
    full = session.execute(f"SELECT k, v FROM {t} ORDER BY k")
    assert (full.columns, full.rows, full.rowcount) == (["k", "v"], [(1, 10), (2, 20)], -1)
    empty = session.execute(f"SELECT k, v FROM {t} WHERE false")
    assert (empty.columns, empty.rows) == ([], [])
    dup = session.execute("SELECT 1 AS a, 2 AS a")  # psqlpy will not name duplicate columns
    assert (dup.columns, dup.rows) == ([], [(1, 2)])


def test_statements_are_named_unless_prepared_is_false() -> None:
    adapter = installed_adapter("psqlpy")
    marker = uuid.uuid4().int % 1000000
    text = f"SELECT CAST($1 AS INTEGER) + {marker} AS marker"  # as the server stores it (psqlpy sends $1)
    with adapter.connect(postgres_info()) as s:
        for k in range(3):
            assert s.execute(f"SELECT CAST(:k AS INTEGER) + {marker} AS marker", {"k": k}).scalar() == k + marker
        names = _statements(s, text)
        assert len(names) == 1 and names[0].startswith("s"), names  # tokio-postgres's per-connection s<n>, kept
    with adapter.connect(postgres_info(), options=adapter.pooler_fix()) as s:
        s.execute(f"SELECT CAST(:k AS INTEGER) + {marker} AS marker", {"k": 1})
        assert _statements(s, text) == []
