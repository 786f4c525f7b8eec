"""Trust, proved against the live servers: runs over databases that hold someone's tables — finished, interrupted
(SIGINT, SIGTERM, three SIGINTs; with and without the embedded server), killed (SIGKILL, then ``dbmatrix clean``),
through PgBouncer, two at once in one database — leave every row, database, role, setting and pooled server
connection as they were, and no dbmatrix database, schema, connection, process or temp directory behind.

Bounded: a few cases per run; the module takes a couple of minutes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pymysql
import pytest

REPO = Path(__file__).resolve().parents[1]
CASES = REPO / "cases"
DBMATRIX = str(Path(sys.executable).with_name("dbmatrix"))
TAG = uuid.uuid4().hex[:8]
SENTINEL = f"trust_sentinel_{TAG}"  # not dbmatrix_*: dbmatrix must never touch it
NOCREATEDB = f"trust_nocreatedb_{TAG}"
PG_DIRECT = f"postgresql://postgres@127.0.0.1:5432/{SENTINEL}"
PG_POOLED = f"postgresql://postgres@127.0.0.1:6432/{SENTINEL}"
MARIA = f"mysql://root@127.0.0.1:3306/{SENTINEL}"
POOL_SIZE = 10  # default_pool_size of ci/provision's PgBouncer: pinning this many clients covers every server conn


def pg(db: str = "postgres", port: int = 5432, user: str = "postgres") -> psycopg.Connection:
    return psycopg.connect(host="127.0.0.1", port=port, user=user, dbname=db, autocommit=True, connect_timeout=5)


def maria(db: str | None = None) -> pymysql.Connection:
    return pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", database=db, autocommit=True,
                           connect_timeout=5)


# --- sentinels and snapshots -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sentinels() -> Iterator[None]:
    try:
        make_sentinels()
        yield
    finally:
        with pg() as c:
            c.execute(f"DROP DATABASE IF EXISTS {SENTINEL} WITH (FORCE)")
            c.execute(f"DROP ROLE IF EXISTS {NOCREATEDB}")
        with maria() as m, m.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {SENTINEL}")


def make_sentinels() -> None:
    with pg() as c:
        c.execute(f"CREATE DATABASE {SENTINEL}")
        c.execute(f"CREATE ROLE {NOCREATEDB} LOGIN NOCREATEDB NOCREATEROLE")
        c.execute(f"GRANT CREATE, CONNECT ON DATABASE {SENTINEL} TO {NOCREATEDB}")
    with pg(SENTINEL) as c:
        c.execute("CREATE TABLE keepme (id int PRIMARY KEY, v text)")
        c.execute("INSERT INTO keepme SELECT g, md5(g::text) FROM generate_series(1, 500) g")
        c.execute(f"GRANT SELECT ON keepme TO {NOCREATEDB}")
        c.execute("CREATE SCHEMA app")
        c.execute("CREATE TABLE app.orders (id int PRIMARY KEY, total numeric)")
        c.execute("INSERT INTO app.orders SELECT g, g * 1.5 FROM generate_series(1, 200) g")
    with maria() as m, m.cursor() as cur:
        cur.execute(f"CREATE DATABASE {SENTINEL}")
        cur.execute(f"USE {SENTINEL}")
        cur.execute(f"CREATE TABLE {SENTINEL}.keepme (id int PRIMARY KEY, v varchar(40))")
        cur.execute(f"INSERT INTO {SENTINEL}.keepme SELECT seq, md5(seq) FROM seq_1_to_500")


def snapshot() -> dict[str, object]:
    """Everything a run must leave as it was (other helpers' dbmatrix_* databases come and go: not counted)."""
    snap: dict[str, object] = {}
    with pg() as c:
        snap["pg databases"] = {r[0] for r in c.execute(
            "SELECT datname FROM pg_database WHERE datname NOT LIKE 'dbmatrix\\_%'").fetchall()}
        snap["pg roles"] = {r[0] for r in c.execute(
            "SELECT row(rolname, rolsuper, rolcreatedb, rolcreaterole, rolcanlogin)::text FROM pg_roles").fetchall()}
        snap["pg role/db settings"] = {r[0] for r in c.execute(
            "SELECT row(d.datname, r.rolname, s.setconfig)::text FROM pg_db_role_setting s "
            "LEFT JOIN pg_database d ON d.oid = s.setdatabase LEFT JOIN pg_roles r ON r.oid = s.setrole "
            "WHERE coalesce(d.datname, '') NOT LIKE 'dbmatrix\\_%'").fetchall()}
    with pg(SENTINEL) as c:
        snap["pg keepme"] = c.execute("SELECT count(*), md5(string_agg(v, ',' ORDER BY id)) FROM keepme").fetchone()
        snap["pg app.orders"] = c.execute("SELECT count(*), sum(total) FROM app.orders").fetchone()
        snap["pg sentinel schemas"] = c.execute(
            "SELECT array_agg(nspname::text ORDER BY nspname) FROM pg_namespace").fetchone()[0]
        snap["pg sentinel tables"] = c.execute(
            "SELECT array_agg(schemaname || '.' || tablename ORDER BY 1) FROM pg_tables "
            "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')").fetchone()[0]
    with maria() as m, m.cursor() as cur:
        cur.execute("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME NOT LIKE 'dbmatrix\\_%'")
        snap["maria databases"] = {r[0] for r in cur.fetchall()}
        cur.execute(f"SELECT COUNT(*), MD5(GROUP_CONCAT(v ORDER BY id)) FROM {SENTINEL}.keepme")
        snap["maria keepme"] = cur.fetchone()
        cur.execute(f"SELECT GROUP_CONCAT(TABLE_NAME) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{SENTINEL}'")
        snap["maria sentinel tables"] = cur.fetchone()[0]
        cur.execute("SELECT CONCAT(User, '@', Host) FROM mysql.user")
        snap["maria users"] = {r[0] for r in cur.fetchall()}
        cur.execute("SELECT @@GLOBAL.innodb_lock_wait_timeout, @@GLOBAL.max_statement_time, @@GLOBAL.sql_mode, "
                    "@@GLOBAL.time_zone, @@GLOBAL.tx_isolation")
        snap["maria globals"] = cur.fetchone()
    return snap


def pool_state(db: str = SENTINEL, user: str = "postgres") -> set[tuple[str, ...]]:
    """The session state of every server connection in PgBouncer's (db, user) pool: POOL_SIZE clients each
    hold a transaction, so each sits on its own server connection, and report what it would inherit."""
    states: list[tuple[str, ...]] = []
    errors: list[BaseException] = []

    def probe() -> None:
        conns = []
        try:
            for _ in range(POOL_SIZE):
                c = psycopg.connect(host="127.0.0.1", port=6432, user=user, dbname=db, connect_timeout=5)
                c.execute("SELECT 1")  # in a transaction: this client now holds a server connection
                conns.append(c)
            for c in conns:
                row = c.execute("SELECT current_setting('search_path'), current_setting('statement_timeout'), "
                                "current_setting('lock_timeout'), current_setting('application_name'), "
                                "(SELECT count(*) FROM pg_listening_channels())::text, "
                                "(SELECT count(*) FROM pg_prepared_statements)::text, "
                                "(SELECT count(*) FROM keepme)::text").fetchone()
                states.append(tuple(row))
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            errors.append(exc)
        finally:
            for c in conns:
                c.close()

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(60)
    assert not t.is_alive(), "probing the pool hung"
    assert not errors, errors
    return set(states)


DEFAULT_POOL_STATE = {('"$user", public', "0", "0", "", "0", "0", "500")}


@dataclass
class Baseline:
    snap: dict[str, object]


@pytest.fixture(scope="module")
def baseline(sentinels: None) -> Baseline:
    assert pool_state() == DEFAULT_POOL_STATE
    return Baseline(snapshot())


# --- what must be gone ---------------------------------------------------------------------------------------

def traces_of(pid: int) -> list[str]:
    """Scratch databases/schemas, connections, temp dirs and servers that carry the marker of process ``pid``."""
    mark = f"pid={pid} "
    found: list[str] = []
    with pg() as c:
        found += [f"pg database {r[0]}" for r in c.execute(
            "SELECT datname, shobj_description(oid, 'pg_database') AS d FROM pg_database").fetchall()
            if r[1] and mark in r[1]]
        found += [f"pg connection to {r[0]}" for r in c.execute(
            "SELECT datname FROM pg_stat_activity WHERE datname IN (SELECT datname FROM pg_database "
            "WHERE shobj_description(oid, 'pg_database') LIKE %s)", (f"%{mark}%",)).fetchall()]
    with pg(SENTINEL) as c:
        found += [f"pg schema {r[0]}" for r in c.execute(
            "SELECT nspname, obj_description(oid, 'pg_namespace') FROM pg_namespace").fetchall()
            if r[1] and mark in r[1]]
    with maria() as m, m.cursor() as cur:
        cur.execute("SELECT SCHEMA_NAME, SCHEMA_COMMENT FROM information_schema.SCHEMATA")
        ours = [r[0] for r in cur.fetchall() if r[1] and mark in r[1]]
        found += [f"mariadb database {name}" for name in ours]
        if ours:
            cur.execute("SELECT DB FROM information_schema.PROCESSLIST WHERE DB IN %s", (ours,))
            found += [f"mariadb connection to {r[0]}" for r in cur.fetchall()]
    for d in Path(tempfile.gettempdir()).glob("dbmatrix_*"):
        marker = d / ".dbmatrix-owner"
        if marker.exists() and mark in marker.read_text():
            found.append(f"temp dir {d}")
            found += [f"server process {p}" for p in processes_in(d)]
    return found


def processes_in(directory: Path) -> list[str]:
    out = subprocess.run(["ps", "-ww", "-eo", "pid,args"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if str(directory) in line and "ps -eo" not in line]


def assert_unchanged(before: dict[str, object]) -> None:
    """Sets (databases, roles, settings, users) may only have grown by what other people's work created
    meanwhile — the tests share servers — but lost or changed nothing; everything else is equal."""
    now = snapshot()
    for key, old in before.items():
        if isinstance(old, set):
            assert old <= now[key], f"{key}: lost or changed {sorted(old - now[key])}"
            assert not [n for n in now[key] - old if "dbmatrix" in n or "trust" in n], f"{key}: {now[key] - old}"
        else:
            assert now[key] == old, key


def assert_untouched(baseline: Baseline, pid: int) -> None:
    assert traces_of(pid) == []
    assert_unchanged(baseline.snap)
    assert pool_state() == DEFAULT_POOL_STATE


# --- runs ------------------------------------------------------------------------------------------------------

def start(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([DBMATRIX, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # its own process group, as a terminal job would be


def wait_for_scratch(proc: subprocess.Popen[str], count: int, timeout: float = 90, cells: bool = False) -> None:
    """Until ``count`` scratch spaces (databases, schemas, temp dirs) carry the run's marker, or fail. Scratch is
    made target by target, in order, after each server started: with one per target, the cells are next.
    ``cells``: also wait for a session in a scratch database (a cell is running)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        traces = traces_of(proc.pid)
        spaces = [t for t in traces if t.split()[1] in ("database", "schema", "dir")]
        if len(spaces) >= count and (not cells or any(" connection to " in t for t in traces)):
            return
        time.sleep(0.3)
    proc.kill()
    pytest.fail(f"run made no scratch within {timeout}s: {proc.communicate()}")


def test_full_run_over_sentinels_leaves_everything_as_it_was(baseline: Baseline, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = start(["run", "--target", "sqlite", "--target", f"postgres={PG_DIRECT}", "--target", f"mariadb={MARIA}",
                  "--target", f"pgbouncer={PG_POOLED}", "--case", "sql.cte*", "--case", "sql.advisory_session_lock",
                  "--case", "sql.upsert*", "--case", "types.int_limits", "--driver", "psycopg,asyncpg,pymysql,sqlite3",
                  "--out", str(out)], tmp_path)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode in (0, 1), stderr
    doc = json.loads((out / "latest" / "results.json").read_text())
    assert doc["run"]["complete"] is True
    assert {t["name"]: t["status"] for t in doc["targets"]} == dict.fromkeys(
        ["sqlite", "postgres", "mariadb", "pgbouncer"], "ok")
    assert len(doc["results"]) > 20
    assert_untouched(baseline, proc.pid)


INTERRUPTS = [
    ("sigint-group-embedded", ["sqlite", "postgres-embedded", "postgres", "mariadb"], [signal.SIGINT], True, 4),
    ("sigterm-embedded", ["postgres-embedded", "postgres"], [signal.SIGTERM], False, 2),
    ("sigterm-servers-only", ["sqlite", "postgres", "mariadb"], [signal.SIGTERM], False, 3),
    ("sigint-three-times", ["postgres-embedded", "mariadb"], [signal.SIGINT] * 3, True, 2),
]


@pytest.mark.parametrize(("targets", "signals", "to_group", "spaces"),
                         [i[1:] for i in INTERRUPTS], ids=[i[0] for i in INTERRUPTS])
def test_interrupted_run_stops_cleans_up_and_says_incomplete(
        baseline: Baseline, tmp_path: Path, targets: list[str], signals: list[signal.Signals], to_group: bool,
        spaces: int) -> None:
    urls = {"postgres": f"postgres={PG_DIRECT}", "mariadb": f"mariadb={MARIA}"}
    args = ["run", "--case", "sql.*", "--out", str(tmp_path / "out")]
    for t in targets:
        args += ["--target", urls.get(t, t)]
    proc = start(args, tmp_path)
    wait_for_scratch(proc, spaces, cells=True)
    time.sleep(0.5)
    sent = time.monotonic()
    for sig in signals:
        if to_group:
            os.killpg(proc.pid, sig)  # what a terminal's Ctrl-C does
        else:
            proc.send_signal(sig)
        time.sleep(0.05)
    stdout, stderr = proc.communicate(timeout=60)
    stopped_s = time.monotonic() - sent
    assert proc.returncode == 128 + signals[0], (proc.returncode, stderr[-2000:])
    assert "Traceback" not in stdout + stderr
    assert "interrupted by" in stderr
    assert stopped_s < 45, stopped_s  # a bound on hanging, not a speed claim
    doc = json.loads((tmp_path / "out" / "latest" / "results.json").read_text())
    assert doc["run"]["complete"] is False
    errors = [c for c in doc["results"] if c["outcome"] == "error"]
    assert not [c for c in errors if "SystemExit" in (c["detail"] or "") or "KeyboardInterrupt" in (c["detail"] or "")]
    assert all(c["verdict"] is None for c in doc["results"] if c["mechanism"] == "interrupted")
    assert_untouched(baseline, proc.pid)


def test_sigkill_leftovers_are_found_and_cleaned(baseline: Baseline, tmp_path: Path) -> None:
    proc = start(["run", "--target", "sqlite", "--target", "postgres-embedded", "--target", f"postgres={PG_DIRECT}",
                  "--target", f"mariadb={MARIA}", "--case", "sql.*", "--out", str(tmp_path / "out")], tmp_path)
    wait_for_scratch(proc, 4)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    left = traces_of(proc.pid)
    assert any(t.startswith("pg database") for t in left) and any(t.startswith("mariadb") for t in left), left
    assert any("server process" in t for t in left), left  # the orphaned embedded server
    servers = ["--target", f"postgres={PG_DIRECT}", "--target", f"mariadb={MARIA}"]
    seen = subprocess.run([DBMATRIX, "targets", *servers], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert "leftover(s) of dead dbmatrix runs" in seen.stderr and "dbmatrix clean" in seen.stderr, seen.stderr
    cleaned = subprocess.run([DBMATRIX, "clean", *servers], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
    assert "removed" in cleaned.stdout
    assert_untouched(baseline, proc.pid)


def test_clean_never_touches_live_runs_or_unmarked_names(baseline: Baseline, tmp_path: Path) -> None:
    """A dbmatrix_* database without our marker, and the scratch of a run that is still alive, both stay."""
    unmarked = f"dbmatrix_{TAG}_not_ours"
    with pg() as c:
        c.execute(f"CREATE DATABASE {unmarked}")
    try:
        proc = start(["run", "--target", f"postgres={PG_DIRECT}", "--case", "sql.*", "--driver", "psycopg",
                      "--out", str(tmp_path / "out")], tmp_path)
        wait_for_scratch(proc, 1)
        cleaned = subprocess.run([DBMATRIX, "clean", "--target", f"postgres={PG_DIRECT}"], cwd=tmp_path,
                                 capture_output=True, text=True, timeout=60)
        assert proc.poll() is None, "the live run died"
        assert len(traces_of(proc.pid)) >= 1, cleaned.stdout
        assert unmarked not in cleaned.stdout
        os.killpg(proc.pid, signal.SIGINT)
        proc.communicate(timeout=60)
        with pg() as c:
            assert c.execute("SELECT 1 FROM pg_database WHERE datname = %s", (unmarked,)).fetchone()
        assert_untouched(baseline, proc.pid)
    finally:
        with pg() as c:
            c.execute(f"DROP DATABASE IF EXISTS {unmarked}")


def test_pooled_schema_fallback_is_refused_and_leaves_the_pool_clean(baseline: Baseline, tmp_path: Path) -> None:
    """A role without CREATE DATABASE behind a transaction pooler: a scratch schema would leave search_path
    and timeouts on pooled server connections, so the named target is refused (exit 2), naming why.

    The shared PgBouncer admits only the users in its auth file (postgres), so the role reaches PostgreSQL
    directly with the pooler declared — the decision depends on the declared property, as for a Neon endpoint."""
    (tmp_path / "dbmatrix.toml").write_text(
        f'[targets]\npooled = {{ url = "postgresql://{NOCREATEDB}@127.0.0.1:5432/{SENTINEL}", '
        'pooler = "transaction" }\n')
    proc = subprocess.run([DBMATRIX, "run", "--target", "pooled", "--case", "sql.cte*"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "permission denied" in proc.stderr and "transaction pooler" in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert pool_state() == DEFAULT_POOL_STATE
    assert_unchanged(baseline.snap)


def test_schema_fallback_runs_share_a_database_without_colliding(baseline: Baseline, tmp_path: Path) -> None:
    """Two runs at once as a role without CREATE DATABASE (scratch schemas in one database): advisory lock keys
    and names are per run, so neither sees the other; both complete with no deviation."""
    url = f"postgres=postgresql://{NOCREATEDB}@127.0.0.1:5432/{SENTINEL}"
    procs = [start(["run", "--target", url, "--case", "sql.advisory*", "--case", "sql.cte*", "--driver",
                    "psycopg,asyncpg,psycopg2", "--out", str(tmp_path / f"out{i}")], tmp_path) for i in (1, 2)]
    for p in procs:
        _, stderr = p.communicate(timeout=240)
        assert p.returncode == 0, stderr
    docs = [json.loads((tmp_path / f"out{i}" / "latest" / "results.json").read_text()) for i in (1, 2)]
    assert docs[0]["run"]["id"] != docs[1]["run"]["id"]
    for doc in docs:
        assert [c for c in doc["results"] if c["verdict"] == "deviation"] == []
        assert sum(c["case"].startswith("sql.advisory") for c in doc["results"]) >= 6
    for p in procs:
        assert_untouched(baseline, p.pid)


def test_user_pooled_target_gets_pooled_expectations_and_shows_its_pooler(baseline: Baseline, tmp_path: Path) -> None:
    """Expectations follow the pooler property, not the name ``pgbouncer``: the README's own example."""
    (tmp_path / "dbmatrix.toml").write_text(f'[targets]\npooled = {{ url = "{PG_POOLED}", pooler = "transaction" }}\n')
    out = tmp_path / "out"
    proc = start(["run", "--target", "pooled", "--case", "sql.listen_notify", "--case", "sql.advisory_session_lock",
                  "--driver", "psycopg", "--out", str(out)], tmp_path)
    stdout, stderr = proc.communicate(timeout=180)
    assert proc.returncode == 0, stdout + stderr
    doc = json.loads((out / "latest" / "results.json").read_text())
    assert doc["targets"][0]["pooler"] == "transaction"
    cells = {(c["case"], c["driver"]): c for c in doc["results"]}
    assert cells[("sql.listen_notify", "psycopg")]["outcome"] == "differs"
    assert all(c["verdict"] == "as-expected" for c in cells.values()), cells
    listing = subprocess.run([DBMATRIX, "targets", "--target", "pooled"], cwd=tmp_path, capture_output=True,
                             text=True, timeout=60, env={**os.environ, "COLUMNS": "400"})
    row = next(line for line in listing.stdout.splitlines() if line.strip().startswith("pooled"))
    assert "│ transaction │" in row, row  # the pooler column
    assert_untouched(baseline, proc.pid)


def test_targets_differing_only_in_case_get_their_own_scratch(baseline: Baseline, tmp_path: Path) -> None:
    proc = start(["run", "--target", f"PG={PG_DIRECT}", "--target", f"pg={PG_DIRECT}", "--case", "sql.cte_plain",
                  "--driver", "psycopg", "--out", str(tmp_path / "out")], tmp_path)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stdout + stderr
    doc = json.loads((tmp_path / "out" / "latest" / "results.json").read_text())
    assert {t["name"]: t["status"] for t in doc["targets"]} == {"PG": "ok", "pg": "ok"}
    assert {c["target"] for c in doc["results"]} == {"PG", "pg"}
    assert_untouched(baseline, proc.pid)


def test_a_role_without_permission_is_named_as_such(sentinels: None, tmp_path: Path) -> None:
    """Not "does not answer": the server answered and said no."""
    with maria() as m, m.cursor() as cur:
        cur.execute(f"CREATE USER IF NOT EXISTS '{NOCREATEDB}'@'%' IDENTIFIED BY 'x1y2z3w4'")
        cur.execute(f"CREATE USER IF NOT EXISTS '{NOCREATEDB}'@'localhost' IDENTIFIED BY 'x1y2z3w4'")
    try:
        proc = subprocess.run([DBMATRIX, "run", "--target", f"mariadb=mysql://{NOCREATEDB}:x1y2z3w4@127.0.0.1:3306/",
                               "--case", "sql.cte_plain"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert "permission denied" in proc.stderr and "does not answer" not in proc.stderr, proc.stderr
    finally:
        with maria() as m, m.cursor() as cur:
            cur.execute(f"DROP USER IF EXISTS '{NOCREATEDB}'@'%'")
            cur.execute(f"DROP USER IF EXISTS '{NOCREATEDB}'@'localhost'")
