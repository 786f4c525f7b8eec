"""Data-migration tests on every target: the ``dbm_alembic_runner`` fixture (pytest_plugin.py registers it), shaped
like pytest-alembic's ``alembic_runner``: bring a fresh scratch database to revision X, insert rows, upgrade to Y,
assert on the rows. One scratch database per test and target, created by dbmatrix and dropped after the test.

The alembic commands are alembic's own (``command.upgrade`` / ``downgrade``) on the user's alembic.ini, with the
scratch database offered to env.py the way ``dbmatrix migrate`` offers it, under the scratch guard (an env.py that
connects elsewhere is refused). The guard is on only while a command runs: the test's own queries are its own.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL, Connection

from .alembic_project import AlembicProject, _ids
from .command import tool_logging
from .guard import scratch_guard


class AlembicRunner:
    """One target's scratch database and the user's chain: ``migrate_up_to``, ``insert_into``, ``rows`` ..."""

    def __init__(self, project: AlembicProject, url: URL, connection: Connection, target: str,
                 tool_log: bool = False):
        self.project, self.url, self.connection, self.target = project, url, connection, target
        self.tool_log = tool_log

    # --- moving along the chain (alembic's revision syntax: ids, "heads", "+1", "-1", "base") ------------
    def migrate_up_to(self, revision: str) -> None:
        """``alembic upgrade <revision>`` (``"heads"`` for the whole chain)."""
        self._run(lambda: self.project.upgrade(self.url, self.connection, revision))

    def migrate_up_before(self, revision: str) -> None:
        """Upgrade to everything ``revision`` revises (its parents), so that it is the next to run."""
        script = ScriptDirectory.from_config(self.project.config(self.url))
        for parent in _ids(script.get_revision(revision).down_revision):
            self.migrate_up_to(parent)

    def migrate_up_one(self) -> None:
        self.migrate_up_to("+1")

    def migrate_down_to(self, revision: str) -> None:
        """``alembic downgrade <revision>`` (``"base"`` for everything)."""
        self._run(lambda: self.project.downgrade(self.url, self.connection, revision))

    def migrate_down_one(self) -> None:
        self.migrate_down_to("-1")

    @property
    def current(self) -> set[str]:
        """The revisions the version table says are applied."""
        return self.project.current(self.connection)

    # --- data -------------------------------------------------------------------------------------------
    def insert_into(self, table: str, data: dict[str, Any] | list[dict[str, Any]]) -> None:
        """Insert rows into ``table`` as it is at the current revision (reflected now), committed."""
        rows = [data] if isinstance(data, dict) else list(data)
        self._once(lambda: self.connection.execute(self._table(table).insert(), rows))

    def rows(self, table: str) -> list[dict[str, Any]]:
        """Every row of ``table`` as dicts, in primary-key order (all columns' order when it has none)."""
        def read() -> list[dict[str, Any]]:
            t = self._table(table)
            order = list(t.primary_key.columns) or list(t.columns)
            return [dict(r._mapping) for r in self.connection.execute(sa.select(t).order_by(*order))]

        # committed at once: an open read would hold locks (MariaDB's metadata lock) the next upgrade waits for
        return self._once(read)

    def _table(self, name: str) -> sa.Table:
        return sa.Table(name, sa.MetaData(), autoload_with=self.connection)

    def _once(self, work: Any) -> Any:
        """``work()`` in a transaction of its own: committed, or rolled back when it raises."""
        try:
            out = work()
        except BaseException:
            self.connection.rollback()
            raise
        self.connection.commit()
        return out

    def _run(self, command: Any) -> None:
        with tool_logging(self.tool_log), scratch_guard(self.url):
            command()
