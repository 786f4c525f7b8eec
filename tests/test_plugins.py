"""Drivers, layers and engines from a package outside ``framework/``, found through entry points.

The package (``tests/plugins/dbm_tiny_plugin``) is "installed" the way pip leaves it: a ``*.dist-info`` directory
with an ``entry_points.txt`` on the path of a fresh interpreter, so importlib.metadata finds it like any
distribution. Its driver ``tiny`` and its layer ``audit`` (over sqlite3 and over ``tiny``) then appear in
``dbmatrix --help``, pass the session contract suite (tests/test_sessions.py runs over every registered id) and get
their own columns in a run. A plugin that collides or does not load stops every command with one line, exit 2.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_SRC = ROOT / "tests" / "plugins"
GOOD = {"dbmatrix.drivers": {"tiny": "dbm_tiny_plugin:TinyAdapter"},
        "dbmatrix.layers": {"audit": "dbm_tiny_plugin:AuditLayer"}}
ENGINE = {"dbmatrix.engines": {"tinypg": "dbm_tiny_plugin:TinyPostgres"}}


def install(site: Path, name: str, groups: dict[str, dict[str, str]]) -> Path:
    """A distribution ``name`` in ``site`` holding only entry points (what pip writes as its ``*.dist-info``)."""
    info = site / f"{name.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n", encoding="utf-8")
    lines = [line for group, eps in groups.items()
             for line in (f"[{group}]", *(f"{k} = {v}" for k, v in eps.items()), "")]
    (info / "entry_points.txt").write_text("\n".join(lines), encoding="utf-8")
    return site


def run(site: Path, *args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(PLUGIN_SRC), str(ROOT / "framework")])}
    return subprocess.run([sys.executable, *args], env=env, cwd=cwd or ROOT, capture_output=True, text=True,
                          timeout=timeout)


def dbmatrix(site: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return run(site, "-c", "import sys; from dbmatrix.cli import main; sys.exit(main())", *args, cwd=cwd)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    return install(tmp_path / "site", "dbm-tiny-plugin", GOOD)


def test_plugin_driver_and_layer_are_listed_in_help(site: Path) -> None:
    proc = dbmatrix(site, "--help")
    assert proc.returncode == 0, proc.stderr
    drivers = next(line for line in proc.stdout.splitlines() if line.startswith("drivers:"))
    assert drivers.endswith(", tiny"), drivers  # after the built-in drivers
    assert "audit+<driver> for: sqlite3, tiny" in proc.stdout  # exactly the drivers the layer can sit on
    sa_core = next(line for line in proc.stdout.splitlines() if "sa-core+<driver> for:" in line)
    assert "sqlite3" in sa_core and "tiny" not in sa_core  # SQLAlchemy has no dialect for the plugin's driver


def test_plugin_ids_pass_the_session_contract_suite(site: Path) -> None:
    """tests/test_sessions.py, unchanged, picks the plugin's ids up from the registry and passes for each."""
    proc = run(site, "-m", "pytest", "-q", "-p", "no:randomly", "-rA", str(ROOT / "tests" / "test_sessions.py"),
               "-k", "tiny or audit")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    passed = [line for line in proc.stdout.splitlines() if line.startswith("PASSED")]
    for driver_id in ("tiny", "audit+sqlite3", "audit+tiny"):
        assert any(f"[{driver_id}]" in line for line in passed), (driver_id, proc.stdout[-2000:])


def test_plugin_ids_get_their_own_columns_in_a_run(site: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = dbmatrix(site, "run", "--target", "sqlite", "--driver", "tiny,audit+sqlite3,sqlite3",
                    "--case", "types.int_limits", "--case", "types.unicode_text", "--out", str(out))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    doc = json.loads(next(out.glob("*/results.json")).read_text(encoding="utf-8"))
    cells = {(c["case"], c["driver"]): c["outcome"] for c in doc["results"]}
    for driver_id in ("tiny", "audit+sqlite3"):
        for case in ("types.int_limits", "types.unicode_text"):
            # the same answer as the built-in sqlite3 driver gives: a real run on SQLite, not a stub
            assert cells[(case, driver_id)] == cells[(case, "sqlite3")] == "supported", cells


def test_plugin_engine_is_detected_and_drives_the_sessions(tmp_path: Path) -> None:
    """An engine plugin claims the local PostgreSQL 15 from its version(); sessions of a target detected as it open
    their transactions with its SQL (BEGIN ... READ ONLY, read back from the server)."""
    site = install(tmp_path / "site", "dbm-tiny-engine", ENGINE)
    probe = (
        "from sqlalchemy.engine import make_url\n"
        "from dbmatrix.drivers import get_adapter\n"
        "from dbmatrix.drivers.base import ConnectInfo\n"
        "from dbmatrix.targets.admin import detect_server\n"
        "url = make_url('postgresql://postgres@127.0.0.1:5432/postgres')\n"
        "engine, version = detect_server('postgresql', url)\n"
        "with get_adapter('psycopg').connect(ConnectInfo(kind='postgresql', url=url, engine=engine)) as s:\n"
        "    s.begin('serializable')\n"
        "    print(engine, version, s.isolation_in_effect(), s.execute('SHOW transaction_read_only').scalar())\n"
        "    s.rollback()\n"
    )
    proc = run(site, "-c", probe)
    assert proc.returncode == 0, proc.stderr[-2000:]
    engine, version, isolation, read_only = proc.stdout.split()
    assert (engine, isolation, read_only) == ("tinypg", "serializable", "on") and version.startswith("15")
    proc = run(tmp_path / "none", "-c", probe)  # without the plugin: the built-in engine, its plain BEGIN
    assert proc.returncode == 0 and proc.stdout.split()[::3] == ["postgresql", "off"], proc.stderr[-2000:]


@pytest.mark.parametrize("groups, message", [
    ({"dbmatrix.drivers": {"sqlite3": "dbm_tiny_plugin:TinyAdapter"}},
     "plugin driver 'sqlite3' from dbm-bad-plugin collides with the built-in driver of that name"),
    ({"dbmatrix.layers": {"sa-core": "dbm_tiny_plugin:AuditLayer"}},
     "plugin layer 'sa-core' from dbm-bad-plugin collides with the built-in layer of that name"),
    ({"dbmatrix.drivers": {"broken": "dbm_no_such_module:Adapter"}},
     "plugin driver 'broken' (dbm_no_such_module:Adapter, from dbm-bad-plugin) cannot be loaded: "
     "ModuleNotFoundError: No module named 'dbm_no_such_module'"),
    ({"dbmatrix.drivers": {"notanadapter": "dbm_tiny_plugin:TinySession"}},
     "plugin driver 'notanadapter' is not a DriverAdapter subclass with id 'notanadapter'"),
    ({"dbmatrix.drivers": {"other": "dbm_tiny_plugin:TinyAdapter"}},
     "plugin driver 'other' is not a DriverAdapter subclass with id 'other' (got 'TinyAdapter')"),
    ({"dbmatrix.engines": {"postgresql": "dbm_tiny_plugin:TinyAdapter"}},
     "plugin engine 'postgresql' from dbm-bad-plugin collides with the built-in engine of that name"),
    ({"dbmatrix.engines": {"broken": "dbm_tiny_plugin:NoSuchEngine"}},
     "plugin engine 'broken' (dbm_tiny_plugin:NoSuchEngine, from dbm-bad-plugin) cannot be loaded: AttributeError"),
])
def test_bad_plugins_stop_with_one_line(tmp_path: Path, groups: dict[str, dict[str, str]], message: str) -> None:
    site = install(tmp_path / "site", "dbm-bad-plugin", groups)
    for args in (("--help",), ("run", "--target", "sqlite", "--case", "types.int_limits", "--out", str(tmp_path))):
        proc = dbmatrix(site, *args)
        assert proc.returncode == 2, proc.stdout[-500:] + proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"dbmatrix: error: {message}"), proc.stderr
        assert "Traceback" not in proc.stderr and not list(tmp_path.glob("*/results.json"))


def test_one_name_from_two_plugins_stops_with_one_line(tmp_path: Path) -> None:
    site = install(tmp_path / "site", "dbm-tiny-plugin", GOOD)
    install(site, "dbm-other-plugin", {"dbmatrix.drivers": {"tiny": "dbm_tiny_plugin:TinyAdapter"}})
    proc = dbmatrix(site, "--help")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("dbmatrix: error: plugin driver 'tiny' is registered twice (")
    assert len(proc.stderr.strip().splitlines()) == 1
