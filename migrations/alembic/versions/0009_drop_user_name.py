"""drop users.name (display_name replaced it)

Revision ID: 0009_drop_user_name
Revises: 0008_rename_postcode
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_drop_user_name"
down_revision = "0008_rename_postcode"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_column("users", "name")


def downgrade() -> None:
    # the schema comes back; the dropped values do not
    op.add_column("users", sa.Column("name", sa.String(100), nullable=True))
