"""Expectation files: strict loading, matching filters, last-match-wins, and verdicts.

The last tests load the repository's real ``cases/expectations/*.toml`` and check every entry against the
case ids the plugin derives from ``cases/test_*.py``.
"""

from __future__ import annotations

import ast
import fnmatch
from pathlib import Path

import pytest

from dbmatrix.drivers import all_driver_ids
from dbmatrix.errors import UsageError
from dbmatrix.expectations import Expectation, Expectations, verdict
from dbmatrix.results import OUTCOMES

REPO = Path(__file__).resolve().parents[1]
CASES = REPO / "cases"
REAL_EXPECTATIONS = CASES / "expectations"
KINDS = {"sqlite", "postgresql", "mysql", "cockroachdb"}  # Target.kind values
ENGINES = {"sqlite", "postgresql", "mariadb", "mysql", "cockroachdb"}  # Target.engine values


def write(directory: Path, kind: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{kind}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def entry(case: str = "types.*", outcome: str = "differs", reason: str = "because", **extra: object) -> str:
    lines = ["[[expect]]", f"case = {case!r}", f"outcome = {outcome!r}", f"reason = {reason!r}"]
    for key, value in extra.items():
        if isinstance(value, str):
            lines.append(f"{key} = {value!r}")
        elif isinstance(value, list):
            lines.append(f"{key} = [{', '.join(repr(v) for v in value)}]")
        elif isinstance(value, dict):
            lines.append(f"{key} = {{ {', '.join(f'{k} = {v!r}' for k, v in value.items())} }}")
        else:
            lines.append(f"{key} = {value}")
    return "\n".join(lines) + "\n\n"


def load(tmp_path: Path, kind: str, *entries: str) -> Expectations:
    write(tmp_path / "expectations", kind, "".join(entries))
    return Expectations.load(tmp_path / "expectations")


def look(
    exps: Expectations,
    kind: str = "postgresql",
    case: str = "types.int_limits",
    engine: str = "postgresql",
    target: str = "postgres",
    driver: str = "psycopg",
    params: dict | None = None,
) -> str | None:
    found = exps.lookup(kind, case, engine, target, driver, params or {})
    return found.outcome if found else None


# --- loading -----------------------------------------------------------------------------------------------------


def test_load_valid_file(tmp_path: Path) -> None:
    exps = load(
        tmp_path,
        "mysql",
        "# comment\n",
        entry("types.float_specials", "unsupported", "MariaDB DOUBLE has no NaN", engine="mariadb",
              error="ProgrammingError"),
        entry("types.*", "differs", "bool is tinyint", driver=["pymysql", "sa-*+pymysql"], target="maria*"),
        entry("isolation.lost_update", "prevented", "RR aborts", params={"isolation": "repeatable read"}),
        entry("types.bool_roundtrip", "differs", "one driver", driver="asyncmy"),
    )
    [mysql] = exps.by_kind.values()
    assert list(exps.by_kind) == ["mysql"]
    assert mysql[0] == Expectation("types.float_specials", "unsupported", "MariaDB DOUBLE has no NaN", "mariadb",
                                   errors=("ProgrammingError",))
    assert mysql[0].mechanism == "error:ProgrammingError"
    assert mysql[1].drivers == ("pymysql", "sa-*+pymysql") and mysql[1].target == "maria*"
    assert mysql[2].params == {"isolation": "repeatable read"}
    assert mysql[3].drivers == ("asyncmy",)


def test_missing_directory_means_no_expectations(tmp_path: Path) -> None:
    exps = Expectations.load(tmp_path / "nope")
    assert exps.by_kind == {}
    assert look(exps) is None


def test_empty_file_is_valid(tmp_path: Path) -> None:
    assert load(tmp_path, "sqlite").by_kind == {"sqlite": []}


def test_every_outcome_is_accepted(tmp_path: Path) -> None:
    exps = load(tmp_path, "sqlite", *(entry(f"c.{o}", o, error="SQLITE_ERROR") for o in OUTCOMES))
    assert [e.outcome for e in exps.by_kind["sqlite"]] == list(OUTCOMES)


def _refused(tmp_path: Path, text: str) -> str:
    path = write(tmp_path / "expectations", "postgresql", text)
    with pytest.raises(UsageError) as err:
        Expectations.load(tmp_path / "expectations")
    msg = str(err.value)
    assert str(path) in msg, msg
    return msg


def test_unknown_key_is_refused_naming_file_and_entry(tmp_path: Path) -> None:
    msg = _refused(tmp_path, entry("a.b") + entry("c.d", drvier="psycopg"))
    assert "#2" in msg and "drvier" in msg


@pytest.mark.parametrize("missing", ["case", "outcome", "reason"])
def test_missing_required_key_is_refused(tmp_path: Path, missing: str) -> None:
    fields = {"case": "'a.b'", "outcome": "'differs'", "reason": "'why'"}
    del fields[missing]
    msg = _refused(tmp_path, entry("x.y") + "[[expect]]\n" + "".join(f"{k} = {v}\n" for k, v in fields.items()))
    assert "#2" in msg and missing in msg


@pytest.mark.parametrize("reason", ["", "   "])
def test_blank_reason_is_refused(tmp_path: Path, reason: str) -> None:
    msg = _refused(tmp_path, entry("a.b", reason=reason))
    assert "#1" in msg and "reason" in msg


@pytest.mark.parametrize("outcome", ["supportd", "as-expected", "deviation", "Supported"])
def test_unknown_outcome_is_refused(tmp_path: Path, outcome: str) -> None:
    msg = _refused(tmp_path, entry("a.b", outcome))
    assert "#1" in msg and outcome in msg


def test_unknown_top_level_key_is_refused(tmp_path: Path) -> None:
    msg = _refused(tmp_path, "title = 'x'\n\n" + entry("a.b"))
    assert "title" in msg


def test_malformed_toml_is_refused(tmp_path: Path) -> None:
    _refused(tmp_path, "[[expect]\ncase = 'a'\n")


@pytest.mark.parametrize(
    "bad",
    [
        'params = "isolation"',  # not a table
        "driver = 5",  # neither a string nor a list
        "engine = 5",  # a number can never match an engine name
        "target = ['postgres']",  # target is one glob
    ],
)
def test_wrongly_typed_field_is_a_usage_error(tmp_path: Path, bad: str) -> None:
    msg = _refused(
        tmp_path, entry("a.b") + "[[expect]]\ncase = 'a.*'\noutcome = 'differs'\nreason = 'r'\n" + bad + "\n"
    )
    assert "#2" in msg


@pytest.mark.parametrize("text", ["expect = 1\n", "[expect]\ncase = 'a.b'\noutcome = 'differs'\nreason = 'r'\n"])
def test_expect_that_is_not_an_array_of_tables_is_a_usage_error(tmp_path: Path, text: str) -> None:
    _refused(tmp_path, text)


def test_file_named_after_an_unknown_kind_is_refused(tmp_path: Path) -> None:
    """``postgres.toml`` (not ``postgresql.toml``) would silently turn every expectation in it off."""
    path = write(tmp_path / "expectations", "postgres", entry("types.*"))
    with pytest.raises(UsageError) as err:
        Expectations.load(tmp_path / "expectations")
    assert str(path) in str(err.value) or "postgres" in str(err.value)


# --- matching ----------------------------------------------------------------------------------------------------


def test_case_glob(tmp_path: Path) -> None:
    exps = load(tmp_path, "postgresql", entry("types.*_limits", "differs"))
    assert look(exps, case="types.int_limits") == "differs"
    assert look(exps, case="types.bigint_limits") == "differs"
    assert look(exps, case="types.unicode_text") is None
    assert look(exps, case="sql.int_limits") is None


def test_expectations_apply_only_to_their_kind(tmp_path: Path) -> None:
    exps = load(tmp_path, "mysql", entry("types.*", "differs"))
    assert look(exps, kind="postgresql") is None
    assert look(exps, kind="mysql", engine="mariadb", target="mariadb", driver="pymysql") == "differs"


def test_last_match_wins(tmp_path: Path) -> None:
    exps = load(
        tmp_path,
        "postgresql",
        entry("types.*", "differs"),
        entry("types.int_limits", "unsupported", error=["22003", "DataError"]),
        entry("types.*", "allowed", driver="asyncpg"),
        entry("other.*", "fail"),
    )
    assert look(exps, driver="psycopg") == "unsupported"
    assert look(exps, driver="asyncpg") == "allowed"
    assert look(exps, case="types.bool_roundtrip") == "differs"


def test_engine_filter(tmp_path: Path) -> None:
    exps = load(tmp_path, "mysql", entry("types.*", "differs", engine="mariadb"))
    assert look(exps, kind="mysql", engine="mariadb") == "differs"
    assert look(exps, kind="mysql", engine="mysql") is None


def test_target_glob(tmp_path: Path) -> None:
    exps = load(tmp_path, "postgresql", entry("types.*", "differs", target="pg*"))
    assert look(exps, target="pgbouncer") == "differs"
    assert look(exps, target="postgres") is None


def test_driver_glob_and_list(tmp_path: Path) -> None:
    exps = load(
        tmp_path,
        "postgresql",
        entry("a.*", "differs", driver="sa-*"),
        entry("b.*", "differs", driver=["asyncpg", "sa-*+asyncpg"]),
    )
    assert look(exps, case="a.x", driver="sa-orm+psycopg") == "differs"
    assert look(exps, case="a.x", driver="psycopg") is None
    assert look(exps, case="b.x", driver="asyncpg") == "differs"
    assert look(exps, case="b.x", driver="sa-core+asyncpg") == "differs"
    assert look(exps, case="b.x", driver="sa-core+psycopg") is None
    assert look(exps, case="b.x", driver="psycopg-async") is None


def test_params_filter(tmp_path: Path) -> None:
    exps = load(
        tmp_path,
        "postgresql",
        entry("isolation.*", "allowed", params={"isolation": "read committed"}),
        entry("isolation.*", "prevented", params={"isolation": "serializable", "workers": 2}),
    )
    assert look(exps, case="isolation.lost_update", params={"isolation": "read committed"}) == "allowed"
    assert look(exps, case="isolation.lost_update", params={"isolation": "serializable", "workers": 2}) == "prevented"
    assert look(exps, case="isolation.lost_update", params={"isolation": "serializable", "workers": 3}) is None
    assert look(exps, case="isolation.lost_update", params={"isolation": "serializable"}) is None
    assert look(exps, case="isolation.lost_update") is None


def test_params_compare_as_text(tmp_path: Path) -> None:
    exps = load(tmp_path, "postgresql", entry("c.*", "differs", params={"n": 2}))
    assert look(exps, case="c.x", params={"n": "2"}) == "differs"


def test_all_filters_must_match(tmp_path: Path) -> None:
    exps = load(tmp_path, "mysql", entry("types.*", "differs", engine="mariadb", target="maria*", driver="pymysql"))
    base = {"kind": "mysql", "engine": "mariadb", "target": "mariadb", "driver": "pymysql"}
    assert look(exps, **base) == "differs"
    for key, other in (("engine", "mysql"), ("target", "mysql8"), ("driver", "asyncmy")):
        assert look(exps, **{**base, key: other}) is None


# --- verdicts ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcome", "expected", "want"),
    [
        ("supported", "supported", "as-expected"),
        ("differs", "differs", "as-expected"),
        ("prevented", "prevented", "as-expected"),
        ("differs", "supported", "deviation"),
        ("supported", "unsupported", "deviation"),
        ("supported", None, "deviation"),
        ("error", "error", "deviation"),  # errors always deviate
        ("error", "supported", "deviation"),
        ("error", None, "deviation"),
        ("skipped", "supported", None),  # skipped cells have no verdict
        ("skipped", "skipped", None),
        ("skipped", None, None),
    ],
)
def test_verdict(outcome: str, expected: str | None, want: str | None) -> None:
    assert verdict(outcome, expected) == want


@pytest.mark.parametrize(
    ("outcome", "mechanism", "expected", "errors", "want"),
    [
        ("supported", "error:55P03", "supported", ("55P03",), "as-expected"),
        ("supported", "error:42601", "supported", ("55P03",), "deviation"),  # NOWAIT_BOGUS: a syntax error
        ("unsupported", "error:1146", "unsupported", ("1064",), "deviation"),  # a missing table, not the feature
        ("unsupported", "error:1064", "unsupported", ("1064", "1305"), "as-expected"),
        ("differs", "abort:25P02", "differs", ("25P02",), "as-expected"),
        ("differs", "abort:40001", "differs", ("25P02",), "deviation"),
        ("unsupported", "error:1064", "unsupported", (), "deviation"),  # nothing named the error
        ("supported", "error:23505", "supported", (), "deviation"),  # an unpredicted error in the mechanism
        ("supported", "blocked", "supported", (), "as-expected"),  # not an error mechanism
        ("supported", None, "supported", ("55P03",), "deviation"),  # the predicted error never came
    ],
)
def test_verdict_names_the_error(outcome: str, mechanism: str | None, expected: str, errors: tuple[str, ...],
                                 want: str) -> None:
    assert verdict(outcome, expected, mechanism, errors) == want


@pytest.mark.parametrize("error", [None, "", [], [1]])
def test_unsupported_must_name_its_error(tmp_path: Path, error: object) -> None:
    extra = {} if error is None else {"error": error}
    with pytest.raises(UsageError, match="error"):
        load(tmp_path, "mysql", entry("types.float_specials", "unsupported", "no NaN", **extra))


# --- the real files --------------------------------------------------------------------------------------------


def _case_id_marker(func: ast.FunctionDef) -> str | None:
    """``@case_id("x.y")`` / ``@pytest.mark.dbmatrix_case("x.y")`` overrides the derived id."""
    for deco in func.decorator_list:
        if not isinstance(deco, ast.Call) or not deco.args or not isinstance(deco.args[0], ast.Constant):
            continue
        name = ast.unparse(deco.func)
        if name.split(".")[-1] in ("case_id", "dbmatrix_case"):
            return str(deco.args[0].value)
    return None


def real_case_ids() -> set[str]:
    """Case ids as the plugin derives them: family = first word of the module after ``test_``, case = function."""
    ids: set[str] = set()
    for path in sorted(CASES.glob("test_*.py")):
        family = path.stem.removeprefix("test_").split("_")[0]
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test_"):
                ids.add(_case_id_marker(node) or f"{family}.{node.name.removeprefix('test_')}")
    from dbmatrix.migrate.matrix_cases import CASE_CHECKS  # migrate.* cases are defined from this table

    return ids | {f"migrate.{check}" for check in CASE_CHECKS}


def test_real_case_ids_are_derived() -> None:
    """The check below is only meaningful if cases exist and their ids look like the documented ``family.case``."""
    ids = real_case_ids()
    assert "types.int_limits" in ids
    assert all(i.count(".") >= 1 and all(i.split(".")) for i in ids), ids


def test_real_expectation_files_parse() -> None:
    assert REAL_EXPECTATIONS.is_dir(), "cases/expectations/ is where the plugin looks for expectations"
    files = sorted(REAL_EXPECTATIONS.glob("*.toml"))
    exps = Expectations.load(REAL_EXPECTATIONS)  # raises UsageError on any invalid entry
    assert set(exps.by_kind) == {p.stem for p in files}
    assert set(exps.by_kind) <= KINDS, f"expectation files must be named after a target kind: {sorted(KINDS)}"


def test_every_real_expectation_names_existing_cases_and_drivers() -> None:
    ids = real_case_ids()
    drivers = all_driver_ids()
    problems = []
    for kind, entries in Expectations.load(REAL_EXPECTATIONS).by_kind.items():
        for i, e in enumerate(entries, start=1):
            where = f"{kind}.toml #{i} ({e.case})"
            if not fnmatch.filter(ids, e.case):
                problems.append(f"{where}: case pattern matches no case in cases/")
            for d in e.drivers:
                if not fnmatch.filter(drivers, d):
                    problems.append(f"{where}: driver pattern {d!r} matches no driver id")
            if e.engine is not None and e.engine not in ENGINES:
                problems.append(f"{where}: unknown engine {e.engine!r}")
    assert problems == []


def test_a_cockroachdb_server_behind_a_postgresql_url_gets_cockroachdb_expectations(tmp_path: Path) -> None:
    exps = load(tmp_path, "postgresql", entry("isolation.*", "allowed", "pg"))
    write(tmp_path / "expectations", "cockroachdb", entry("isolation.*", "prevented", "crdb"))
    exps = Expectations.load(tmp_path / "expectations")
    assert look(exps, "postgresql", "isolation.x", engine="cockroachdb") == "prevented"
    assert look(exps, "postgresql", "isolation.x", engine="postgresql") == "allowed"
    # MariaDB has no file of its own: a mysql-kind target keeps mysql.toml
    write(tmp_path / "expectations", "mysql", entry("isolation.*", "differs", "my"))
    exps = Expectations.load(tmp_path / "expectations")
    assert look(exps, "mysql", "isolation.x", engine="mariadb") == "differs"
