"""addresses, a foreign key to users

Revision ID: 0002_addresses
Revises: 0001_users
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_addresses"
down_revision = "0001_users"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "addresses",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("line1", sa.String(200), nullable=False),
        sa.Column("city", sa.String(100), nullable=True),
        sa.Column("postcode", sa.String(20), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_addresses_user_id", ondelete="CASCADE"),
    )
    op.create_index("ix_addresses_user_id", "addresses", ["user_id"])


def downgrade() -> None:
    # the index goes with the table (MariaDB refuses DROP INDEX while the foreign key uses it)
    op.drop_table("addresses")
