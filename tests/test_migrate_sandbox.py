"""Migrations are sandboxed by privilege where the engine allows: on SQLite, the scratch connection's authorizer
refuses ATTACH of any other file; on PostgreSQL and MariaDB they run as a per-run login that reaches only the
scratch database. Whatever the sandbox could not stop (a connection of the migration's own, a server that allows
no per-run login) shows as ``migrate.outside_scratch``: what changed outside scratch while the migrations ran."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

CLI = [sys.executable, "-c", "import sys; from dbmatrix.cli import main; sys.exit(main())"]

ENV_PY = '''
from alembic import context

context.configure(connection=context.config.attributes["connection"])
with context.begin_transaction():
    context.run_migrations()
'''

REVISION = '''
import os

from alembic import op

revision = "a01"
down_revision = None


def upgrade() -> None:
    op.execute(f"ATTACH DATABASE '{os.environ['OUTSIDE_DB']}' AS other")
    op.execute("CREATE TABLE other.t (x INTEGER)")


def downgrade() -> None:
    pass
'''


# alembic's async template: its own async engine (aiosqlite) on the scratch database, migrations through run_sync
ASYNC_ENV_PY = '''
import asyncio

from alembic import context
from sqlalchemy.ext.asyncio import create_async_engine

url = context.config.attributes["connection"].engine.url.set(drivername="sqlite+aiosqlite")


def migrate(connection):
    context.configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def main():
    engine = create_async_engine(url)
    async with engine.connect() as connection:
        await connection.run_sync(migrate)
        await connection.commit()
    await engine.dispose()


asyncio.run(main())
'''


@pytest.mark.parametrize("env_py", [ENV_PY, ASYNC_ENV_PY], ids=["sqlite3", "aiosqlite"])
def test_a_sqlite_migration_cannot_attach_a_file_outside_scratch(tmp_path: Path, env_py: str) -> None:
    """Before: SQLite ``ATTACH`` in a migration created a file outside scratch, unnoticed (and through an async
    env.py's aiosqlite connection the authorizer was never set: its ``set_authorizer`` is a coroutine)."""
    project = tmp_path / "project"
    (project / "versions").mkdir(parents=True)
    (project / "alembic.ini").write_text("[alembic]\nscript_location = %(here)s\n", encoding="utf-8")
    (project / "env.py").write_text(env_py, encoding="utf-8")
    (project / "versions" / "a01.py").write_text(REVISION, encoding="utf-8")
    outside = tmp_path / "outside.db"
    proc = subprocess.run([*CLI, "migrate", "--target", "sqlite", "--alembic", str(project / "alembic.ini"),
                           "--out", str(tmp_path / "out")], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "OUTSIDE_DB": str(outside)})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    stopped = [line for line in proc.stderr.splitlines() if line.startswith("dbmatrix: STOPPED:")]
    assert len(stopped) == 1 and "ATTACH" in stopped[0] and str(outside) in stopped[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not outside.exists()  # nothing outside scratch was created


# --- PostgreSQL and MariaDB: a per-run login that reaches only scratch ------------------------------------------

PG = "postgresql://postgres@127.0.0.1:5432/postgres"
MY = "mysql://root@127.0.0.1:3306/mysql"

# a revision that reaches another database with what it was given: PostgreSQL through a new connection with the
# scratch connection's own credentials, MariaDB through the scratch connection itself
REACH = {
    "postgres": '''
    import psycopg
    url = op.get_bind().engine.url
    with psycopg.connect(host=url.host, port=url.port, user=url.username, password=url.password,
                         dbname=os.environ["OTHER"], autocommit=True, connect_timeout=5) as other:
        other.execute("CREATE TABLE planted (x integer)")
''',
    "mariadb": '''
    op.execute(f"CREATE TABLE {os.environ['OTHER']}.planted (x integer)")
''',
    "sqlite": '''
    import sqlite3
    with sqlite3.connect(os.environ["OTHER"]) as other:  # the application's own file, not scratch's
        other.execute("CREATE TABLE planted (x integer)")
    other.close()
''',
}


def chain(tmp_path: Path, body: str) -> Path:
    project = tmp_path / "project"
    (project / "versions").mkdir(parents=True)
    (project / "alembic.ini").write_text("[alembic]\nscript_location = %(here)s\n", encoding="utf-8")
    (project / "env.py").write_text(ENV_PY, encoding="utf-8")
    (project / "versions" / "a01.py").write_text(
        "import os\n\nfrom alembic import op\n\nrevision = 'a01'\ndown_revision = None\n\n\ndef upgrade() -> None:\n"
        f"    op.execute('CREATE TABLE notes (id integer PRIMARY KEY)')\n{body}\n\ndef downgrade() -> None:\n"
        "    op.execute('DROP TABLE notes')\n", encoding="utf-8")
    return project / "alembic.ini"


def migrate(tmp_path: Path, target: str, ini: Path, other: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    import json

    proc = subprocess.run([*CLI, "migrate", "--target", target, "--require", target.split("=")[0], "--alembic",
                           str(ini), "--seed-rows", "10", "--out", str(tmp_path / "out")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=180, env={**os.environ, "OTHER": other})
    doc = json.loads((tmp_path / "out" / "latest" / "results.json").read_text(encoding="utf-8"))
    return proc, doc


def cell(doc: dict, case: str) -> dict:
    return next(r for r in doc["results"] if r["case"] == case)


def pg_admin() -> Any:
    import psycopg

    return psycopg.connect(PG, autocommit=True)


def my_admin() -> Any:
    import pymysql

    return pymysql.connect(host="127.0.0.1", port=3306, user="root", autocommit=True)


@pytest.mark.parametrize("engine", ["postgres", "mariadb"])
def test_a_migration_cannot_reach_another_database_with_the_login_it_was_given(engine: str, tmp_path: Path) -> None:
    """Before: migrations ran as the target's own user (a superuser here): a revision that connected to another
    PostgreSQL database with the scratch connection's credentials, or wrote another MariaDB schema through the
    scratch connection, changed it unnoticed. Now the per-run login is refused there by the server."""
    other = f"dbm_sandbox_other_{os.getpid()}"
    admin = pg_admin() if engine == "postgres" else my_admin()
    run = admin.execute if engine == "postgres" else admin.cursor().execute
    run(f"CREATE DATABASE {other}")
    try:
        proc, doc = migrate(tmp_path, engine, chain(tmp_path, REACH[engine]), other)
        if engine == "postgres":
            with psycopg_connect(other) as conn:
                planted = conn.execute("SELECT to_regclass('public.planted') IS NOT NULL").fetchone()[0]
        else:
            cur = admin.cursor()
            cur.execute("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s", (other,))
            planted = cur.fetchone()[0] > 0
    finally:
        run(f"DROP DATABASE IF EXISTS {other}" + (" WITH (FORCE)" if engine == "postgres" else ""))
        admin.close()
    assert not planted, "the migration changed another database"
    up = cell(doc, "migrate.upgrade")
    assert up["outcome"] == "fail", up
    refusal = "dbmatrix sandbox: this role may connect only to its scratch database" if engine == "postgres" \
        else "CREATE command denied to user 'dbmatrix_"  # 1142, as the driver reports it (SQLSTATE 42000)
    assert refusal in up["detail"], up["detail"]
    assert "Traceback" not in proc.stdout + proc.stderr
    assert logins_of(engine, doc["run"]["id"]) == [], "the per-run login outlived the run"


def psycopg_connect(db: str) -> Any:
    import psycopg

    return psycopg.connect(PG.rsplit("/", 1)[0] + f"/{db}", autocommit=True)


def logins_of(engine: str, run_id: str) -> list[str]:
    if engine == "postgres":
        with pg_admin() as conn:
            return [r[0] for r in conn.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE %s",
                                               (f"dbmatrix_{run_id}%",))]
    conn = my_admin()
    try:
        cur = conn.cursor()
        cur.execute("SELECT User FROM mysql.user WHERE User LIKE %s", (f"dbmatrix_{run_id}%",))
        return [r[0] for r in cur.fetchall()]
    finally:
        conn.close()


@pytest.mark.parametrize("engine", ["postgres", "mariadb", "sqlite"])
def test_a_change_outside_scratch_is_a_finding_where_the_server_allows_no_sandbox(engine: str, tmp_path: Path
                                                                                 ) -> None:
    """Before: an env.py or revision writing outside scratch through a connection of its own (or, on MariaDB,
    through the scratch connection) changed another database unnoticed (only an ``offline_sql`` difference).
    Here the target's user may not create roles (a managed service): the run says once that it is not sandboxed,
    and ``migrate.outside_scratch`` names what appeared outside scratch."""
    pid = os.getpid()
    user, other = f"dbm_sandbox_limited_{pid}", f"dbm_sandbox_app_{pid}"
    if engine == "postgres":
        with pg_admin() as admin:
            admin.execute(f"CREATE ROLE {user} LOGIN CREATEDB PASSWORD 'Limited-pw-{pid}'")
            admin.execute(f"CREATE DATABASE {other} OWNER {user}")
        target, where = f"limited=postgresql://{user}:Limited-pw-{pid}@127.0.0.1:5432/{other}", other
    elif engine == "mariadb":
        admin = my_admin()
        cur = admin.cursor()
        cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY 'Limited-pw-{pid}'")
        cur.execute(f"GRANT ALL PRIVILEGES ON `dbmatrix\\_%`.* TO '{user}'@'%'")
        cur.execute(f"CREATE DATABASE {other}")
        cur.execute(f"GRANT ALL PRIVILEGES ON {other}.* TO '{user}'@'%'")
        admin.close()
        target, where = f"limited=mysql://{user}:Limited-pw-{pid}@127.0.0.1:3306/{other}", other
    else:
        target, where = "sqlite", str(tmp_path / "app.db")
    try:
        proc, doc = migrate(tmp_path, target, chain(tmp_path, REACH[engine]), where)
    finally:
        if engine == "postgres":
            with pg_admin() as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {other} WITH (FORCE)")
                admin.execute(f"DROP ROLE IF EXISTS {user}")
        elif engine == "mariadb":
            admin = my_admin()
            admin.cursor().execute(f"DROP DATABASE IF EXISTS {other}")
            admin.cursor().execute(f"DROP USER IF EXISTS '{user}'@'%'")
            admin.close()
    said = proc.stdout + proc.stderr
    assert "Traceback" not in said and f"Limited-pw-{pid}" not in said, said
    if engine != "sqlite":
        assert len([line for line in said.splitlines() if "not sandboxed" in line]) == 1, said
    assert cell(doc, "migrate.upgrade")["outcome"] == "pass", cell(doc, "migrate.upgrade")
    found = cell(doc, "migrate.outside_scratch")
    assert found["outcome"] == "fail", found
    planted = {"postgres": f"{other}: relation public.planted appeared", "mariadb": f"table {other}.planted appeared",
               "sqlite": f"file {tmp_path / 'app.db'} appeared"}[engine]
    assert any(f["outside_scratch"].startswith(planted) for f in found["findings"]), found["findings"]


def test_clean_removes_a_dead_runs_role_and_leaves_others(tmp_path: Path) -> None:
    """A migrate run killed with SIGKILL leaves its per-run role: ``dbmatrix clean`` finds it by its owner marker
    (a dead process on this host) and drops it; a ``dbmatrix_`` role without a marker is someone else's."""
    import socket

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    run_id = f"20000101000000_{os.getpid() % 0xFFFFFF:06x}"
    mine, theirs = f"dbmatrix_{run_id}_postgres_mwalk", f"dbmatrix_{run_id}_not_ours"
    with pg_admin() as admin:
        admin.execute(f'CREATE ROLE "{mine}" LOGIN')
        admin.execute(f"COMMENT ON ROLE \"{mine}\" IS 'dbmatrix scratch run={run_id} pid={pid} "
                      f"host={socket.gethostname()}'")
        admin.execute(f'CREATE ROLE "{theirs}"')
    try:
        proc = subprocess.run([*CLI, "clean", "--target", "postgres"], cwd=tmp_path, capture_output=True, text=True,
                              timeout=120)
        left = logins_of("postgres", run_id)
    finally:
        with pg_admin() as admin:
            admin.execute(f'DROP ROLE IF EXISTS "{mine}"')
            admin.execute(f'DROP ROLE IF EXISTS "{theirs}"')
    assert f"removed role {mine} on postgres" in proc.stdout, proc.stdout + proc.stderr
    assert left == [theirs]


def test_sigterm_mid_migration_drops_the_per_run_role_with_its_database(tmp_path: Path) -> None:
    """The per-run role goes with its scratch database when a signal stops the run in the middle of a revision."""
    import signal
    import time

    ini = chain(tmp_path, "    op.execute('SELECT pg_sleep(30)')\n")
    proc = subprocess.Popen([*CLI, "migrate", "--target", "postgres", "--alembic", str(ini), "--out",
                             str(tmp_path / "out")], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stderr is not None
    for line in proc.stderr:
        if "walking the chain" in line:
            break
    marker = f"pid={proc.pid} "
    with pg_admin() as admin:
        deadline = time.monotonic() + 30
        while not admin.execute("SELECT 1 FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(30)%'").fetchone():
            assert time.monotonic() < deadline, "the revision never started"
            time.sleep(0.1)
        mid = admin.execute("SELECT rolname FROM pg_roles WHERE shobj_description(oid, 'pg_authid') LIKE %s",
                            (f"%{marker}%",)).fetchall()
        proc.send_signal(signal.SIGTERM)
        err = proc.communicate(timeout=60)[1]
        roles = admin.execute("SELECT rolname FROM pg_roles WHERE shobj_description(oid, 'pg_authid') LIKE %s",
                              (f"%{marker}%",)).fetchall()
        dbs = admin.execute("SELECT datname FROM pg_database WHERE shobj_description(oid, 'pg_database') LIKE %s",
                            (f"%{marker}%",)).fetchall()
    assert proc.returncode == 143, err
    assert len(mid) == 1 and mid[0][0].endswith("_postgres_mwalk"), mid  # the migration ran as the per-run role
    assert (roles, dbs) == ([], []), (roles, dbs, err)
    assert err.strip().splitlines()[-1] == "dbmatrix: interrupted by SIGTERM; scratch cleaned up; no results written"


def test_a_login_the_server_will_not_let_in_falls_back_to_the_targets_user_and_says_so(tmp_path: Path) -> None:
    """A private PostgreSQL whose pg_hba.conf rejects every ``dbmatrix_*`` user (an authentication rule that lists
    users): the role is made, cannot log in, is dropped again, and the run says so once and goes on."""
    from dbmatrix.targets.embedded import EmbeddedPostgres

    server = EmbeddedPostgres()
    url = server.start()
    try:
        import psycopg

        with psycopg.connect(url, autocommit=True) as admin:
            hba = Path(admin.execute("SHOW hba_file").fetchone()[0])
            hba.write_text("host all /^dbmatrix_ 127.0.0.1/32 reject\n" + hba.read_text(), encoding="utf-8")
            admin.execute("SELECT pg_reload_conf()")
        proc, doc = migrate(tmp_path, f"private={url}", chain(tmp_path, ""), "")
        with psycopg.connect(url, autocommit=True) as admin:
            roles = admin.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE 'dbmatrix%'").fetchall()
    finally:
        server.stop()
    said = proc.stdout + proc.stderr
    lines = [line for line in said.splitlines() if "not sandboxed: the per-run login could not log in" in line]
    assert len(lines) == 1 and "rejects connection" in lines[0], said
    assert cell(doc, "migrate.upgrade")["outcome"] == "pass", cell(doc, "migrate.upgrade")
    found = cell(doc, "migrate.outside_scratch")
    assert found["outcome"] == "pass" and "not guarded: the per-run login could not log in" in found["detail"], found
    assert roles == []


def test_a_createrole_user_that_is_no_superuser_gets_a_partial_sandbox_and_is_told(tmp_path: Path) -> None:
    """A target user with CREATEROLE and CREATEDB but no superuser (a managed service's admin): the per-run role
    is made and owns the scratch database, but other databases still take its connections (PUBLIC's CONNECT):
    the run says so once, and the check's detail names it."""
    pid = os.getpid()
    user, home = f"dbm_sandbox_admin_{pid}", f"dbm_sandbox_home_{pid}"
    with pg_admin() as admin:
        admin.execute(f"CREATE ROLE {user} LOGIN CREATEDB CREATEROLE")
        admin.execute(f"CREATE DATABASE {home} OWNER {user}")
    try:
        proc, doc = migrate(tmp_path, f"managed=postgresql://{user}@127.0.0.1:5432/{home}", chain(tmp_path, ""), "")
        left = logins_of("postgres", doc["run"]["id"])
    finally:
        with pg_admin() as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {home} WITH (FORCE)")
            admin.execute(f"DROP ROLE IF EXISTS {user}")
    said = proc.stdout + proc.stderr
    lines = [line for line in said.splitlines() if "only partly sandboxed" in line]
    assert len(lines) == 1 and "other databases still accept its connections" in lines[0], said
    assert cell(doc, "migrate.upgrade")["outcome"] == "pass", cell(doc, "migrate.upgrade")
    found = cell(doc, "migrate.outside_scratch")
    assert "sandbox: a per-run role, owner of the scratch database only" in found["detail"], found
    assert left == []
