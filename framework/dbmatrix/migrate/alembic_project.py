"""A user's alembic project, driven through alembic's own API (Config, ScriptDirectory and its revision map,
command.*, EnvironmentContext).

dbmatrix offers the scratch database to env.py two ways, as pytest-alembic does: ``sqlalchemy.url`` is set on the
Config, and an open connection is put in ``config.attributes["connection"]``. The user's files are never edited.

The walk follows the revision graph as alembic does: revisions in a topological order of the map (parents and
``depends_on`` first), each upgraded by id, and undone alone by ``downgrade <rev>@<parent>``: alembic drops the
revisions that descend from the parent *within that revision's lineage*, which at that point of the walk is the
revision itself. A merge is undone down to its parents (both stay applied); a sibling branch that revises the same
parent stays applied (a plain ``downgrade <parent>`` would drop it too).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL, Connection, make_url

from ..errors import UsageError
from ..targets.urls import redact
from .catalog import committed_snapshot
from .connections import sync_engine
from .drift import load_models, model_drift
from .guard import ForeignDatabase, scratch_guard
from .locks import seeded_run
from .walk import MigrateOptions, Step, Walk, describe, walk_chain

# async env.py files build their engine with these; they need an async driver in the URL
_ASYNC_MARKERS = ("async_engine_from_config", "create_async_engine", "AsyncEngine")
_ASYNC_DRIVERS = {"postgresql": "postgresql+asyncpg", "mysql": "mysql+asyncmy", "sqlite": "sqlite+aiosqlite"}


def _ids(value: Any) -> tuple[str, ...]:
    """alembic's down_revision / depends_on (None, one id, or a tuple of ids) as a tuple."""
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


class AlembicProject:
    def __init__(self, ini: str | Path):
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
    def config(self, url: URL, connection: Connection | None = None, buffer: io.StringIO | None = None) -> Config:
        """A fresh Config pointed at ``url`` (and ``connection``, when given) for one command."""
        cfg = Config(str(self.ini), output_buffer=buffer, stdout=io.StringIO())
        if self.is_async:
            url = url.set(drivername=_ASYNC_DRIVERS[url.get_backend_name()])
        # configparser interpolates '%': a password with '%' must be doubled
        cfg.set_main_option("sqlalchemy.url", url.render_as_string(hide_password=False).replace("%", "%%"))
        if connection is not None:
            cfg.attributes["connection"] = connection
        return cfg

    def script(self, url: URL) -> ScriptDirectory:
        """alembic's ScriptDirectory (it also puts ``prepend_sys_path`` on sys.path)."""
        return ScriptDirectory.from_config(self.config(url))

    def steps(self, url: URL) -> list[Step]:
        """Every revision in a topological order of alembic's revision map, base first. Raises whatever alembic
        raises for a broken chain (caught by migrate.single_head)."""
        revs = list(self.script(url).walk_revisions("base", "heads"))  # heads first, each after all it needs
        revs.reverse()
        return [Step(r.revision, _ids(r.down_revision), str(r.path),
                     _ids(r.down_revision) + tuple(d for d in _ids(r.dependencies) if d not in _ids(r.down_revision)),
                     len(r.nextrev)) for r in revs]

    def revision_ids(self) -> list[str] | None:
        """Every revision id of the chain; None when alembic cannot read it (migrate.single_head says why)."""
        try:
            return [s.id for s in self.steps(make_url("sqlite://"))]
        except Exception:  # noqa: BLE001 - a broken chain is judged, not raised, here
            return None

    def branches(self, url: URL) -> dict[str, list[str]]:
        """Each head with the revisions of its own branch (from the revision after the branch point or base up to
        the head), base side first."""
        script = self.script(url)
        out = {}
        for head in script.get_heads():
            line, rev = [], script.get_revision(head)
            while rev is not None:
                line.append(rev.revision)
                down = _ids(rev.down_revision)
                parent = script.get_revision(down[0]) if len(down) == 1 else None
                if parent is None or len(parent.nextrev) > 1:
                    break
                rev = parent
            out[head] = line[::-1]
        return out

    # --- commands -----------------------------------------------------------------------------------------
    def upgrade(self, url: URL, conn: Connection, target: str) -> None:
        _finish(conn, lambda: command.upgrade(self.config(url, conn), target))

    def downgrade(self, url: URL, conn: Connection, target: str) -> None:
        _finish(conn, lambda: command.downgrade(self.config(url, conn), target))

    def offline_sql(self, url: URL, step: Step) -> str:
        """The SQL alembic's offline (``--sql``) mode renders for one revision: ``command.upgrade``'s own
        environment, started from everything the revision needs (a merge's parents, a dependency), so that only
        this revision is rendered."""
        buf = io.StringIO()
        cfg = self.config(url, buffer=buf)
        script = ScriptDirectory.from_config(cfg)

        def upgrade(rev: Any, context: Any) -> Any:
            return script._upgrade_revs(step.id, rev)  # what command.upgrade runs

        with EnvironmentContext(cfg, script, fn=upgrade, as_sql=True, starting_rev=step.needs or None,
                                destination_rev=step.id):
            script.run_env()
        return buf.getvalue()

    def load_models(self, spec: str) -> Any:
        """The --models MetaData, imported the way env.py would (alembic puts prepend_sys_path on sys.path)."""
        ScriptDirectory.from_config(Config(str(self.ini)))
        return load_models(spec)

    def current(self, conn: Connection) -> set[str]:
        heads = set(MigrationContext.configure(conn).get_current_heads())
        conn.commit()
        return heads

    # --- the two runs -------------------------------------------------------------------------------------
    def walk(self, url: URL, target: str, opts: MigrateOptions) -> Walk:
        """upgrade / downgrade / re-upgrade every revision on the scratch database at ``url`` (empty on entry)."""
        engine = sync_engine(url)
        url = engine.url
        walk = Walk(target=target, engine=engine.dialect.name, tool="alembic")
        try:
            with scratch_guard(url) as guard, engine.connect() as conn:
                chain = AlembicChain(self, url, conn)
                try:
                    walk.heads = list(self.script(url).get_heads())
                    if len(walk.heads) > 1:
                        walk.branches = self.branches(url)
                except Exception as exc:  # noqa: BLE001 - judged by migrate.single_head
                    walk.chain_error = describe(exc)
                    return walk

                def verify_first(step: Step) -> None:
                    if step.id not in chain.applied():
                        raise ForeignDatabase(
                            f"after upgrading {step.id}, the version table of dbmatrix's scratch database "
                            f"{redact(url)} does not show it: env.py migrated another database. Make env.py use "
                            "config.attributes['connection'] or the sqlalchemy.url dbmatrix sets")

                walk_chain(chain, lambda: committed_snapshot(conn), guard.take, walk, verify_first=verify_first)
                if walk.head is not None and opts.models is not None:
                    walk.extra["model_drift"] = model_drift(conn, opts.models)
        finally:
            engine.dispose()
        if opts.offline and walk.records:
            walk.extra["offline"] = self._offline_all(url, [r.step for r in walk.records])
        return walk

    def _offline_all(self, url: URL, steps: list[Step]) -> dict[str, Any]:
        """Each revision rendered by alembic's offline mode for ``url``'s dialect (or the exception it raised)."""
        out: dict[str, Any] = {}
        for s in steps:
            try:
                out[s.id] = self.offline_sql(url, s)
            except Exception as exc:  # noqa: BLE001
                out[s.id] = RuntimeError(describe(exc))
        return out

    def seeded(self, url: URL, opts: MigrateOptions) -> dict[str, Any]:
        engine = sync_engine(url)
        try:
            with scratch_guard(engine.url), engine.connect() as conn:
                chain = AlembicChain(self, engine.url, conn)
                return seeded_run(chain, conn, engine, opts.seed_rows, opts.lock_budget_ms, opts.observer_url)
        finally:
            engine.dispose()


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


class AlembicChain:
    """An alembic project bound to one scratch database and one open connection (the walk's Chain)."""

    tool = "alembic"
    version_table = "alembic_version"

    def __init__(self, project: AlembicProject, url: URL, conn: Connection):
        self.project, self.url, self.conn = project, url, conn

    def steps(self) -> list[Step]:
        return self.project.steps(self.url)

    def up(self, step: Step) -> None:
        self.project.upgrade(self.url, self.conn, step.id)

    def down(self, step: Step) -> None:
        """This revision alone: ``<rev>@<parent>`` limits alembic's downgrade to the revision's own lineage."""
        self.project.downgrade(self.url, self.conn, f"{step.id}@{step.parents[0] if step.parents else 'base'}")

    def applied(self) -> set[str]:
        return self.project.current(self.conn)

    def mark(self, step: Step) -> None:
        _finish(self.conn, lambda: command.stamp(self.project.config(self.url, self.conn), step.id))
