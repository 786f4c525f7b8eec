"""users.display_name NOT NULL, backfilled from name or email (a data migration)

Revision ID: 0006_user_display_name
Revises: 0005_order_events_enum
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006_user_display_name"
down_revision = "0005_order_events_enum"
branch_labels = None
depends_on = None


def _users_before() -> sa.Table:
    # SQLite cannot ALTER a column: batch mode rebuilds the table from this definition, which also lets
    # the revision render offline (no reflection needed).
    return sa.Table(
        "users", sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(255), nullable=False),
        sa.Column("name", sa.String(100), nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False, server_default=sa.text("CURRENT_TIMESTAMP")),
        sa.Column("profile", sa.JSON().with_variant(postgresql.JSONB(), "postgresql")),
        sa.Column("display_name", sa.String(100), nullable=True),
        sa.Index("ix_users_email", "email", unique=True),
    )


def upgrade() -> None:
    op.add_column("users", sa.Column("display_name", sa.String(100), nullable=True))
    # The backfill runs in its own transaction: inside the ALTER's transaction it would keep users under
    # ACCESS EXCLUSIVE for the whole UPDATE (migrate.locks shows this on a seeded table).
    with op.get_context().autocommit_block():
        op.execute("UPDATE users SET display_name = COALESCE(name, email) WHERE display_name IS NULL")
    with op.batch_alter_table("users", copy_from=_users_before()) as batch:
        batch.alter_column("display_name", existing_type=sa.String(100), nullable=False)


def downgrade() -> None:
    op.drop_column("users", "display_name")
