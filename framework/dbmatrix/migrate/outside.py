"""What a migration could reach outside its scratch database, taken before and after the migrations of a target:
any difference is ``migrate.outside_scratch``'s finding (a migration that opened its own connection with the
application's credentials is not stopped by the sandbox; this sees what it changed).

* PostgreSQL: databases (owner, ACL), roles (attributes, settings) and, in every database the connection may
  enter (templates are not entered: CREATE DATABASE fails while anyone is connected to one; behind a connection
  pooler, only the target's own database: the pooler would keep a server connection in each), each relation
  outside the system schemas with its relfilenode (a rewrite), the xmin of its catalog row
  (an ALTER), its size and its insert/update/delete counters (written rows).
* MariaDB/MySQL: schemas, users, and each table outside the system schemas with its create and update time, rows,
  data length and next AUTO_INCREMENT.
* SQLite: the SQLite database files (and their journals) under the working directory and the project's directory
  (size, modification time).

dbmatrix's own scratch spaces and logins (``dbmatrix_*``, this run's and other runs') are not looked at. The
server is shared: a change by anyone else while the migrations ran shows too, and the finding says so.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy.engine import URL

from ..redaction import scrub
from ..targets.admin import admin_connection
from ..targets.model import Target

Snapshot = dict[str, str]  # what -> its signature
_SKIP_DIRS = {"__pycache__", ".git", ".venv", "venv", "node_modules", ".mypy_cache", ".ruff_cache", ".pytest_cache"}
_MAX_FILES = 50_000  # files looked at, at most: a huge working directory costs a bounded time
_MAX_DEPTH = 4
_SQLITE_SUFFIXES = (".db", ".db3", ".sqlite", ".sqlite3", "-journal", "-wal", "-shm")
_SQLITE_HEADER = b"SQLite format 3\x00"

_PG_RELATIONS = (
    "SELECT n.nspname || '.' || c.relname, c.relkind::text, c.relfilenode::text, c.xmin::text, "
    "pg_relation_size(c.oid)::text, COALESCE((s.n_tup_ins + s.n_tup_upd + s.n_tup_del)::text, '') "
    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid "
    "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND n.nspname !~ '^pg_(toast_)?temp_' "
    "AND left(n.nspname, 9) <> 'dbmatrix_'")
_MY_TABLES = (  # one schema at a time: MariaDB then opens that schema's tables only, never a scratch one
    "SELECT TABLE_NAME, TABLE_TYPE, COALESCE(ENGINE, ''), COALESCE(CREATE_TIME, ''), COALESCE(UPDATE_TIME, ''), "
    "COALESCE(TABLE_ROWS, ''), COALESCE(DATA_LENGTH, ''), COALESCE(AUTO_INCREMENT, '') "
    "FROM information_schema.TABLES WHERE TABLE_SCHEMA = %(schema)s")
_MY_SYSTEM = ("information_schema", "performance_schema", "mysql", "sys")


def snapshot(target: Target, dirs: Iterable[Path] = ()) -> Snapshot:
    """Everything outside scratch that ``target``'s connection can see now (see the module docstring)."""
    if target.kind == "sqlite":
        return _files(dirs)
    if target.kind == "postgresql":
        return _postgresql(target.url, enter_others=not target.pooler)
    if target.kind == "mysql":
        return _mysql(target.url)
    return {}


def _postgresql(url: URL, *, enter_others: bool = True) -> Snapshot:
    out: Snapshot = {}
    with admin_connection("postgresql", url) as conn:
        dbs = conn.exec_driver_sql(
            # a template is never entered: CREATE DATABASE (this run's, anyone's) fails while a session is in it
            "SELECT datname, datdba::regrole::text, COALESCE(datacl::text, ''), datallowconn AND NOT datistemplate "
            "FROM pg_database "
            "WHERE left(datname, 9) <> 'dbmatrix_' ORDER BY datname").all()
        for name, owner, acl, _ in dbs:
            out[f"database {name}"] = f"owner {owner}, privileges {acl or 'default'}"
        for row in conn.exec_driver_sql(
                "SELECT rolname, rolsuper, rolcreatedb, rolcreaterole, rolcanlogin, rolreplication, "
                "COALESCE(rolconfig::text, '') FROM pg_roles WHERE left(rolname, 9) <> 'dbmatrix_'"):
            out[f"role {row[0]}"] = (f"superuser {row[1]}, createdb {row[2]}, createrole {row[3]}, login {row[4]}, "
                                     f"replication {row[5]}, settings {row[6] or 'none'}")
    for name, _, _, allowed in dbs:
        # behind a pooler, a connection to another database would stay pooled in it: only the target's own
        if not allowed or (not enter_others and name != url.database):
            continue
        try:
            with admin_connection("postgresql", url.set(database=name)) as conn:
                for rel, kind, node, xmin, size, written in conn.exec_driver_sql(_PG_RELATIONS):
                    out[f"{name}: relation {rel}"] = (f"kind {kind}, relfilenode {node}, catalog xmin {xmin}, "
                                                      f"{size} bytes, rows written {written or 'n/a'}")
        except Exception as exc:  # noqa: BLE001 - a database this login may not enter is one it cannot change
            out[f"{name}: not readable"] = scrub(exc)
    return out


def _mysql(url: URL) -> Snapshot:
    out: Snapshot = {}
    with admin_connection("mysql", url) as conn:
        schemas = [r[0] for r in conn.exec_driver_sql(
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE LEFT(SCHEMA_NAME, 9) <> 'dbmatrix_'")]
        for schema in schemas:
            out[f"schema {schema}"] = "exists"
            if schema.lower() in _MY_SYSTEM:
                continue
            for row in conn.exec_driver_sql(_MY_TABLES, {"schema": schema}):
                out[f"table {schema}.{row[0]}"] = (f"{row[1]} {row[2]}, created {row[3]}, updated {row[4] or 'never'}, "
                                                  f"rows {row[5]}, data {row[6]} bytes, next id {row[7] or 'n/a'}")
        try:
            for user, host in conn.exec_driver_sql(
                    "SELECT User, Host FROM mysql.user WHERE LEFT(User, 9) <> 'dbmatrix_'"):
                out[f"user '{user}'@'{host}'"] = "exists"
        except Exception:  # noqa: BLE001, S110 - no SELECT on mysql.user: this login cannot see (or make) users
            pass
    return out


def _files(dirs: Iterable[Path]) -> Snapshot:
    out: Snapshot = {}
    seen = 0
    for top in dict.fromkeys(Path(d).resolve() for d in dirs):
        for root, subdirs, files in os.walk(top):
            depth = len(Path(root).relative_to(top).parts)
            subdirs[:] = [] if depth >= _MAX_DEPTH else [d for d in subdirs
                                                         if d not in _SKIP_DIRS and not d.startswith("dbmatrix_")]
            for f in files:
                seen += 1
                if seen > _MAX_FILES:
                    return out
                path = Path(root, f)
                try:
                    st = path.lstat()
                    if not f.endswith(_SQLITE_SUFFIXES) and not _is_sqlite(path, st.st_size):
                        continue
                except OSError:
                    continue
                out[f"file {path}"] = f"{st.st_size} bytes, modified {st.st_mtime_ns}"
    return out


def _is_sqlite(path: Path, size: int) -> bool:
    if size < len(_SQLITE_HEADER) or not path.is_file():
        return False
    with path.open("rb") as fh:
        return fh.read(len(_SQLITE_HEADER)) == _SQLITE_HEADER


def differences(before: Snapshot, after: Snapshot) -> list[str]:
    """Each thing that appeared, disappeared or changed, one line each."""
    out = [f"{k} appeared ({after[k]})" for k in after if k not in before]
    out += [f"{k} disappeared (was {before[k]})" for k in before if k not in after]
    out += [f"{k} changed: {before[k]} -> {after[k]}" for k in before if k in after and before[k] != after[k]]
    return sorted(out)
