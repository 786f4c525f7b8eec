"""A distinctive password through every command, ``-v``, tracebacks (with function arguments and locals), junit
XML and every file a run writes: it appears nowhere. Short or common passwords (``1``, ``postgres``) are masked
where they sit without corrupting documents or names.

Live: MariaDB gets a login role with a password for the duration of the module (dropped afterwards);
PostgreSQL on 5432 runs with trust authentication, so any password is accepted and travels through every driver.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest

from dbmatrix.drivers import registry

REPO = Path(__file__).resolve().parents[1]
CASES = REPO / "cases"
DBMATRIX = Path(sys.executable).parent / "dbmatrix"
PW = "Lk9vQ2xSekr3t"
ROLE = "dbmatrix_leaky"
# program_name is a pymysql option that mysqlclient refuses with a TypeError: a driver traceback whose frames
# hold connect(**kwargs) with the password
LEAKY_MARIADB = f"mariadb=mysql://{ROLE}:{PW}@127.0.0.1:3306/?program_name=x"


def run(args: list[str | Path], cwd: Path, exe: Path = DBMATRIX, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([str(exe), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def assert_nowhere(pw: str, *texts: str) -> None:
    for i, text in enumerate(texts):
        assert pw not in text, f"password leaked into output #{i}: ...{text[max(0, text.find(pw) - 200):][:400]}"


def files_text(directory: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted(directory.rglob("*")) if p.is_file())


@pytest.fixture(scope="module")
def leaky_role() -> Iterator[str]:
    root = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True)
    with root.cursor() as cur:
        for host in ("%", "localhost"):
            cur.execute(f"CREATE USER IF NOT EXISTS '{ROLE}'@'{host}' IDENTIFIED BY '{PW}'")
            cur.execute(f"GRANT ALL ON `dbmatrix\\_%`.* TO '{ROLE}'@'{host}'")
    try:
        yield ROLE
    finally:
        with root.cursor() as cur:
            for host in ("%", "localhost"):
                cur.execute(f"DROP USER IF EXISTS '{ROLE}'@'{host}'")
        root.close()


def test_driver_tracebacks_and_junit_xml_hold_no_password(leaky_role: str, tmp_path: Path) -> None:
    out, junit = tmp_path / "out", tmp_path / "junit.xml"
    proc = run(["-m", "pytest", CASES, "-v", "-l", "-rA", "-p", "no:cacheprovider", "--target", LEAKY_MARIADB,
                "--driver", "mysqlclient,pymysql", "--case", "sql.cte_plain", "--junitxml", junit,
                "-o", "junit_logging=all", "--dbm-out", out], cwd=tmp_path, exe=Path(sys.executable))
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr  # mysqlclient refuses program_name: an error
    assert "program_name" in proc.stdout and "'password': ***" in proc.stdout  # the traceback is there, masked
    assert_nowhere(PW, proc.stdout, proc.stderr, junit.read_text(), files_text(out))
    doc = json.loads((out / "latest" / "results.json").read_text())
    ran = {(c["driver"], c["outcome"]) for c in doc["results"]}
    # pymysql answers the case (MariaDB's Decimal SUM is a finding on it); mysqlclient refuses the URL option
    assert ("pymysql", "supported") in ran and ("mysqlclient", "error") in ran, ran


def test_every_command_keeps_the_password_out(leaky_role: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = run(["run", "-v", "--target", LEAKY_MARIADB, "--driver", "mysqlclient,pymysql", "--case",
                "sql.cte_plain", "--out", out], cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr
    outputs = [proc.stdout, proc.stderr, files_text(out)]
    for args in (["targets", "--target", LEAKY_MARIADB], ["clean", "--dry-run", "--target", LEAKY_MARIADB],
                 ["report", out / "latest" / "results.json", "--out", tmp_path / "again"],
                 ["diff", out / "latest" / "results.json", out / "latest" / "results.json"],
                 ["run", "--target", f"x=postgresql://leaky:{PW}/postgres"],
                 ["run", "--target", f"x=postgresql://u:{PW}@ss:w@127.0.0.1/d"],
                 ["targets", "--target", f"down=mysql://{ROLE}:{PW}@127.0.0.1:1/test"],
                 ["run", "--target", f"down=mysql://{ROLE}:{PW}@127.0.0.1:1/test", "--case", "sql.cte_plain"]):
        p = run(args, cwd=tmp_path)
        assert "Traceback" not in p.stdout + p.stderr, (args, p.stderr)
        outputs += [p.stdout, p.stderr]
    outputs.append(files_text(tmp_path / "again"))
    assert_nowhere(PW, *outputs)
    wrong = run(["run", "--target", f"mariadb=mysql://{ROLE}:not{PW}@127.0.0.1:3306/", "--case", "sql.cte_plain"],
                cwd=tmp_path)
    assert wrong.returncode == 2 and "refuses the login" in wrong.stderr, wrong.stderr
    assert_nowhere(PW, wrong.stdout, wrong.stderr)


@pytest.mark.parametrize("password", ["1", "postgres"])
def test_short_and_common_passwords_corrupt_nothing(password: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = run(["run", "--target", f"postgres=postgresql://postgres:{password}@127.0.0.1:5432/postgres",
                "--driver", "psycopg,asyncpg", "--case", "types.int_limits", "--out", out], cwd=tmp_path)
    assert proc.returncode in (0, 1), proc.stderr
    assert "cells" in proc.stdout, proc.stdout  # the summary printed
    doc = json.loads((out / "latest" / "results.json").read_text())  # still valid JSON
    assert doc["schema"] == "dbmatrix/results/v1"
    (target,) = doc["targets"]
    assert (target["name"], target["kind"]) == ("postgres", "postgresql")
    assert target["url"] == "postgresql://postgres:***@127.0.0.1:5432/postgres"
    assert {c["target"] for c in doc["results"]} == {"postgres"}
    assert all(c["outcome"] != "error" for c in doc["results"]), doc["results"]
    assert f":{password}@" not in proc.stdout + proc.stderr + files_text(out)


UNICODE_ROLE = "dbmatrix_unicode_pw"
UNICODE_PW = "Pä€ss字wörd9"  # characters outside Latin-1: PyMySQL and asyncmy used to encode a str as Latin-1


@pytest.fixture(scope="module")
def unicode_role() -> Iterator[str]:
    root = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True,
                           charset="utf8mb4")
    with root.cursor() as cur:
        for host in ("%", "localhost"):
            cur.execute(f"CREATE USER IF NOT EXISTS '{UNICODE_ROLE}'@'{host}' IDENTIFIED BY '{UNICODE_PW}'")
            cur.execute(f"GRANT ALL ON `dbmatrix\\_%`.* TO '{UNICODE_ROLE}'@'{host}'")
    try:
        yield UNICODE_ROLE
    finally:
        with root.cursor() as cur:
            for host in ("%", "localhost"):
                cur.execute(f"DROP USER IF EXISTS '{UNICODE_ROLE}'@'{host}'")
        root.close()


def test_a_password_with_non_latin1_characters_works_with_every_mysql_driver(unicode_role: str,
                                                                           tmp_path: Path) -> None:
    """Before: refused as "wrong user or password", and the driver's encoding error quoted a character of the
    password and its position."""
    from urllib.parse import quote

    out = tmp_path / "out"
    target = f"mariadb=mysql://{unicode_role}:{quote(UNICODE_PW, safe='')}@127.0.0.1:3306/"
    mysql_drivers = sorted(d for d, cls in registry().drivers.items() if "mysql" in cls.kinds)
    assert len(mysql_drivers) >= 3, mysql_drivers
    proc = run(["run", "--target", target, "--driver", ",".join(mysql_drivers), "--case", "types.int_limits",
                "--out", out], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
    doc = json.loads((out / "latest" / "results.json").read_text())
    assert {(c["driver"], c["outcome"]) for c in doc["results"]} == {
        (d, "supported") for d in mysql_drivers}, doc["results"]
    assert_nowhere(UNICODE_PW, proc.stdout, proc.stderr, files_text(out))
    wrong_pw = quote("Wr€ng字pw", safe="")
    wrong = run(["targets", "--target", f"mariadb=mysql://{unicode_role}:{wrong_pw}@127.0.0.1:3306/"], cwd=tmp_path)
    said = wrong.stdout + wrong.stderr
    assert "refuses the login" in said and "Traceback" not in said, said
    assert not any(ch in said for ch in "€字") and "position" not in said, said  # nothing of the password
