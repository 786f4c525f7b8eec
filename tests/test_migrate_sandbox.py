"""Migrations are sandboxed by privilege where the engine allows: on SQLite, the scratch connection's authorizer
refuses ATTACH of any other file, so a migration cannot create or change a database outside scratch through it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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


def test_a_sqlite_migration_cannot_attach_a_file_outside_scratch(tmp_path: Path) -> None:
    """Before: SQLite ``ATTACH`` in a migration created a file outside scratch, unnoticed."""
    project = tmp_path / "project"
    (project / "versions").mkdir(parents=True)
    (project / "alembic.ini").write_text("[alembic]\nscript_location = %(here)s\n", encoding="utf-8")
    (project / "env.py").write_text(ENV_PY, encoding="utf-8")
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
