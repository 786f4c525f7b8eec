"""Placeholder translation: cases write ``:name``; each driver gets its own paramstyle."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dbmatrix.drivers.params import FORMAT, NAMED, NUMERIC_DOLLAR, PYFORMAT, QMARK, parameter_names, translate

ALL_STYLES = [NAMED, PYFORMAT, NUMERIC_DOLLAR, QMARK]


@pytest.mark.parametrize(
    ("style", "sql", "args"),
    [
        (NAMED, "SELECT :a, :b FROM t WHERE c = :a", {"a": 1, "b": "x"}),
        (PYFORMAT, "SELECT %(a)s, %(b)s FROM t WHERE c = %(a)s", {"a": 1, "b": "x"}),
        (NUMERIC_DOLLAR, "SELECT $1, $2 FROM t WHERE c = $1", [1, "x"]),
        (QMARK, "SELECT ?, ? FROM t WHERE c = ?", [1, "x", 1]),
    ],
)
def test_translation_per_style(style: str, sql: str, args: object) -> None:
    assert translate("SELECT :a, :b FROM t WHERE c = :a", {"a": 1, "b": "x"}, style) == (sql, args)


def test_extra_params_are_passed_for_named_styles_and_dropped_for_positional() -> None:
    params = {"a": 1, "unused": 2}
    assert translate("SELECT :a", params, PYFORMAT) == ("SELECT %(a)s", params)
    assert translate("SELECT :a", params, NUMERIC_DOLLAR) == ("SELECT $1", [1])
    assert translate("SELECT :a", params, QMARK) == ("SELECT ?", [1])


def test_named_args_are_a_copy() -> None:
    params = {"a": 1}
    _, args = translate("SELECT :a", params, PYFORMAT)
    assert args == params and args is not params


@pytest.mark.parametrize(
    ("style", "expected"),
    [
        (NAMED, "SELECT :x::int, CAST(:y AS text), a::text[], :z::jsonb"),
        (PYFORMAT, "SELECT %(x)s::int, CAST(%(y)s AS text), a::text[], %(z)s::jsonb"),
        (NUMERIC_DOLLAR, "SELECT $1::int, CAST($2 AS text), a::text[], $3::jsonb"),
        (QMARK, "SELECT ?::int, CAST(? AS text), a::text[], ?::jsonb"),
    ],
)
def test_casts_are_not_parameters(style: str, expected: str) -> None:
    sql = "SELECT :x::int, CAST(:y AS text), a::text[], :z::jsonb"
    assert parameter_names(sql) == ["x", "y", "z"]
    assert translate(sql, {"x": 1, "y": 2, "z": "{}"}, style)[0] == expected


QUOTED = "SELECT ':a', 'it''s :a', \"col:a\", \"we\"\"ird:a\" -- :a in a comment\nFROM t WHERE v = :a"


@pytest.mark.parametrize(
    ("style", "tail"),
    [(NAMED, ":a"), (PYFORMAT, "%(a)s"), (NUMERIC_DOLLAR, "$1"), (QMARK, "?")],
)
def test_literals_identifiers_and_comments_are_untouched(style: str, tail: str) -> None:
    assert parameter_names(QUOTED) == ["a"]
    sql, args = translate(QUOTED, {"a": 7}, style)
    assert sql == QUOTED.removesuffix(":a") + tail
    assert args in ({"a": 7}, [7])


def test_comment_ends_at_newline() -> None:
    sql = "SELECT 1 -- :nope\n, :yes"
    assert parameter_names(sql) == ["yes"]
    assert translate(sql, {"yes": 1}, NUMERIC_DOLLAR) == ("SELECT 1 -- :nope\n, $1", [1])


def test_percent_is_doubled_for_pyformat_everywhere() -> None:
    sql = "SELECT '100%', :a % 2, v LIKE 'a%' -- 5% off\nFROM \"t%\""
    out, _ = translate(sql, {"a": 1}, PYFORMAT)
    assert out == "SELECT '100%%', %(a)s %% 2, v LIKE 'a%%' -- 5%% off\nFROM \"t%%\""
    assert out.replace("%%", "").count("%") == 1  # only the placeholder's own '%' is single


@pytest.mark.parametrize("style", [NAMED, NUMERIC_DOLLAR, QMARK])
def test_percent_is_left_alone_for_other_styles(style: str) -> None:
    sql = "SELECT '100%', :a % 2"
    assert "%%" not in translate(sql, {"a": 1}, style)[0]


def test_pyformat_translation_survives_python_percent_formatting() -> None:
    """What psycopg/pymysql do with the translated SQL: ``sql % args`` must give back the literal text."""
    out, args = translate("SELECT '100%', :a % 2 FROM t WHERE s LIKE '%x%'", {"a": 5}, PYFORMAT)
    assert out % args == "SELECT '100%', 5 % 2 FROM t WHERE s LIKE '%x%'"


def test_numeric_dollar_reuses_the_number_of_a_repeated_name() -> None:
    sql, args = translate("SELECT :b, :a, :b, :c, :a", {"a": "A", "b": "B", "c": "C"}, NUMERIC_DOLLAR)
    assert sql == "SELECT $1, $2, $1, $3, $2"
    assert args == ["B", "A", "C"]


def test_qmark_repeats_the_value_of_a_repeated_name() -> None:
    assert translate("SELECT :b, :a, :b", {"a": "A", "b": "B"}, QMARK) == ("SELECT ?, ?, ?", ["B", "A", "B"])


def test_name_prefixes_do_not_collide() -> None:
    assert translate("SELECT :ab, :a, :abc", {"a": 1, "ab": 2, "abc": 3}, NUMERIC_DOLLAR) == (
        "SELECT $1, $2, $3",
        [2, 1, 3],
    )


def test_word_or_colon_before_the_colon_is_not_a_parameter() -> None:
    # '10:30' inside an expression and a '::' cast are not parameters
    assert parameter_names("SELECT x::text, 10:a, :b") == ["b"]


@pytest.mark.parametrize("style", ALL_STYLES)
def test_missing_parameter_raises_key_error(style: str) -> None:
    with pytest.raises(KeyError, match="missing"):
        translate("SELECT :present, :missing", {"present": 1}, style)


@pytest.mark.parametrize("style", ALL_STYLES)
def test_params_none_leaves_sql_unchanged(style: str) -> None:
    sql = "SELECT '100%', :a::int -- :b"
    assert translate(sql, None, style) == (sql, None)


@pytest.mark.parametrize("style", ALL_STYLES)
def test_sql_without_parameters(style: str) -> None:
    sql, args = translate("SELECT 1", {}, style)
    assert sql == "SELECT 1"
    assert args in ({}, [])


def test_unknown_style_is_refused() -> None:
    with pytest.raises(ValueError, match="paramstyle"):
        translate("SELECT :a", {"a": 1}, "numeric")


def test_format_is_positional_percent_s_with_percent_doubled() -> None:
    """pg8000's ``format``: ``%s`` per occurrence (repeats repeated), '%' doubled everywhere as in pyformat."""
    sql, args = translate("SELECT :a, '5%', :b, :a -- 9%", {"a": 1, "b": 2}, FORMAT)
    assert (sql, args) == ("SELECT %s, '5%%', %s, %s -- 9%%", [1, 2, 1])


# --- properties --------------------------------------------------------------------------------------------------

NAME = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,11}", fullmatch=True)
VALUE = st.one_of(st.integers(), st.text(max_size=5), st.none(), st.floats(allow_nan=False))


@given(st.lists(NAME, min_size=1, max_size=12), st.data())
def test_numeric_dollar_args_follow_first_appearance(uses: list[str], data: st.DataObject) -> None:
    values = {n: data.draw(VALUE, label=n) for n in dict.fromkeys(uses)}
    sql = "SELECT " + ", ".join(f":{n}" for n in uses)
    out, args = translate(sql, values, NUMERIC_DOLLAR)
    first_seen = list(dict.fromkeys(uses))
    assert args == [values[n] for n in first_seen]
    numbers = [int(p.strip().removeprefix("$")) for p in out.removeprefix("SELECT ").split(",")]
    assert numbers == [first_seen.index(n) + 1 for n in uses]


@given(st.lists(NAME, min_size=1, max_size=12), st.data())
def test_all_styles_agree_on_the_parameters(uses: list[str], data: st.DataObject) -> None:
    values = {n: data.draw(VALUE, label=n) for n in dict.fromkeys(uses)}
    sql = "SELECT '%:x' AS lit, " + " + ".join(f":{n}::int" for n in uses) + " -- :y"
    assert parameter_names(sql) == uses
    assert translate(sql, values, QMARK)[1] == [values[n] for n in uses]
    pyformat_sql, pyformat_args = translate(sql, values, PYFORMAT)
    assert pyformat_args == values
    assert pyformat_sql.count("%(") == len(uses)
    assert translate(sql, values, NAMED) == (sql, values)
