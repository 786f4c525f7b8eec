"""orders.currency NOT NULL with a server default

Revision ID: 0010_order_currency
Revises: 0009_drop_user_name
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_order_currency"
down_revision = "0009_drop_user_name"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("currency", sa.CHAR(3), nullable=False, server_default="EUR"))


def downgrade() -> None:
    op.drop_column("orders", "currency")
