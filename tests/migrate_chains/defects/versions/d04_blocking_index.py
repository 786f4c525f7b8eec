"""DEFECT non-concurrent index: CREATE INDEX blocks writes to accounts while it builds"""

from alembic import op

revision = "d04_blocking_index"
down_revision = "d03_rewrite"


def upgrade() -> None:
    op.create_index("ix_accounts_name", "accounts", ["name"])


def downgrade() -> None:
    op.drop_index("ix_accounts_name", table_name="accounts")
