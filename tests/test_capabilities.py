"""Capability profiles: version parsing, version gates, and the wording of an ``unsupported`` cell."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import make_url

from dbmatrix.targets.capabilities import CAPABILITIES, PROFILES, parse_version, profile, why_missing
from dbmatrix.targets.model import Target


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ("10.11.19-MariaDB-0+deb12u1", (10, 11, 19)),
        ("15.19 (Debian 15.19-1.pgdg120+1)", (15, 19)),
        ("16.4 (Ubuntu 16.4-1.pgdg22.04+1)", (16, 4)),
        ("v24.1.0", (24, 1, 0)),
        ("8.0.36", (8, 0, 36)),
        ("8.0.36-0ubuntu0.22.04.1", (8, 0, 36)),
        ("3.40.1", (3, 40, 1)),
        ("15.20", (15, 20)),
        ("18beta1", (18,)),
        ("17devel", (17,)),
        ("", ()),
        (None, ()),
    ],
)
def test_parse_version(text: str | None, version: tuple[int, ...]) -> None:
    assert parse_version(text) == version


def test_mariadb_skip_locked_gate() -> None:
    assert "skip_locked" not in profile("mariadb", (10, 4))
    assert "skip_locked" not in profile("mariadb", (10, 5, 99))
    assert "skip_locked" in profile("mariadb", (10, 6))
    assert "skip_locked" in profile("mariadb", (10, 6, 0))
    assert "skip_locked" in profile("mariadb", parse_version("10.11.19-MariaDB-0+deb12u1"))


def test_mariadb_returning_insert_gate_but_never_returning_update() -> None:
    assert "returning_insert" not in profile("mariadb", (10, 4))
    assert "returning_insert" in profile("mariadb", (10, 5))
    assert "returning_update" not in profile("mariadb", (11, 4))


def test_ungated_capabilities_hold_at_every_version() -> None:
    assert "for_update" in profile("mariadb", ())
    assert "transactional_ddl" in profile("postgresql", ())
    assert "transactional_ddl" not in profile("mysql", (8, 4))


def test_postgresql_json_path_gate() -> None:
    assert "json_path" not in profile("postgresql", (11, 22))
    assert "json_path" in profile("postgresql", (12,))
    assert "json_path" in profile("postgresql", parse_version("15.19 (Debian 15.19-1.pgdg120+1)"))


def test_sqlite_returning_gate() -> None:
    assert "returning_update" not in profile("sqlite", (3, 34, 1))
    assert "returning_update" in profile("sqlite", (3, 35))


def test_unknown_engine_assumes_nothing() -> None:
    assert profile("oracle", (23,)) == frozenset()


def test_every_gate_names_a_documented_capability_once() -> None:
    for engine, gates in PROFILES.items():
        named = [g.name for g in gates]
        assert set(named) <= set(CAPABILITIES), (engine, set(named) - set(CAPABILITIES))
        assert len(named) == len(set(named)), (engine, named)


def test_every_capability_is_documented_in_one_line() -> None:
    for name, text in CAPABILITIES.items():
        assert name.isidentifier() and text.strip() and "\n" not in text, name


def test_why_missing_with_a_version_gate() -> None:
    assert why_missing("skip_locked", "mariadb", (10, 4)) == (
        "mariadb 10.4 lacks SELECT ... FOR UPDATE SKIP LOCKED (needs 10.6+)"
    )


def test_why_missing_without_a_gate() -> None:
    assert why_missing("listen_notify", "mariadb", (10, 11, 19)) == "mariadb 10.11.19 lacks LISTEN / NOTIFY"


def test_why_missing_with_unknown_version() -> None:
    assert why_missing("arrays", "mysql", ()) == "mysql ? lacks SQL array columns and operators (@>, &&, = ANY)"


def test_unknown_capability_raises() -> None:
    with pytest.raises(KeyError, match="skip_lockd"):
        why_missing("skip_lockd", "mariadb", (10, 4))


def _target(engine: str, version: str, kind: str = "mysql") -> Target:
    return Target("t", kind, make_url("mysql://root@h/test"), engine=engine, server_version=version)


def test_target_uses_its_detected_engine_and_version() -> None:
    old = _target("mariadb", "10.4.34-MariaDB")
    new = _target("mariadb", "10.11.19-MariaDB-0+deb12u1")
    assert old.version == (10, 4, 34)
    assert old.missing("skip_locked") == "mariadb 10.4.34 lacks SELECT ... FOR UPDATE SKIP LOCKED (needs 10.6+)"
    assert new.missing("skip_locked") is None
    assert "skip_locked" in new.capabilities


def test_target_without_engine_falls_back_to_its_kind() -> None:
    t = _target("", "8.0.36")
    assert t.capabilities == profile("mysql", (8, 0, 36))


def test_target_missing_unknown_capability_raises() -> None:
    with pytest.raises(KeyError):
        _target("mariadb", "10.11.19-MariaDB").missing("no_such_capability")
