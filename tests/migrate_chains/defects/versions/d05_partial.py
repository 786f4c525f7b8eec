"""DEFECT partial failure on MariaDB: the column is committed, then the expression index fails (MariaDB has
no functional indexes), and the version table still says d04"""

import sqlalchemy as sa
from alembic import op

revision = "d05_partial"
down_revision = "d04_blocking_index"


def upgrade() -> None:
    op.add_column("accounts", sa.Column("note", sa.String(50)))
    op.execute("CREATE INDEX ix_accounts_lower_name ON accounts ((lower(name)))")


def downgrade() -> None:
    op.drop_index("ix_accounts_lower_name", table_name="accounts")
    op.drop_column("accounts", "note")
