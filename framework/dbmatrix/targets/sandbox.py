"""A per-run login that can reach only one scratch database: migrations run through it, so a migration that
connects to another database, or writes one, is refused by the server itself, whatever SQL it sends.

* PostgreSQL: a role ``dbmatrix_<run>_...`` (random password, never printed: redaction knows it), owner of the
  scratch database and nothing else, no CREATEDB/CREATEROLE. Every database grants CONNECT to PUBLIC by default,
  and REVOKE from one role cannot take away what PUBLIC has; so the role's own setting names a
  ``session_preload_libraries`` file that does not exist — the server loads it at the start of every session and
  ends the connection ("could not access file ...") — except in the scratch database, where a per-database
  setting loads ``plpgsql`` (always there) instead. Setting that parameter needs a superuser; without one the
  role is still made, and only privileges keep it out of other databases (said once).
* MariaDB/MySQL: a user of the same name with ``GRANT ALL ON scratch.*`` and nothing else.

The role carries the owner marker (``COMMENT ON ROLE``) so ``dbmatrix clean`` finds it after a killed run; a
MariaDB user has no comment, so it is named after its scratch database, dropped before it, and ``clean`` drops it
with that database. Where the server refuses all this (no CREATEROLE / CREATE USER privilege, a managed service,
a pooler that knows only its own users), the migration runs as the target's own user and the run says so once.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from .. import interrupt
from ..errors import DriverError
from ..redaction import register_secret, scrub
from .admin import admin_connection
from .owner import marker_sql, this_process
from .scratch import ScratchSpace, _quote, _run_of

# the file the server fails to load outside scratch: its name is the message the refused connection shows
REFUSAL = "dbmatrix sandbox: this role may connect only to its scratch database"


@dataclass
class Sandbox:
    url: URL  # the scratch database, logged in as the sandbox role (or as the target's own user: unguarded)
    role: str | None  # the role/user made for this space; None when unguarded
    guarded: str  # what the server refuses this login (one line, for the run's record)
    unguarded: str | None = None  # what could not be guarded, and why
    observer_url: URL | None = None  # the same database as the target's own user, for dbmatrix's own probes


def _account(name: str) -> str:
    return f"'{name}'@'%%'"  # '%%': the admin DBAPI (format paramstyle) turns it into the any-host wildcard


@contextmanager
def sandboxed(space: ScratchSpace, say: Callable[[str], None] = lambda m: None) -> Iterator[Sandbox]:
    """A login for ``space`` alone, removed on exit (a PostgreSQL role after its database, which it owns: the
    space is dropped here first; a MariaDB user before its database). ``say`` hears what could not be guarded."""
    target, kind = space.target, space.target.kind
    if kind == "sqlite":
        yield Sandbox(space.url, None, "SQLite: the authorizer refuses ATTACH of any other file", None, space.url)
        return
    why = _cannot(space)
    role, guarded = None, ""
    if why is None:
        password = secrets.token_urlsafe(24)
        register_secret(password)
        try:
            role, guarded, why = _create(space, password)
        except DriverError as exc:
            why = f"the server refused a per-run login ({scrub(exc.message)})"
        if role is not None:
            refused = _cannot_log_in(space, role, password)
            if refused:
                _undo(space, role, say)
                role, why = None, refused
    why = why.replace(space.name, "<scratch>") if why else why  # the same words for every phase: said once
    if role is None:
        say(f"{target.name}: migrations run as the target's own user, not sandboxed: {why}; changes outside "
            "scratch are still looked for")
        yield Sandbox(space.url, None, "", why, space.url)
        return
    if why:
        say(f"{target.name}: the per-run role is only partly sandboxed: {why}")
    try:
        yield Sandbox(space.url.set(username=role, password=password), role, guarded, why, space.url)
    finally:
        with interrupt.shielded():  # a second Ctrl-C must not leave the login without its database or the reverse
            if kind == "mysql":
                _drop_or_say(kind, space, role, say)
                space.drop()
            else:
                space.drop()
                _drop_or_say(kind, space, role, say)


def _drop_or_say(kind: str, space: ScratchSpace, role: str, say: Callable[[str], None]) -> None:
    try:
        drop_login(kind, space.admin_url, role)
    except Exception as exc:  # noqa: BLE001 - the run's results stand; the login is named for `dbmatrix clean`
        interrupt.record_left(f"login {role} on {space.target.name}")
        say(f"{space.target.name}: could not drop the per-run login {role} ({scrub(exc)}); `dbmatrix clean` "
            "removes it once this process has exited")


def _cannot_log_in(space: ScratchSpace, role: str, password: str) -> str | None:
    """Why the new login cannot reach its scratch database (an authentication rule that lists users, an anonymous
    MariaDB account that shadows it), or None: it logs in, as itself."""
    try:
        with admin_connection(space.target.kind, space.url.set(username=role, password=password)) as conn:
            who = str(conn.exec_driver_sql("SELECT CURRENT_USER").scalar_one())
    except DriverError as exc:
        return f"the per-run login could not log in ({scrub(exc.message)})"
    if who.split("@")[0] != role:
        return f"the per-run login {role} logs in as {who}"
    return None


def _undo(space: ScratchSpace, role: str, say: Callable[[str], None]) -> None:
    """Give the scratch database back to the target's user (PostgreSQL) and drop the login that cannot be used."""
    if space.target.kind == "postgresql":
        with suppress(DriverError), admin_connection(space.target.kind, space.admin_url) as conn:
            conn.exec_driver_sql(f"ALTER DATABASE {_quote('postgresql', space.name)} OWNER TO CURRENT_USER")
    _drop_or_say(space.target.kind, space, role, say)


def _cannot(space: ScratchSpace) -> str | None:
    """Why no per-run login can be used for this space at all (None: try)."""
    target = space.target
    if target.kind not in ("postgresql", "mysql") or target.engine == "cockroachdb":
        return f"{target.engine or target.kind} has no per-run login here"
    if space.kind != "database":
        return "the scratch space is a schema in the target's own database"
    if target.pooler:
        return "a connection pooler in front of the server knows only its own users"
    return None


def _create(space: ScratchSpace, password: str) -> tuple[str | None, str, str | None]:
    """Make the login; returns (role, what is guarded, what is not). Raises DriverError when it cannot be made."""
    kind, name = space.target.kind, space.name
    with admin_connection(kind, space.admin_url) as conn:
        if kind == "mysql":
            conn.exec_driver_sql(f"CREATE USER {_account(name)} IDENTIFIED BY '{password}'")
            try:
                conn.exec_driver_sql(f"GRANT ALL PRIVILEGES ON {_quote(kind, name)}.* TO {_account(name)}")
            except BaseException:
                with suppress(Exception):
                    conn.exec_driver_sql(f"DROP USER IF EXISTS {_account(name)}")
                raise
            return name, "a per-run user with privileges on the scratch database only", None
        role, db = _quote(kind, name), _quote(kind, name)
        conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN PASSWORD '{password}' NOSUPERUSER NOCREATEDB NOCREATEROLE "
                             "NOREPLICATION")
        try:
            marker = marker_sql(kind, space.target.engine, "role", role, this_process(_run_of(name)))
            if marker:
                conn.exec_driver_sql(marker)
            # giving a database away needs membership in the new owner: a CREATEROLE user (not a superuser, as on
            # a managed service) has it only when it grants it to itself; dropped with the role
            conn.exec_driver_sql(f"GRANT {role} TO CURRENT_USER")
            conn.exec_driver_sql(f"ALTER DATABASE {db} OWNER TO {role}")
        except BaseException:
            with suppress(Exception):
                conn.exec_driver_sql(f"DROP ROLE IF EXISTS {role}")
            raise
        try:
            conn.exec_driver_sql(f"ALTER ROLE {role} SET session_preload_libraries = '{REFUSAL}'")
            conn.exec_driver_sql(f"ALTER ROLE {role} IN DATABASE {db} SET session_preload_libraries = 'plpgsql'")
        except DBAPIError as exc:  # in autocommit: the connection goes on
            first = (str(exc.orig).strip().splitlines() or [type(exc.orig).__name__])[0]
            return (name, "a per-run role, owner of the scratch database only",
                    f"other databases still accept its connections (PUBLIC's CONNECT; refusing them needs a "
                    f"superuser: {scrub(first)}), where it has only PUBLIC's privileges")
        return name, "a per-run role, owner of the scratch database only, refused by every other database", None


def drop_login(kind: str, admin_url: URL, name: str) -> None:
    """Drop the per-run role/user ``name`` (one dbmatrix made); a failure is left for ``dbmatrix clean``."""
    assert name.startswith("dbmatrix_"), "refusing to drop a login dbmatrix did not name"
    with admin_connection(kind, admin_url) as conn:
        if kind == "mysql":
            conn.exec_driver_sql(f"DROP USER IF EXISTS {_account(name)}")
        else:
            conn.exec_driver_sql(f"DROP ROLE IF EXISTS {_quote(kind, name)}")
