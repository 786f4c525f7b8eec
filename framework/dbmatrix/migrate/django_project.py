"""A Django project's migrations, driven through Django's own API (MigrationLoader and its graph,
MigrationExecutor, MigrationRecorder, ``loader.collect_sql`` as ``sqlmigrate`` uses it, ``makemigrations --check``).

Django is configured once from the user's settings module (dbmatrix.django_settings), and each run gets the
target's scratch database as its only database. One step is one migration (``app.name``), in a topological order
of the graph across the selected apps; it is applied alone (``executor.migrate`` with a one-migration plan) and
reversed alone, which is ``migrate <app> <predecessor>`` at that point of the walk. Migrations of other apps the
selected ones need (``contenttypes``, ``auth``...) are applied first and not judged.

A RunPython operation's statements are data, not schema: they are counted (rows changed) and kept out of the
statements ``migrate.offline_sql`` compares with ``sqlmigrate``, which prints no SQL for them.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL

from ..django_settings import configure, scratch_databases, settings_module_of
from ..errors import UsageError
from ..targets.urls import kind_of
from .catalog import committed_snapshot
from .connections import bound_session, sync_engine
from .guard import ForeignDatabase
from .locks import seeded_run
from .walk import MigrateOptions, Step, Walk, describe, walk_chain

Key = tuple[str, str]
_DML = ("insert", "update", "delete")


def _id(key: Key) -> str:
    return f"{key[0]}.{key[1]}"


class DjangoProject:
    def __init__(self, spec: str, apps: list[str] | None = None, pythonpath: list[Path] | None = None):
        self.settings_module = settings_module_of(spec)
        paths = list(pythonpath or [])
        if spec.endswith(".py"):
            paths.append(Path(spec).resolve().parent)  # manage.py's directory is where its settings import from
        configure(self.settings_module, paths)
        from django.apps import apps as registry
        from django.db.migrations.loader import MigrationLoader

        try:
            self._graph: Any = MigrationLoader(None, ignore_no_migrations=True).graph
        except Exception:  # noqa: BLE001 - a broken graph is the user's finding: the walk names it (single_leaf)
            self._graph = None
        project_apps = [c.label for c in registry.get_app_configs() if not c.name.startswith("django.")]
        with_migrations = sorted({k[0] for k in self._graph.nodes}) if self._graph is not None else project_apps
        if apps:
            for label in apps:
                try:
                    registry.get_app_config(label)
                except LookupError:
                    raise UsageError(f"--app {label}: no installed app with that label") from None
                if label not in with_migrations:
                    raise UsageError(f"--app {label}: the app has no migrations")
            self.apps = list(apps)
        else:
            # the project's own apps: Django's contrib apps are prerequisites, not the chain under test
            self.apps = [a for a in with_migrations if a in project_apps]
        if not self.apps:
            raise UsageError(f"--django {spec}: no installed app of the project has migrations")

    def step_ids(self) -> list[str]:
        """The walk's migrations in its order, read from the files alone (pytest parametrizes its cells by them)."""
        return [_id(k) for k in walk_order(self._graph, self.apps)[0]] if self._graph is not None else []

    def revision_ids(self) -> list[str] | None:
        """Every migration id ("app.name") a waiver may name; None when Django cannot build the graph (single_leaf
        says why)."""
        return self.step_ids() if self._graph is not None else None

    def load_models(self, spec: str) -> Any:
        raise UsageError("--models is for alembic and yoyo chains; Django's model_drift is makemigrations --check")

    # --- the two runs -------------------------------------------------------------------------------------
    def walk(self, url: URL, target: str, opts: MigrateOptions) -> Walk:
        engine = sync_engine(url)
        walk = Walk(target=target, engine=engine.dialect.name, tool="django")
        try:
            with scratch_databases(engine.url), _bounded(kind_of(url)), engine.connect() as conn:
                try:
                    chain = DjangoChain(self.apps)
                    walk.extra["leaves"] = chain.leaves()
                    chain.prepare()
                except ForeignDatabase:
                    raise
                except Exception as exc:  # noqa: BLE001 - a graph Django cannot build is the user's finding
                    walk.chain_error = describe(exc)
                    return walk
                walk.extra["atomic"] = chain.atomic_notes()
                chain.offline = {} if opts.offline else None

                def verify_first(step: Step) -> None:
                    if step.id not in chain.applied():
                        raise ForeignDatabase(f"django_migrations in dbmatrix's scratch database does not show "
                                              f"{step.id} after applying it")

                with chain.recording():
                    walk_chain(chain, lambda: committed_snapshot(conn), chain.take, walk, verify_first=verify_first)
                if chain.offline is not None:
                    walk.extra["offline"] = chain.offline
                if walk.head is not None:
                    walk.extra["model_drift"] = chain.drift()
        finally:
            engine.dispose()
        return walk

    def seeded(self, url: URL, opts: MigrateOptions) -> dict[str, Any]:
        """The common seeded run (locks, rewrites, duration), then the chain reversed on the same rows: each
        RunPython operation's rows changed forward and backward."""
        engine = sync_engine(url)
        try:
            with scratch_databases(engine.url), _bounded(kind_of(url)), engine.connect() as conn:
                chain = DjangoChain(self.apps)
                chain.prepare()
                with chain.recording():
                    out = seeded_run(chain, conn, engine, opts.seed_rows, opts.lock_budget_ms, opts.observer_url)
                    if not any(r.get("error") for r in out["revisions"]):
                        chain.reverse_all()
                out["data"] = chain.data
                return out
        finally:
            engine.dispose()


@contextmanager
def _bounded(kind: str) -> Iterator[None]:
    """Every connection Django opens gets the engine's lock and statement bounds (as alembic's and yoyo's do)."""
    from django.db.backends.signals import connection_created

    def bound(sender: Any, connection: Any, **kw: Any) -> None:
        bound_session(kind, connection.connection)

    connection_created.connect(bound, weak=False)
    try:
        yield
    finally:
        connection_created.disconnect(bound)


def walk_order(graph: Any, apps: list[str]) -> tuple[list[Key], list[Key]]:
    """(walked, prerequisites): every migration the selected apps' leaves need, dependencies first. A migration of
    another app is walked when it needs a selected one (it cannot be applied before it), else applied first."""
    plan: list[Key] = []
    for app in apps:
        for leaf in graph.leaf_nodes(app):
            plan += [k for k in graph.forwards_plan(leaf) if k not in plan]
    walked: list[Key] = []
    for key in plan:
        if key[0] in apps or any(p.key in walked for p in graph.node_map[key].parents):
            walked.append(key)
    return walked, [k for k in plan if k not in walked]


class DjangoChain:
    """The selected apps' migrations on Django's ``default`` connection (the scratch database): the walk's Chain."""

    tool = "django"
    version_table = "django_migrations"

    def __init__(self, apps: list[str]):
        from django.db import connection
        from django.db.migrations.loader import MigrationLoader

        self.connection = connection
        self.apps = apps
        self.loader = MigrationLoader(connection, ignore_no_migrations=True)
        self.graph = self.loader.graph
        self.offline: dict[str, Any] | None = None  # step id -> sqlmigrate's SQL (walk only)
        # step id -> {"forward"/"backward": {"rows": n, "statements": n}} for migrations with RunPython
        self.data: dict[str, dict[str, Any]] = {}
        self._statements: list[str] = []
        self._in_python: dict[str, Any] | None = None  # the counts of the RunPython running now
        self._hook: Callable[[], None] | None = None
        self._plan, self._prerequisites = walk_order(self.graph, apps)

    # --- the graph ----------------------------------------------------------------------------------------
    def leaves(self) -> dict[str, list[str]]:
        return {app: sorted(n for _, n in self.graph.leaf_nodes(app)) for app in self.apps}

    def steps(self) -> list[Step]:
        out = []
        for key in self._plan:
            node = self.graph.node_map[key]
            parents = tuple(_id(p.key) for p in node.parents if p.key in self._plan)
            module = sys.modules.get(self.graph.nodes[key].__module__)
            path = getattr(module, "__file__", None) or self.graph.nodes[key].__module__
            out.append(Step(_id(key), parents, str(path), parents,
                            max(1, sum(1 for c in node.children if c.key in self._plan))))
        return out

    def migration(self, step_id: str) -> Any:
        app, _, name = step_id.partition(".")
        return self.graph.nodes[(app, name)]

    def atomic_notes(self) -> dict[str, str]:
        """Per migration, whether a failure halfway can be rolled back here (migrate.partial_failure says why)."""
        ddl = self.connection.features.can_rollback_ddl
        out = {}
        for key in self._plan:
            atomic = self.graph.nodes[key].atomic
            out[_id(key)] = ("atomic = True" + ("" if ddl else f", but {self.connection.vendor} cannot roll back DDL"
                                                 ", so Django commits each statement")) if atomic else "atomic = False"
        return out

    # --- applying -----------------------------------------------------------------------------------------
    def _executor(self) -> Any:
        from django.db.migrations.executor import MigrationExecutor

        executor = MigrationExecutor(self.connection)  # a fresh loader: what django_migrations says now
        self.loader, self.graph = executor.loader, executor.loader.graph
        return executor

    def prepare(self) -> None:
        """Create django_migrations (its PostgreSQL sequence belongs to no migration), then apply the prerequisites
        (other apps' migrations the selected ones need), forward, in order."""
        from django.db.migrations.recorder import MigrationRecorder

        MigrationRecorder(self.connection).ensure_schema()
        if self._prerequisites:
            executor = self._executor()
            executor.migrate(self._prerequisites, plan=[(self.graph.nodes[k], False) for k in self._prerequisites])

    def _run(self, step: Step, backwards: bool) -> None:
        executor = self._executor()
        migration = self.migration(step.id)
        with self._counting(migration, "backward" if backwards else "forward"):
            executor.migrate([], plan=[(migration, backwards)])

    def up(self, step: Step) -> None:
        if self.offline is not None and step.id not in self.offline:
            self.offline[step.id] = self._sqlmigrate(step)
        self._run(step, False)

    def down(self, step: Step) -> None:
        from django.db.migrations.exceptions import IrreversibleError

        migration = self.migration(step.id)
        for i, op in enumerate(migration.operations, 1):
            if not op.reversible:
                kind = type(op).__name__
                what = f"{kind} without reverse_code" if kind == "RunPython" else (
                    f"{kind} without reverse_sql" if kind == "RunSQL" else kind)
                raise IrreversibleError(f"{step.id} is irreversible: operation {i} ({what}) cannot be reversed")
        self._run(step, True)

    def applied(self) -> set[str]:
        from django.db.migrations.recorder import MigrationRecorder

        return {_id(k) for k in MigrationRecorder(self.connection).applied_migrations() if k in self._plan}

    def mark(self, step: Step) -> None:
        from django.db.migrations.recorder import MigrationRecorder

        app, _, name = step.id.partition(".")
        MigrationRecorder(self.connection).record_applied(app, name)

    def reverse_all(self) -> None:
        """Unapply the walked migrations, last first, down to the first irreversible one (seeded run: the data
        migrations' backward counts)."""
        for step in reversed(self.steps()):
            try:
                self.down(step)
            except Exception:  # noqa: BLE001 - an irreversible or failing reverse ends the reverse pass
                return

    # --- SQL ----------------------------------------------------------------------------------------------
    def _sqlmigrate(self, step: Step) -> str | Exception:
        """What ``manage.py sqlmigrate app name`` prints (its own steps, without its conflict refusal)."""
        migration = self.migration(step.id)
        try:
            sql = self.loader.collect_sql([(migration, False)])
        except Exception as exc:  # noqa: BLE001
            return RuntimeError(describe(exc))
        if migration.atomic and self.connection.features.can_rollback_ddl:
            sql = [self.connection.ops.start_transaction_sql(), *sql, self.connection.ops.end_transaction_sql()]
        return "\n".join(sql) + "\n"

    def drift(self) -> list[str]:
        """``makemigrations --check --dry-run`` for the selected apps: the operations it would write."""
        from django.core.management import call_command
        from django.core.management.base import CommandError

        found = []
        for app in self.apps:  # one app at a time: a conflict in one app does not hide drift in another
            out = io.StringIO()
            try:
                call_command("makemigrations", app, check=True, dry_run=True, stdout=out, stderr=io.StringIO(),
                             interactive=False, verbosity=1)
            except SystemExit:
                pass  # --check exits 1 when there are changes; the output names them
            except CommandError as exc:
                found.append(f"{app}: makemigrations --check refused: {' '.join(str(exc).split())}")
                continue
            found += [f"{app}: {line.strip()}" for line in out.getvalue().splitlines() if line.startswith("    ")]
        return found

    @contextmanager
    def recording(self) -> Iterator[None]:
        """Record every statement Django runs on the scratch connection (RunPython's apart, and counted)."""
        with self.connection.execute_wrapper(self._wrapper):
            yield

    def _wrapper(self, execute: Any, sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
        counts = self._in_python
        if counts is None:
            self._statements.append(sql)  # before it runs: a statement that fails is one the migration sent
        result = execute(sql, params, many, context)
        if counts is not None:
            counts["statements"] += 1
            if sql.lstrip().lower().startswith(_DML):
                counts["rows"] += max(context["cursor"].rowcount or 0, 0)
        if self._hook is not None:
            self._hook()
        return result

    def take(self) -> list[str]:
        out, self._statements = self._statements, []
        return out

    @contextmanager
    def _counting(self, migration: Any, direction: str) -> Iterator[None]:
        """While ``migration`` runs, its RunPython operations' statements go to this migration's data counts."""
        from django.db.migrations.operations.special import RunPython

        ops = [op for op in migration.operations if isinstance(op, RunPython)]
        if not ops:
            yield
            return
        counts = self.data.setdefault(_id((migration.app_label, migration.name)), {})
        counts[direction] = {"rows": 0, "statements": 0}
        originals = []
        for op in ops:
            for name in ("database_forwards", "database_backwards"):
                original = getattr(op, name)
                originals.append((op, name))
                setattr(op, name, self._in_data(original, counts[direction]))
        try:
            yield
        finally:
            for op, name in originals:
                delattr(op, name)  # the instance attribute goes, the class's method shows again

    def _in_data(self, original: Callable[..., Any], counts: dict[str, int]) -> Callable[..., Any]:
        def run(*args: Any, **kw: Any) -> Any:
            self._in_python = counts
            try:
                return original(*args, **kw)
            finally:
                self._in_python = None
        return run

    @contextmanager
    def observe(self, hook: Callable[[], None]) -> Iterator[None]:
        """The seeded run's lock probe: called after each statement Django executes."""
        self._hook = hook
        try:
            yield
        finally:
            self._hook = None
