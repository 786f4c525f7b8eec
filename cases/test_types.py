"""types.*: does a value come back exactly as written, through every driver, on every engine?

Each case writes Python values into one column and reads them back; the cell records the exact value and
type the driver returns. ``differs`` means the round trip changed the value or its type (e.g. a driver
that returns ``int`` for a boolean, or drops tzinfo).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal

import sqlalchemy as sa
from roundtrip import RoundTrip, check, float_same
from rowcheck import same_value

from dbmatrix.casekit import requires

INT_DDL = {"postgresql": "INTEGER", "cockroachdb": "INT4", "mysql": "INT", "sqlite": "INTEGER"}
TEXT_DDL = {"postgresql": "TEXT", "cockroachdb": "STRING", "mysql": "TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
            "sqlite": "TEXT"}
TS_DDL = {"postgresql": "TIMESTAMP(6)", "cockroachdb": "TIMESTAMP(6)", "mysql": "DATETIME(6)", "sqlite": "TIMESTAMP"}
NEW_YORK = {"postgresql": ["SET TIME ZONE 'America/New_York'"], "cockroachdb": ["SET TIME ZONE 'America/New_York'"],
            "mysql": ["SET time_zone = '-04:00'"]}  # MariaDB may lack named zones; -04:00 is New York in June


def test_int_limits(cell):
    """32-bit integer limits come back as the same ints."""
    check(cell, RoundTrip(INT_DDL, [-(2**31), 0, 2**31 - 1], sa.Integer()))


def test_bigint_limits(cell):
    """64-bit integer limits come back as the same ints."""
    check(cell, RoundTrip({"postgresql": "BIGINT", "cockroachdb": "INT8", "mysql": "BIGINT", "sqlite": "INTEGER"},
                          [-(2**63), 2**63 - 1], sa.BigInteger()))


def test_numeric_scale(cell):
    """NUMERIC(20,6) keeps every digit: an exact Decimal in, the same Decimal out."""
    check(cell, RoundTrip({"postgresql": "NUMERIC(20,6)", "cockroachdb": "DECIMAL(20,6)", "mysql": "DECIMAL(20,6)",
                           "sqlite": "NUMERIC(20,6)"},
                          [Decimal("12345678901234.123456"), Decimal("-0.000001")], sa.Numeric(20, 6)))


def test_float_specials(cell):
    """A double column stores NaN, +inf and -inf and returns them as floats."""
    check(cell, RoundTrip({"postgresql": "DOUBLE PRECISION", "cockroachdb": "FLOAT8", "mysql": "DOUBLE",
                           "sqlite": "REAL"},
                          [float("nan"), float("inf"), float("-inf")], sa.Float(), same=float_same))


def test_unicode_text(cell):
    """Non-ASCII text, astral-plane emoji included, comes back unchanged."""
    check(cell, RoundTrip(TEXT_DDL, ["héllo wörld ✓", "😀 🎉 𝄞 (astral plane)", "日本語テキスト"], sa.Text()))


def test_nul_in_text(cell):
    """A NUL character inside a text value is stored and returned (PostgreSQL text cannot hold one)."""
    check(cell, RoundTrip(TEXT_DDL, ["before\x00after"], sa.Text()))


def test_bytes_roundtrip(cell):
    """Binary data, NUL and high bytes included, comes back as the same ``bytes``."""
    check(cell, RoundTrip({"postgresql": "BYTEA", "cockroachdb": "BYTES", "mysql": "LONGBLOB", "sqlite": "BLOB"},
                          [b"\x00\x01\xfe\xffbinary\x00", b""], sa.LargeBinary()))


def test_bool_roundtrip(cell):
    """A boolean comes back as ``bool``, not as an integer."""
    check(cell, RoundTrip({"postgresql": "BOOLEAN", "cockroachdb": "BOOL", "mysql": "BOOLEAN", "sqlite": "BOOLEAN"},
                          [True, False], sa.Boolean()))


def test_date_roundtrip(cell):
    """A date (a leap day) comes back as ``datetime.date``."""
    check(cell, RoundTrip({"postgresql": "DATE", "cockroachdb": "DATE", "mysql": "DATE", "sqlite": "DATE"},
                          [dt.date(2024, 2, 29), dt.date(1, 1, 1)], sa.Date()))


def test_time_roundtrip(cell):
    """A time of day with microseconds comes back as ``datetime.time``."""
    check(cell, RoundTrip({"postgresql": "TIME(6)", "cockroachdb": "TIME(6)", "mysql": "TIME(6)", "sqlite": "TIME"},
                          [dt.time(13, 45, 30, 123456)], sa.Time()))


def test_naive_timestamp(cell):
    """A naive timestamp with microseconds comes back naive and identical."""
    check(cell, RoundTrip(TS_DDL, [dt.datetime(2024, 3, 10, 2, 30, 0, 123456)], sa.DateTime()))


def test_timestamptz_roundtrip(cell):
    """An aware timestamp written with the session time zone set to New York (not UTC) comes back as the
    same instant and still aware. Engines without an instant type show what happens to the offset."""

    def note(written: dt.datetime, read: dt.datetime) -> str:
        return f"same instant, returned in zone {read.tzinfo} (UTC{read.strftime('%z')})"

    check(cell, RoundTrip(
        {"postgresql": "TIMESTAMPTZ", "cockroachdb": "TIMESTAMPTZ", "mysql": "TIMESTAMP(6)", "sqlite": "TIMESTAMP"},
        [WRITTEN_INSTANT],
        sa.DateTime(timezone=True), session_sql=NEW_YORK,
        same=lambda w, r: type(r) is dt.datetime and r.tzinfo is not None and r == w, note=note,
        stored=_stored_instant,
    ))


def _stored_instant(cell, s, table) -> str | None:
    """MySQL/MariaDB TIMESTAMP holds an instant (UTC): say which one was stored and how far it is from the one
    written, so a silent shift shows with its size."""
    if cell.kind != "mysql":
        return None
    epoch = s.execute(f"SELECT UNIX_TIMESTAMP(v) FROM {table} ORDER BY id").scalar()
    if epoch is None:
        return None
    stored = dt.datetime.fromtimestamp(float(epoch), dt.UTC)
    shift = (stored - WRITTEN_INSTANT).total_seconds() / 3600
    return (f"the server stored the instant {stored:%Y-%m-%d %H:%M:%S.%f} UTC, {shift:+g} h from the one written "
            f"({WRITTEN_INSTANT.astimezone(dt.UTC):%H:%M:%S.%f} UTC): the offset was dropped and the wall-clock time "
            "read in the session time zone")


WRITTEN_INSTANT = dt.datetime(2024, 6, 1, 12, 0, 0, 250000, tzinfo=dt.timezone(dt.timedelta(hours=2)))
JSON_DOC = {"a": [1, 2.5, "x"], "b": None, "ü": True, "nested": {"k": "v"}}


def _json_value(cell):
    # SQLAlchemy users bind dicts (SA serialises); DBAPI users bind JSON text, which every driver accepts.
    return JSON_DOC if cell.driver.layer != "dbapi" else json.dumps(JSON_DOC)


def test_json_roundtrip(cell):
    """A JSON document comes back as the same Python dict (not as a string)."""
    check(cell, RoundTrip({"postgresql": "JSON", "cockroachdb": "JSONB", "mysql": "JSON", "sqlite": "JSON"},
                          [_json_value(cell)], sa.JSON(), same=lambda w, r: same_value(r, JSON_DOC),
                          write_sql={"postgresql": "CAST(:v AS JSON)"}))


@requires("jsonb")
def test_jsonb_roundtrip(cell):
    """A JSONB document comes back as the same Python dict (not as a string)."""
    check(cell, RoundTrip({"postgresql": "JSONB", "cockroachdb": "JSONB"}, [_json_value(cell)],
                          sa.dialects.postgresql.JSONB(), same=lambda w, r: same_value(r, JSON_DOC),
                          write_sql={"postgresql": "CAST(:v AS JSONB)", "cockroachdb": "CAST(:v AS JSONB)"}))


def test_uuid_roundtrip(cell):
    """A ``uuid.UUID`` is accepted as a parameter and comes back as ``uuid.UUID``."""
    check(cell, RoundTrip({"postgresql": "UUID", "cockroachdb": "UUID", "mariadb": "UUID", "mysql": "CHAR(36)",
                           "sqlite": "TEXT"},
                          [uuid.UUID("12345678-1234-5678-1234-567812345678")], sa.Uuid()))


@requires("arrays")
def test_int_array(cell):
    """An integer array, NULL element included, comes back as the same Python list."""
    check(cell, RoundTrip({"postgresql": "INTEGER[]", "cockroachdb": "INT8[]"}, [[1, None, -3, 2**31 - 1], []],
                          sa.ARRAY(sa.Integer())))


@requires("arrays")
def test_text_array(cell):
    """A text array with quotes, commas and braces comes back as the same list of str."""
    check(cell, RoundTrip({"postgresql": "TEXT[]", "cockroachdb": "STRING[]"},
                          [["plain", 'with "quotes"', "a,b", "{braces}", "NULL", ""]], sa.ARRAY(sa.Text())))


@requires("interval")
def test_interval_roundtrip(cell):
    """An interval of days, hours and microseconds comes back as the same ``timedelta``."""
    check(cell, RoundTrip({"postgresql": "INTERVAL", "cockroachdb": "INTERVAL"},
                          [dt.timedelta(days=3, hours=4, minutes=5, microseconds=6)], sa.Interval()))
