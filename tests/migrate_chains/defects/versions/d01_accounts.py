"""accounts (fine)"""

import sqlalchemy as sa
from alembic import op

revision = "d01_accounts"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("balance", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("accounts")
