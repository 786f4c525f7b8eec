"""orders, two foreign keys and a check constraint

Revision ID: 0003_orders
Revises: 0002_addresses
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_orders"
down_revision = "0002_addresses"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("address_id", sa.Integer, nullable=True),
        sa.Column("total", sa.Numeric(12, 2), nullable=False, server_default=sa.text("0")),
        sa.Column("placed_at", sa.DateTime, nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_orders_user_id"),
        sa.ForeignKeyConstraint(["address_id"], ["addresses.id"], name="fk_orders_address_id", ondelete="SET NULL"),
        sa.CheckConstraint("total >= 0", name="ck_orders_total_nonneg"),
    )


def downgrade() -> None:
    op.drop_table("orders")
