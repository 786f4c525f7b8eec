"""items: the branch point (r2a_tags and r2b_notes both revise it)"""

import sqlalchemy as sa
from alembic import op

revision = "r1_items"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("items", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("name", sa.String(50), nullable=False),
                    sa.Column("qty", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    op.drop_table("items")
