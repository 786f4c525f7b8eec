"""A yoyo migrations directory, driven through yoyo's own API (``get_backend``, ``read_migrations``,
``apply_one`` / ``rollback_one`` under ``backend.lock()``).

yoyo connects with the URI dbmatrix gives it (the scratch database); there is no env.py to redirect it.
Its bookkeeping (``_yoyo_migrations``, ``_yoyo_log``, ``yoyo_lock``) is read back after the walk.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL
from yoyo import get_backend, read_migrations

from ..errors import UsageError
from ..targets.urls import kind_of
from .catalog import committed_snapshot
from .connections import bound_session, sync_engine
from .drift import load_models, model_drift
from .guard import ForeignDatabase
from .locks import ObservedCursor, seeded_run
from .walk import MigrateOptions, Step, Walk, describe, walk_chain

# SQLAlchemy backend name -> yoyo URI scheme (yoyo's "mysql" is PyMySQL)
_SCHEMES = {"postgresql": "postgresql+psycopg", "mysql": "mysql", "sqlite": "sqlite"}


def yoyo_uri(url: URL) -> str:
    backend = url.get_backend_name()
    if backend not in _SCHEMES:
        raise UsageError(f"yoyo cannot migrate {backend} targets")
    return url.set(drivername=_SCHEMES[backend]).render_as_string(hide_password=False)


class YoyoChain:
    tool = "yoyo"
    version_table = "_yoyo_migration"

    def __init__(self, directory: Path, url: URL):
        self.directory = directory
        self.kind = kind_of(url)
        self.backend = get_backend(yoyo_uri(url))
        bound_session(self.kind, self.backend.connection)
        self._migrations: Any = None
        self._hook: Any = None  # called after each statement of a migration (the seeded run's lock probe)
        # yoyo runs each migration on a fresh connection (backend.copy()): bound it, and observe it when asked
        original_copy = self.backend.copy
        self.backend.copy = lambda: self._prepared(original_copy())

    def migrations(self) -> Any:
        if self._migrations is None:
            self._migrations = read_migrations(str(self.directory))
            for m in self._migrations:
                m.load()  # a broken file fails here, named by yoyo's BadMigration
        return self._migrations

    def steps(self) -> list[Step]:
        out: list[Step] = []
        for m in self.migrations():  # yoyo's order: dependencies first, then file order (a line for the walk)
            parents = (out[-1].id,) if out else ()
            out.append(Step(m.id, parents, m.path, parents))
        return out

    def _one(self, step: Step) -> Any:
        return next(m for m in self.migrations() if m.id == step.id)

    def up(self, step: Step) -> None:
        with self.backend.lock():
            self.backend.apply_one(self._one(step))

    def down(self, step: Step) -> None:
        with self.backend.lock():
            self.backend.rollback_one(self._one(step))

    def mark(self, step: Step) -> None:
        with self.backend.lock():
            self.backend.mark_one(self._one(step))

    def applied(self) -> set[str]:
        hashes = set(self.backend.get_applied_migration_hashes())
        return {m.id for m in self.migrations() if m.hash in hashes}

    def _prepared(self, copy: Any) -> Any:
        bound_session(self.kind, copy.connection)
        if self._hook is not None:
            original, hook = copy.cursor, self._hook
            copy.cursor = lambda: ObservedCursor(original(), hook)
        return copy

    @contextmanager
    def observe(self, hook: Any) -> Iterator[None]:
        """Call ``hook`` after each statement yoyo runs for a migration (on the connection it opens for it)."""
        self._hook = hook
        try:
            yield
        finally:
            self._hook = None

    def bookkeeping(self) -> dict[str, Any]:
        """What yoyo's own tables say after the walk: lock rows left, log entries by operation."""
        b = self.backend
        cur = b.connection.cursor()
        cur.execute(f"SELECT COUNT(*) FROM {b.lock_table_quoted}")
        locks = cur.fetchone()[0]
        cur.execute(f"SELECT operation, COUNT(*) FROM {b.log_table_quoted} GROUP BY operation")
        log = {op: n for op, n in cur.fetchall()}
        b.connection.commit()
        return {"lock_rows": locks, "log": log}

    def close(self) -> None:
        self.backend.connection.close()


class YoyoProject:
    def __init__(self, directory: str | Path):
        self.directory = Path(directory).resolve()
        if not self.directory.is_dir():
            raise UsageError(f"yoyo migrations directory not found: {directory}")
        if not any(p.suffix in (".sql", ".py") for p in self.directory.iterdir()):
            raise UsageError(f"{directory} has no yoyo migrations (*.sql or *.py)")

    def revision_ids(self) -> list[str] | None:
        """Every migration id in the directory; None when yoyo cannot read it (migrate.single_head says why)."""
        try:
            return [m.id for m in read_migrations(str(self.directory))]
        except Exception:  # noqa: BLE001 - a broken chain is judged, not raised, here
            return None

    def sql_by_revision(self) -> dict[str, str]:
        """The SQL of each plain-SQL migration as yoyo runs it (inside BEGIN/COMMIT unless the file says
        ``-- transactional: false``): what ``migrate.lint`` reads for yoyo chains."""
        out = {}
        for path in sorted(self.directory.glob("*.sql")):
            if path.name.endswith(".rollback.sql"):
                continue
            text = path.read_text(encoding="utf-8")
            transactional = not re.search(r"^\s*--\s*transactional\s*:\s*false", text, re.I | re.M)
            out[path.stem] = f"BEGIN;\n{text}\nCOMMIT;\n" if transactional else text
        return out

    def load_models(self, spec: str) -> Any:
        return load_models(spec)

    def walk(self, url: URL, target: str, opts: MigrateOptions) -> Walk:
        engine = sync_engine(url)
        walk = Walk(target=target, engine=engine.dialect.name, tool="yoyo")
        try:
            chain = YoyoChain(self.directory, url)
        except Exception as exc:  # noqa: BLE001 - cannot connect or create yoyo's tables: the user's finding
            walk.chain_error = describe(exc)
            return walk
        try:
            with engine.connect() as conn:
                def verify_first(step: Step) -> None:
                    if step.id not in chain.applied():
                        raise ForeignDatabase(f"yoyo's version table does not show {step.id} after applying it")

                try:
                    chain.migrations()
                    walk.heads = [chain.steps()[-1].id] if chain.steps() else []
                except Exception as exc:  # noqa: BLE001
                    walk.chain_error = describe(exc)
                    return walk
                walk_chain(chain, lambda: committed_snapshot(conn), lambda: [], walk, verify_first=verify_first)
                walk.extra["bookkeeping"] = chain.bookkeeping()
                if walk.head is not None and opts.models is not None:
                    walk.extra["model_drift"] = model_drift(conn, opts.models)
        finally:
            chain.close()
            engine.dispose()
        return walk

    def seeded(self, url: URL, opts: MigrateOptions) -> dict[str, Any]:
        engine = sync_engine(url)
        chain = YoyoChain(self.directory, url)
        try:
            with engine.connect() as conn:
                return seeded_run(chain, conn, engine, opts.seed_rows, opts.lock_budget_ms, opts.observer_url)
        finally:
            chain.close()
            engine.dispose()

