"""Target configuration: built-in names, config files, env, ``--target``/``--require`` and URL handling.

Everything here is pure logic: ``TargetResolver`` makes no connections. Every test passes ``cwd=`` and
``environ=`` explicitly so the developer's own environment and files never leak in.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from dbmatrix.errors import UsageError
from dbmatrix.targets.config import (
    BUILTIN,
    DEFAULT_RUN,
    TargetResolver,
    env_var,
    load_file_config,
    parse_require,
    parse_target_option,
)
from dbmatrix.targets.urls import kind_of, parse_url, redact


def secret() -> str:
    """A password no other test uses, so the process-wide secret registry cannot hide a leak."""
    return f"Zq{uuid.uuid4().hex[:10]}Pw"


def resolver(tmp_path: Path, environ: dict[str, str] | None = None) -> TargetResolver:
    return TargetResolver(cwd=tmp_path, environ=environ or {})


def names(targets: list) -> list[str]:
    """The targets that get cells (hosted ones with no URL are listed as skipped rows, without cells)."""
    return [t.name for t in targets if t.configured]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- built-in names and defaults (the documented target names) ----------------------------------------------------


def test_builtin_names_are_the_documented_ones() -> None:
    assert set(BUILTIN) == {
        "sqlite",
        "postgres-embedded",
        "postgres",
        "postgres-replica",
        "pgbouncer",
        "mariadb",
        "mysql",
        "cockroach",
        "neon",
    }
    assert DEFAULT_RUN == ("sqlite", "postgres-embedded")


@pytest.mark.parametrize(
    ("name", "kind", "url"),
    [
        ("postgres", "postgresql", "postgresql://postgres@127.0.0.1:5432/postgres"),
        ("postgres-replica", "postgresql", "postgresql://postgres@127.0.0.1:5433/postgres"),
        ("pgbouncer", "postgresql", "postgresql://postgres@127.0.0.1:6432/postgres"),
        ("mariadb", "mysql", "mysql://root@127.0.0.1:3306/test"),
    ],
)
def test_builtin_defaults(tmp_path: Path, name: str, kind: str, url: str) -> None:
    t = resolver(tmp_path).resolve(name)
    assert (t.name, t.kind, t.managed) == (name, kind, None)
    assert t.url.render_as_string(hide_password=False) == url


def test_pgbouncer_is_transaction_pooled_and_postgres_is_not(tmp_path: Path) -> None:
    r = resolver(tmp_path)
    assert r.resolve("pgbouncer").pooler == "transaction"
    assert r.resolve("postgres").pooler is None


@pytest.mark.parametrize(
    ("name", "kind", "managed"),
    [("sqlite", "sqlite", "sqlite-file"), ("postgres-embedded", "postgresql", "embedded-postgres")],
)
def test_managed_targets_need_no_url(tmp_path: Path, name: str, kind: str, managed: str) -> None:
    t = resolver(tmp_path).resolve(name)
    assert (t.kind, t.managed) == (kind, managed)


@pytest.mark.parametrize("name", ["mysql", "cockroach", "neon"])
def test_env_only_targets_without_env_are_a_usage_error_naming_the_variable(tmp_path: Path, name: str) -> None:
    with pytest.raises(UsageError) as err:
        resolver(tmp_path).resolve(name)
    assert env_var(name) in str(err.value)
    assert name in str(err.value)


def test_env_var_names() -> None:
    assert env_var("postgres") == "DBMATRIX_POSTGRES_URL"
    assert env_var("postgres-replica") == "DBMATRIX_POSTGRES_REPLICA_URL"
    assert env_var("postgres-embedded") == "DBMATRIX_POSTGRES_EMBEDDED_URL"


# --- env override ----------------------------------------------------------------------------------------------


def test_env_overrides_builtin_default(tmp_path: Path) -> None:
    env = {"DBMATRIX_POSTGRES_URL": "postgresql://app@db.example:6000/appdb"}
    t = resolver(tmp_path, env).resolve("postgres")
    assert (t.url.host, t.url.port, t.url.database, t.url.username) == ("db.example", 6000, "appdb", "app")


def test_env_override_with_hyphenated_name(tmp_path: Path) -> None:
    env = {"DBMATRIX_POSTGRES_REPLICA_URL": "postgresql://postgres@standby:5444/postgres"}
    t = resolver(tmp_path, env).resolve("postgres-replica")
    assert (t.url.host, t.url.port) == ("standby", 5444)


def test_env_makes_an_env_only_target_resolvable(tmp_path: Path) -> None:
    env = {
        "DBMATRIX_MYSQL_URL": "mysql://root@mysql8:3307/test",
        "DBMATRIX_COCKROACH_URL": "cockroachdb://root@crdb:26257/defaultdb",
    }
    r = resolver(tmp_path, env)
    assert r.resolve("mysql").kind == "mysql"
    assert r.resolve("cockroach").kind == "cockroachdb"


def test_env_defines_a_url_for_a_target_named_on_the_command_line(tmp_path: Path) -> None:
    env = {"DBMATRIX_STAGING_DB_URL": "postgresql://u@staging:5432/app"}
    [t] = resolver(tmp_path, env).select(["staging-db"], [])
    assert (t.kind, t.url.host) == ("postgresql", "staging")


def test_resolver_reads_os_environ_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBMATRIX_NEON_URL", "postgresql://u@ep-x.neon.tech/db")
    assert TargetResolver(cwd=tmp_path).resolve("neon").url.host == "ep-x.neon.tech"


# --- config files ----------------------------------------------------------------------------------------------

PYPROJECT = """
[project]
name = "someapp"

[tool.dbmatrix.targets]
staging = "postgresql://app@staging.internal:5432/app"
pooled = { url = "postgresql://app@pooler.internal:6543/app", pooler = "transaction" }
mariadb = "mysql://root@maria.internal:3306/test"
"""


def test_pyproject_targets(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", PYPROJECT)
    r = resolver(tmp_path)
    assert r.configured_names() == ["staging", "pooled", "mariadb"]
    staging, pooled, maria = (r.resolve(n) for n in ("staging", "pooled", "mariadb"))
    assert (staging.kind, staging.url.host, staging.pooler) == ("postgresql", "staging.internal", None)
    assert (pooled.kind, pooled.url.port, pooled.pooler) == ("postgresql", 6543, "transaction")
    assert (maria.kind, maria.url.host) == ("mysql", "maria.internal")
    assert {"staging", "pooled"} <= set(r.known_names())


def test_dbmatrix_toml_targets(tmp_path: Path) -> None:
    write(
        tmp_path / "dbmatrix.toml",
        '[targets]\nlocal = "sqlite:///x.db"\n'
        'crdb = { url = "cockroachdb://root@crdb:26257/defaultdb" }\n'
        'pgbouncer = { url = "postgresql://postgres@bouncer:6432/postgres", pooler = "session" }\n',
    )
    r = resolver(tmp_path)
    assert r.resolve("local").kind == "sqlite"
    assert r.resolve("crdb").kind == "cockroachdb"
    bouncer = r.resolve("pgbouncer")
    assert (bouncer.url.host, bouncer.pooler) == ("bouncer", "session")


def test_pyproject_without_dbmatrix_section_configures_nothing(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", '[project]\nname = "x"\n\n[tool.ruff]\nline-length = 100\n')
    assert load_file_config(tmp_path) == {}
    assert resolver(tmp_path).configured_names() == []


@pytest.mark.parametrize(
    ("filename", "header"), [("pyproject.toml", "[tool.dbmatrix.targets]"), ("dbmatrix.toml", "[targets]")]
)
def test_unknown_key_in_a_table_entry_is_refused(tmp_path: Path, filename: str, header: str) -> None:
    path = write(tmp_path / filename, f'{header}\nstaging = {{ url = "postgresql://u@h/db", poolr = "transaction" }}\n')
    with pytest.raises(UsageError) as err:
        resolver(tmp_path)
    msg = str(err.value)
    assert "poolr" in msg and "staging" in msg and str(path) in msg and "did you mean 'pooler'" in msg


@pytest.mark.parametrize(
    "entry",
    [
        'staging = { pooler = "transaction" }',
        "staging = 5",
        "staging = { url = 5 }",
        'staging = ["postgresql://u@h/db"]',
    ],
)
def test_entry_without_a_url_string_is_refused(tmp_path: Path, entry: str) -> None:
    write(tmp_path / "dbmatrix.toml", f"[targets]\n{entry}\n")
    with pytest.raises(UsageError, match="staging"):
        resolver(tmp_path)


def test_unparseable_config_file_is_a_usage_error(tmp_path: Path) -> None:
    path = write(tmp_path / "dbmatrix.toml", "[targets\nstaging = \n")
    with pytest.raises(UsageError) as err:
        resolver(tmp_path)
    assert str(path) in str(err.value)


def test_file_target_with_wrong_kind_for_a_builtin_name_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "dbmatrix.toml", '[targets]\nmariadb = "postgresql://postgres@h:5432/postgres"\n')
    with pytest.raises(UsageError, match="mariadb"):
        resolver(tmp_path).resolve("mariadb")


# --- precedence: file < env < --target NAME=URL ------------------------------------------------------------------


def test_precedence_file_env_option(tmp_path: Path) -> None:
    write(tmp_path / "dbmatrix.toml", '[targets]\npostgres = "postgresql://postgres@from-file:5432/postgres"\n')
    env = {"DBMATRIX_POSTGRES_URL": "postgresql://postgres@from-env:5432/postgres"}

    assert resolver(tmp_path).resolve("postgres").url.host == "from-file"
    assert resolver(tmp_path, env).resolve("postgres").url.host == "from-env"
    [t] = resolver(tmp_path, env).select(["postgres=postgresql://postgres@from-option:5432/postgres"], [])
    assert t.url.host == "from-option"
    # and a builtin default is the weakest of all
    assert resolver(tmp_path / "nonexistent").resolve("postgres").url.host == "127.0.0.1"


def test_file_beats_builtin_default(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", '[tool.dbmatrix.targets]\nmariadb = "mysql://root@from-file:3306/test"\n')
    assert resolver(tmp_path).resolve("mariadb").url.host == "from-file"


# --- --target / --require ----------------------------------------------------------------------------------------


def test_unknown_target_name_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as err:
        resolver(tmp_path).select(["no-such-target"], [])
    msg = str(err.value)
    assert "no-such-target" in msg
    assert "postgres" in msg  # lists the known names


@pytest.mark.parametrize("value", ["", "=postgresql://u@h/db", "  =x"])
def test_target_option_without_a_name_is_a_usage_error(value: str) -> None:
    with pytest.raises(UsageError):
        parse_target_option(value)


def test_parse_target_option() -> None:
    assert parse_target_option("postgres") == ("postgres", None)
    assert parse_target_option("pg=postgresql://u@h/db?x=1") == ("pg", "postgresql://u@h/db?x=1")


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("postgresql://u@h:5432/db", "postgresql"),
        ("postgres://u@h/db", "postgresql"),
        ("postgresql+asyncpg://u@h/db", "postgresql"),
        ("mysql://root@h:3306/test", "mysql"),
        ("mysql+pymysql://root@h/test", "mysql"),
        ("mariadb://root@h/test", "mysql"),
        ("cockroachdb://root@h:26257/defaultdb", "cockroachdb"),
        ("sqlite:///some/file.db", "sqlite"),
    ],
)
def test_new_target_takes_its_kind_from_the_scheme(tmp_path: Path, url: str, kind: str) -> None:
    [t] = resolver(tmp_path).select([f"new={url}"], [])
    assert (t.name, t.kind, t.managed) == ("new", kind, None)
    assert kind_of(t.url) == kind


def test_driver_part_of_the_scheme_is_dropped(tmp_path: Path) -> None:
    pg, pg2 = resolver(tmp_path).select(["pg=postgresql+asyncpg://u@h/db", "pg2=postgres://u@h/db"], [])
    assert pg.url.drivername == pg2.url.drivername == "postgresql"
    assert parse_url("postgres://u@h/db", target="x").drivername == "postgresql"
    assert parse_url("mysql+pymysql://u@h/db", target="x").drivername == "mysql"


def test_unknown_scheme_is_a_usage_error_without_the_password(tmp_path: Path) -> None:
    pw = secret()
    with pytest.raises(UsageError) as err:
        resolver(tmp_path).select([f"ora=oracle://scott:{pw}@h:1521/orcl"], [])
    assert "oracle" in str(err.value)
    assert pw not in str(err.value)


@pytest.mark.parametrize(
    "template",
    [
        "postgresql://postgres:{pw}@127.0.0.1:notaport/postgres",  # bad port
        "postgresql://postgres:{pw}@/postgres",  # no host
        "mysql://root:{pw}@[::1/test",  # broken IPv6 literal
        "postgresql://postgres:Zq9/{pw}@127.0.0.1:notaport/postgres",  # unquoted '/' in the password
        "postgresql://postgres:Zq9 {pw}@127.0.0.1:notaport/postgres",  # a space in the password
    ],
)
def test_malformed_url_is_a_usage_error_without_the_password(tmp_path: Path, template: str) -> None:
    pw = secret()
    with pytest.raises(UsageError) as err:
        resolver(tmp_path).select([f"postgres={template.format(pw=pw)}"], [])
    msg = str(err.value)
    assert "malformed URL" in msg and "postgres" in msg
    assert pw not in msg


def test_unquoted_at_sign_in_password_does_not_leak_its_tail(tmp_path: Path) -> None:
    """'p@ss' written unquoted: either refuse the URL or mask the whole password, never print 'ss'."""
    tail = secret()
    text = f"postgresql://postgres:{secret()}@{tail}@127.0.0.1:5432/postgres"
    try:
        [t] = resolver(tmp_path).select([f"postgres={text}"], [])
    except UsageError as exc:
        assert tail not in str(exc)
    else:
        assert tail not in redact(t.url)
        assert tail not in t.record().to_dict()["url"]


@pytest.mark.parametrize(
    ("name", "url"),
    [
        ("mariadb", "postgresql://postgres@127.0.0.1:5432/postgres"),
        ("postgres", "mysql://root@127.0.0.1:3306/test"),
        ("pgbouncer", "sqlite:///x.db"),
        ("sqlite", "postgresql://postgres@127.0.0.1:5432/postgres"),
    ],
)
def test_kind_mismatch_is_a_usage_error(tmp_path: Path, name: str, url: str) -> None:
    with pytest.raises(UsageError) as err:
        resolver(tmp_path).select([f"{name}={url}"], [])
    assert name in str(err.value)


def test_kind_mismatch_from_env_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="mariadb"):
        resolver(tmp_path, {"DBMATRIX_MARIADB_URL": "postgresql://u@h/db"}).resolve("mariadb")


def test_cockroach_url_is_accepted_for_a_postgresql_builtin(tmp_path: Path) -> None:
    [t] = resolver(tmp_path).select(["postgres=cockroachdb://root@h:26257/defaultdb"], [])
    assert t.kind == "cockroachdb"


def test_require_adds_targets_not_named(tmp_path: Path) -> None:
    targets = resolver(tmp_path).select(["sqlite"], parse_require(["postgres,mariadb"]))
    assert names(targets) == ["sqlite", "postgres", "mariadb"]


def test_require_keeps_the_url_of_a_named_target(tmp_path: Path) -> None:
    targets = resolver(tmp_path).select(["postgres=postgresql://postgres@elsewhere:5432/postgres"], ["postgres"])
    assert names(targets) == ["postgres"]
    assert targets[0].url.host == "elsewhere"


def test_require_of_an_unknown_name_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="nosuch"):
        resolver(tmp_path).select(["sqlite"], ["nosuch"])


def test_parse_require() -> None:
    assert parse_require(["sqlite,postgres", " mariadb , ", "pgbouncer"]) == [
        "sqlite",
        "postgres",
        "mariadb",
        "pgbouncer",
    ]
    assert parse_require([]) == []


def test_duplicate_target_options_keep_the_last_url(tmp_path: Path) -> None:
    targets = resolver(tmp_path).select(
        ["postgres=postgresql://postgres@first:5432/postgres", "postgres=postgresql://postgres@second:5432/postgres"],
        [],
    )
    assert names(targets) == ["postgres"]
    assert targets[0].url.host == "second"


# --- default selection -----------------------------------------------------------------------------------------


def test_default_selection_is_the_embedded_targets(tmp_path: Path) -> None:
    targets = resolver(tmp_path).select([], [])
    assert names(targets) == ["sqlite", "postgres-embedded"]
    assert [(t.name, t.status) for t in targets if not t.configured] == [("cockroach", "skipped"), ("neon", "skipped")]


def test_default_selection_adds_configured_targets(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", PYPROJECT)
    env = {"DBMATRIX_MYSQL_URL": "mysql://root@mysql8:3306/test", "UNRELATED": "x"}
    got = names(resolver(tmp_path, env).select([], []))
    assert got[:2] == ["sqlite", "postgres-embedded"]
    assert sorted(got[2:]) == sorted(["staging", "pooled", "mariadb", "mysql"])
    assert len(got) == len(set(got))


def test_explicit_target_replaces_the_default_selection(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", PYPROJECT)
    assert names(resolver(tmp_path).select(["postgres"], [])) == ["postgres"]


def test_default_selection_with_require(tmp_path: Path) -> None:
    assert names(resolver(tmp_path).select([], ["postgres"])) == ["sqlite", "postgres-embedded", "postgres"]


# --- redaction of URLs -----------------------------------------------------------------------------------------


def test_redact_masks_a_password() -> None:
    pw = secret()
    url = parse_url(f"postgresql://app:{pw}@db:5432/app", target="x")
    assert redact(url) == "postgresql://app:***@db:5432/app"
    assert url.password == pw  # the URL itself keeps it, for connecting


def test_redact_masks_a_url_quoted_password() -> None:
    raw = f"p@ss/w:rd {secret()}"
    quoted = raw.replace("%", "%25").replace("@", "%40").replace("/", "%2F").replace(":", "%3A").replace(" ", "%20")
    url = parse_url(f"postgresql://app:{quoted}@db/app", target="x")
    assert url.password == raw
    out = redact(url)
    assert out == "postgresql://app:***@db/app"
    assert raw.split()[-1] not in out and quoted not in out


def test_redact_text_masks_an_unregistered_password() -> None:
    pw = secret()
    assert redact(f"mysql://root:{pw}@h:3306/test") == "mysql://root:***@h:3306/test"


def test_redact_without_password_is_unchanged() -> None:
    assert (
        redact(make_url("postgresql://postgres@127.0.0.1:5432/postgres"))
        == "postgresql://postgres@127.0.0.1:5432/postgres"
    )


def test_target_record_url_is_redacted(tmp_path: Path) -> None:
    pw = secret()
    [t] = resolver(tmp_path).select([f"postgres=postgresql://postgres:{pw}@h:5432/postgres"], [])
    record = t.record().to_dict()
    assert pw not in str(record)
    assert record["url"] == "postgresql://postgres:***@h:5432/postgres"


@pytest.mark.parametrize(
    ("filename", "text", "key", "near"),
    [
        ("pyproject.toml", '[tool.dbmatrix.target]\nstaging = "postgresql://u@h/db"\n', "target", "targets"),
        ("pyproject.toml", '[tool.dbmatrix]\ntargest = {}\n', "targest", "targets"),
        ("pyproject.toml", '[tool.dbmatrix]\nverbose = true\n', "verbose", None),
        ("dbmatrix.toml", '[target]\nstaging = "postgresql://u@h/db"\n', "target", "targets"),
        ("dbmatrix.toml", 'targets = {}\nschema = 1\n', "schema", None),
    ],
)
def test_an_unknown_section_or_key_is_refused_naming_the_nearest_valid_one(
        tmp_path: Path, filename: str, text: str, key: str, near: str | None) -> None:
    """A typo such as ``[tool.dbmatrix.target]`` used to be ignored: the run silently used the defaults."""
    path = write(tmp_path / filename, text)
    with pytest.raises(UsageError) as err:
        resolver(tmp_path)
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg and repr(key) in msg
    assert (f"did you mean {near!r}?" in msg) if near else "valid: targets" in msg


def test_a_config_typo_is_one_line_and_exit_2_on_the_command_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    write(tmp_path / "pyproject.toml", '[tool.dbmatrix.target]\nstaging = "postgresql://u@h/db"\n')
    proc = subprocess.run([sys.executable, "-c", "import sys; from dbmatrix.cli import main; sys.exit(main())",
                           "targets"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "did you mean 'targets'?" in proc.stderr, proc.stderr
