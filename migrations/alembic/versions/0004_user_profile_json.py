"""users.profile: a JSON document (jsonb on PostgreSQL)

Revision ID: 0004_user_profile_json
Revises: 0003_orders
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004_user_profile_json"
down_revision = "0003_orders"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("profile", sa.JSON().with_variant(postgresql.JSONB(), "postgresql")))


def downgrade() -> None:
    op.drop_column("users", "profile")
