"""A user's alembic project, driven through alembic's own API (Config, ScriptDirectory, command.*).

dbmatrix offers the scratch database to env.py two ways, as pytest-alembic does: ``sqlalchemy.url`` is set on the
Config, and an open connection is put in ``config.attributes["connection"]``. The user's files are never edited.
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, Connection

from ..errors import UsageError

# async env.py files build their engine with these; they need an async driver in the URL
_ASYNC_MARKERS = ("async_engine_from_config", "create_async_engine", "AsyncEngine")
_ASYNC_DRIVERS = {"postgresql": "postgresql+asyncpg", "mysql": "mysql+asyncmy", "sqlite": "sqlite+aiosqlite"}


@dataclass(frozen=True)
class Revision:
    revision: str
    down: str | None  # None: the first revision
    path: str
    doc: str

    @property
    def down_target(self) -> str:
        return self.down or "base"


class AlembicProject:
    def __init__(self, ini: str | Path):
        from alembic.config import Config

        self.ini = Path(ini).resolve()
        if not self.ini.is_file():
            raise UsageError(f"alembic ini not found: {ini}")
        try:
            cfg = Config(str(self.ini))
            location = cfg.get_main_option("script_location")
        except Exception as exc:  # noqa: BLE001 - configparser errors of many kinds: one line
            first = (str(exc).strip().splitlines() or [""])[0]
            raise UsageError(f"cannot read {ini}: {type(exc).__name__}: {first}") from None
        if not location:
            raise UsageError(f"{ini} has no script_location in [alembic]")
        self.script_dir = Path(location) if Path(location).is_absolute() else self.ini.parent / location
        if not self.script_dir.is_dir() and ":" not in location:
            raise UsageError(f"{ini}: script_location {location} is not a directory")
        env = self.script_dir / "env.py"
        self.is_async = env.is_file() and any(m in env.read_text(errors="replace") for m in _ASYNC_MARKERS)

    # --- alembic objects ----------------------------------------------------------------------------------
    def config(self, url: URL, connection: Connection | None = None, buffer: io.StringIO | None = None) -> Any:
        """A fresh Config pointed at ``url`` (and ``connection``, when given) for one command."""
        from alembic.config import Config

        cfg = Config(str(self.ini), output_buffer=buffer, stdout=io.StringIO())
        if self.is_async:
            url = url.set(drivername=_ASYNC_DRIVERS[url.get_backend_name()])
        # configparser interpolates '%': a password with '%' must be doubled
        cfg.set_main_option("sqlalchemy.url", url.render_as_string(hide_password=False).replace("%", "%%"))
        if connection is not None:
            cfg.attributes["connection"] = connection
        return cfg

    def script(self, url: URL) -> Any:
        """alembic's ScriptDirectory (it also puts ``prepend_sys_path`` on sys.path)."""
        from alembic.script import ScriptDirectory

        return ScriptDirectory.from_config(self.config(url))

    def heads(self, url: URL) -> list[str]:
        return list(self.script(url).get_heads())

    def revisions(self, url: URL) -> list[Revision]:
        """Base to head. Raises whatever alembic raises for a broken chain (caught by migrate.single_head)."""
        script = self.script(url)
        revs = list(script.walk_revisions("base", "heads"))
        revs.reverse()
        out = []
        for r in revs:
            down = r.down_revision
            if isinstance(down, tuple | list):
                down = down[0] if down else None
            out.append(Revision(r.revision, down, str(r.path), (r.doc or "").strip()))
        return out

    # --- commands -----------------------------------------------------------------------------------------
    def upgrade(self, url: URL, conn: Connection, target: str) -> None:
        from alembic import command

        _finish(conn, lambda: command.upgrade(self.config(url, conn), target))

    def downgrade(self, url: URL, conn: Connection, target: str) -> None:
        from alembic import command

        _finish(conn, lambda: command.downgrade(self.config(url, conn), target))

    def offline_sql(self, url: URL, rev: Revision, *, downgrade: bool = False) -> str:
        """The SQL alembic's offline (``--sql``) mode renders for one revision."""
        from alembic import command

        buf = io.StringIO()
        cfg = self.config(url, buffer=buf)
        if downgrade:
            command.downgrade(cfg, f"{rev.revision}:{rev.down_target}", sql=True)
        else:
            command.upgrade(cfg, f"{rev.down}:{rev.revision}" if rev.down else rev.revision, sql=True)
        return buf.getvalue()

    def load_models(self, spec: str) -> Any:
        """The --models MetaData, imported the way env.py would (alembic puts prepend_sys_path on sys.path)."""
        from alembic.config import Config
        from alembic.script import ScriptDirectory

        ScriptDirectory.from_config(Config(str(self.ini)))
        return load_models(spec, self.ini.parent)

    def walk(self, url: URL, target: str, opts: Any) -> Any:
        from .runner import walk_alembic

        return walk_alembic(self, url, target, opts)

    def seeded(self, url: URL, opts: Any) -> dict[str, Any]:
        from .guard import scratch_guard
        from .locks import seeded_run
        from .runner import sync_engine

        engine = sync_engine(url)
        try:
            with scratch_guard(engine.url), engine.connect() as conn:
                chain = AlembicChain(self, engine.url, conn)
                return seeded_run(chain, conn, engine, opts.seed_rows, opts.lock_budget_ms)
        finally:
            engine.dispose()

    def current(self, conn: Connection) -> set[str]:
        from alembic.runtime.migration import MigrationContext

        heads = set(MigrationContext.configure(conn).get_current_heads())
        conn.commit()
        return heads


def _finish(conn: Connection, run: Any) -> None:
    """Run an alembic command on ``conn``, committing what env.py left open (or rolling back on error)."""
    try:
        run()
    except BaseException:
        if conn.in_transaction():
            conn.rollback()
        raise
    if conn.in_transaction():
        conn.commit()


def load_models(spec: str, project_dir: Path) -> Any:
    """``package.module:ATTR`` or ``path/to/file.py:ATTR`` -> a MetaData (a declarative Base gives its .metadata)."""
    import sqlalchemy as sa

    target, sep, attr = spec.rpartition(":")
    if not sep or not target or not attr:
        raise UsageError(f"--models {spec!r}: expected MODULE:ATTR or path/to/file.py:ATTR")
    try:
        if target.endswith(".py") or "/" in target:
            path = Path(target)
            path = path if path.is_absolute() else Path.cwd() / path
            if not path.is_file():
                raise UsageError(f"--models: file not found: {target}")
            name = "dbmatrix_models_" + re.sub(r"\W", "_", path.stem)
            mod_spec = importlib.util.spec_from_file_location(name, path)
            assert mod_spec is not None and mod_spec.loader is not None
            module = importlib.util.module_from_spec(mod_spec)
            sys.modules[name] = module
            mod_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(target)
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's module failed to import: one line
        raise UsageError(f"--models {spec!r}: cannot import {target}: {type(exc).__name__}: {exc}") from None
    obj = getattr(module, attr, None)
    metadata = getattr(obj, "metadata", obj)
    if not isinstance(metadata, sa.MetaData):
        raise UsageError(f"--models {spec!r}: {attr} is not a SQLAlchemy MetaData or declarative Base")
    return metadata


class AlembicChain:
    """An alembic project bound to one scratch database and one open connection (the walk's Chain)."""

    tool = "alembic"
    version_table = "alembic_version"

    def __init__(self, project: AlembicProject, url: URL, conn: Connection):
        self.project, self.url, self.conn = project, url, conn

    def steps(self) -> list[Any]:
        from .walk import Step

        return [Step(r.revision, r.down, r.path) for r in self.project.revisions(self.url)]

    def up(self, step: Any) -> None:
        self.project.upgrade(self.url, self.conn, step.id)

    def down(self, step: Any) -> None:
        self.project.downgrade(self.url, self.conn, step.down or "base")

    def applied(self) -> set[str]:
        return self.project.current(self.conn)

    def mark(self, step: Any) -> None:
        from alembic import command

        _finish(self.conn, lambda: command.stamp(self.project.config(self.url, self.conn), step.id))
