"""Bad input, as a hostile-but-fair user would type it: every one is refused with one line and exit 2, no
traceback, no password echoed, nothing written. Runs ``dbmatrix.cli.main`` in-process (fast); the refusals
happen before any server is contacted."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from dbmatrix.cli import main

PW = "Zq7leakyPW"  # distinctive: must appear in no message


def refuse(argv: list[str], capsys: pytest.CaptureFixture[str], *, contains: str = "") -> str:
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2, (argv, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("dbmatrix: error: "), lines
    assert "Traceback" not in out + err
    assert PW not in out + err
    assert contains in lines[0], lines[0]
    return lines[0]


# --- configuration files -------------------------------------------------------------------------------------

BAD_PYPROJECTS: dict[str, tuple[bytes, str]] = {
    "targets-string": (b'[tool.dbmatrix]\ntargets = "x"\n', "must be a table"),
    "targets-list": (b"[tool.dbmatrix]\ntargets = [1, 2]\n", "must be a table"),
    "tool-dbmatrix-number": (b"[tool]\ndbmatrix = 3\n", "must be a table"),
    "non-utf8": (b'[tool.dbmatrix.targets]\npg = "postgresql://h/\xff"\n', "not UTF-8"),
    "invalid-toml": (b"[tool.dbmatrix.targets\n", "cannot read"),
    "pooler-number": (b'[tool.dbmatrix.targets]\np = { url = "postgresql://h/db", pooler = 5 }\n', "pooler"),
    "pooler-nonsense": (b'[tool.dbmatrix.targets]\np = { url = "postgresql://h/db", pooler = "nonsense" }\n',
                        "pooler"),
    "port-99999": (b'[tool.dbmatrix.targets]\np = "postgresql://u@h:99999/db"\n', "port is not in 1-65535"),
    "url-number": (b"[tool.dbmatrix.targets]\np = 5\n", "url string"),
    "url-missing": (b'[tool.dbmatrix.targets]\np = { pooler = "transaction" }\n', "url string"),
    "unknown-key": (b'[tool.dbmatrix.targets]\np = { url = "postgresql://h/db", colour = "red" }\n', "unknown"),
    "bad-name": (b'[tool.dbmatrix.targets]\n"a b" = "postgresql://h/db"\n', "name"),
    "password-in-malformed-url": (f'[tool.dbmatrix.targets]\np = "postgresql://leaky:{PW}/postgres"\n'.encode(),
                                  "malformed URL"),
}


@pytest.mark.parametrize("name", sorted(BAD_PYPROJECTS))
def test_bad_pyproject_is_one_line(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    body, contains = BAD_PYPROJECTS[name]
    (tmp_path / "pyproject.toml").write_bytes(body)
    monkeypatch.chdir(tmp_path)
    for argv in (["run", "--out", str(tmp_path / "out")], ["targets"]):
        refuse(argv, capsys, contains=contains)
    assert not (tmp_path / "out").exists()


def test_bad_dbmatrix_toml_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "dbmatrix.toml").write_text('targets = "x"\n')
    monkeypatch.chdir(tmp_path)
    refuse(["targets"], capsys, contains="must be a table")


def test_malformed_env_url_does_not_echo_its_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DBMATRIX_POSTGRES_URL", f"postgresql://leaky:{PW}/postgres")
    refuse(["run", "--target", "postgres", "--out", str(tmp_path / "o")], capsys, contains="malformed URL")


# --- command line --------------------------------------------------------------------------------------------

BAD_TARGETS = {
    "password-as-port": (f"postgres=postgresql://leaky:{PW}/postgres", "malformed URL"),
    "unquoted-at-and-colon": (f"x=postgresql://u:{PW}@ss:w@127.0.0.1/d", "malformed URL"),
    "unquoted-at": (f"x=postgresql://u:{PW}@ss@127.0.0.1/d", "%40"),
    "port-out-of-range": (f"x=postgresql://u:{PW}@127.0.0.1:99999/d", "port is not in"),
    "port-zero": (f"x=mysql://u:{PW}@127.0.0.1:0/d", "port is not in"),
    "numeric-password-as-port": ("x=postgresql://leaky:77777777/postgres", "port is not in"),
    "unknown-scheme": (f"x=oracle://u:{PW}@127.0.0.1/d", "unknown scheme"),
    "no-host": (f"x=postgresql://u:{PW}@/d", "no host"),
    "no-name": (f"=postgresql://u:{PW}@127.0.0.1/d", "NAME"),
    "empty-url": ("x=", "URL"),
    "not-a-url": (f"x={PW}", "malformed URL"),
    "unknown-name": ("nosuchtarget", "unknown target"),
    "bad-name": ("a b=postgresql://h/d", "name"),
    "kind-mismatch": ("mariadb=postgresql://127.0.0.1/d", "mysql target"),
    "ipv6-unclosed": (f"x=postgresql://u:{PW}@[::1/d", "malformed URL"),
}


@pytest.mark.parametrize("name", sorted(BAD_TARGETS))
def test_bad_target_option_is_one_line(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    value, contains = BAD_TARGETS[name]
    monkeypatch.chdir(tmp_path)
    for cmd in ("run", "targets", "clean"):
        refuse([cmd, "--target", value], capsys, contains=contains)
    assert not (tmp_path / "dbmatrix-out").exists()


BAD_RUN_OPTIONS = {
    "unknown-driver": (["--target", "sqlite", "--driver", "nope"], "nope"),
    "driver-matches-no-target": (["--target", "postgres", "--driver", "pymysql"], "--driver pymysql"),
    "unknown-required": (["--require", "nosuch"], "unknown target"),
    "unknown-option": (["--frobnicate"], "unrecognized"),
}


@pytest.mark.parametrize("name", sorted(BAD_RUN_OPTIONS))
def test_bad_run_option_is_one_line(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    argv, contains = BAD_RUN_OPTIONS[name]
    monkeypatch.chdir(tmp_path)
    refuse(["run", *argv, "--out", str(tmp_path / "o")], capsys, contains=contains)
    assert not (tmp_path / "o").exists()


def test_out_on_an_existing_file_is_refused_before_running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    f = tmp_path / "taken"
    f.write_text("keep me\n")
    refuse(["run", "--target", "sqlite", "--out", str(f)], capsys, contains="not a directory")
    refuse(["run", "--target", "sqlite", "--out", str(f / "sub")], capsys, contains="not a directory")
    assert f.read_text() == "keep me\n"
    assert not list(Path(os.environ.get("TMPDIR", "/tmp")).glob(f"dbmatrix_*_{os.getpid()}"))


def test_out_in_a_read_only_place_is_refused_before_running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """/proc refuses new files even to root, so this holds whoever runs the tests."""
    monkeypatch.chdir(tmp_path)
    refuse(["run", "--target", "sqlite", "--out", "/proc/dbmatrix-out"], capsys, contains="cannot write")


# --- results documents ---------------------------------------------------------------------------------------

def valid_doc() -> dict:
    return {
        "schema": "dbmatrix/results/v1",
        "run": {"id": "r1", "started": "2026-01-01T00:00:00+00:00", "finished": None, "complete": True,
                "dbmatrix": "0.1.0", "python": "3.11.7", "host": {"cpus": 2}},
        "targets": [{"name": "sqlite", "kind": "sqlite", "server_version": "3.40", "url": "sqlite://",
                     "status": "ok", "reason": None}],
        "results": [{"case": "types.int_limits", "target": "sqlite", "driver": "sqlite3", "params": {},
                     "outcome": "supported", "mechanism": None, "detail": None, "expected": "supported",
                     "verdict": "as-expected", "metrics": {"wall_ms": 1.0}}],
    }


def mutated(path: list[str | int], value: object) -> dict:
    doc = valid_doc()
    node: object = doc
    for key in path[:-1]:
        node = node[key]  # type: ignore[index]
    if value is DELETE:
        del node[path[-1]]  # type: ignore[attr-defined]
    else:
        node[path[-1]] = value  # type: ignore[index]
    return doc


DELETE = object()

BAD_DOCS: dict[str, tuple[bytes, str]] = {
    "results-a-string": (json.dumps(mutated(["results"], "x")).encode(), "results"),
    "cell-without-case": (json.dumps(mutated(["results", 0, "case"], DELETE)).encode(), "case"),
    "cell-a-number": (json.dumps(mutated(["results", 0], 7)).encode(), "results[0]"),
    "unknown-outcome": (json.dumps(mutated(["results", 0, "outcome"], "great")).encode(), "outcome"),
    "run-null": (json.dumps(mutated(["run"], None)).encode(), "run"),
    "only-schema": (b'{"schema": "dbmatrix/results/v1"}', "required"),
    "targets-a-string": (json.dumps(mutated(["targets"], "x")).encode(), "targets"),
    "target-name-number": (json.dumps(mutated(["targets", 0, "name"], 3)).encode(), "name"),
    "complete-a-string": (json.dumps(mutated(["run", "complete"], "yes")).encode(), "complete"),
    "wrong-schema": (json.dumps(mutated(["schema"], "other/v9")).encode(), "not a dbmatrix results"),
    "json-array": (b"[]", "not a dbmatrix results"),
    "not-json": (b"{nope", "cannot read"),
    "non-utf8": (b'{"schema": "\xff"}', "not UTF-8"),
    "empty": (b"", "cannot read"),
    "deeply-nested": (b"[" * 100000 + b"]" * 100000, "cannot read"),
}


@pytest.mark.parametrize("name", sorted(BAD_DOCS))
def test_bad_results_document_is_one_line(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body, contains = BAD_DOCS[name]
    bad = tmp_path / "bad.json"
    bad.write_bytes(body)
    good = tmp_path / "good.json"
    good.write_text(json.dumps(valid_doc()))
    for argv in (["report", str(bad)], ["diff", str(good), str(bad)], ["diff", str(bad), str(good)]):
        refuse(argv, capsys, contains=contains)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.json", "good.json"]  # nothing written


def test_report_paths_that_are_not_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    refuse(["report", str(tmp_path / "missing.json")], capsys, contains="not found")
    refuse(["report", str(tmp_path)], capsys, contains="cannot read")


def test_report_out_on_an_existing_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "results.json"
    good.write_text(json.dumps(valid_doc()))
    taken = tmp_path / "taken"
    taken.write_text("keep\n")
    refuse(["report", str(good), "--out", str(taken)], capsys, contains="not a directory")
    assert taken.read_text() == "keep\n"


def test_schema_is_permissive_for_later_optional_fields(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = valid_doc()
    cell = doc["results"][0]
    cell["findings"] = [{"revision": "3f2a", "lock": "AccessExclusiveLock", "held_ms": 812}]
    cell["artifacts"] = ["counterexamples/x.sql"]
    cell["metrics"] = {"wall_ms": 1.0, "samples": [1, 2, 3], "histogram": {"p50": 1.0}}
    cell["driver"] = None  # a cell without a driver axis
    doc["run"]["shard"] = {"index": 1, "of": 2}
    doc["targets"][0]["pooler"] = "transaction"
    doc["targets"][0]["replica_of"] = None
    path = tmp_path / "results.json"
    path.write_text(json.dumps(doc))
    assert main(["report", str(path), "--out", str(tmp_path / "r")]) == 0, capsys.readouterr()
