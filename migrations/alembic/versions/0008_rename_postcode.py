"""rename addresses.postcode to postal_code

Revision ID: 0008_rename_postcode
Revises: 0007_orders_index
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_rename_postcode"
down_revision = "0007_orders_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.alter_column("addresses", "postcode", new_column_name="postal_code",
                    existing_type=sa.String(20), existing_nullable=True)


def downgrade() -> None:
    op.alter_column("addresses", "postal_code", new_column_name="postcode",
                    existing_type=sa.String(20), existing_nullable=True)
