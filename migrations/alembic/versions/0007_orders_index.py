"""a composite index on orders (placed_at, user_id), built CONCURRENTLY on PostgreSQL (writes go on)

Revision ID: 0007_orders_index
Revises: 0006_user_display_name
"""

from alembic import op

revision = "0007_orders_index"
down_revision = "0006_user_display_name"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # CREATE INDEX CONCURRENTLY cannot run inside a transaction
    with op.get_context().autocommit_block():
        op.create_index("ix_orders_placed_user", "orders", ["placed_at", "user_id"], postgresql_concurrently=True)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index("ix_orders_placed_user", table_name="orders", postgresql_concurrently=True)
