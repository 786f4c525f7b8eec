"""tags (branch a)"""

import sqlalchemy as sa
from alembic import op

revision = "r2a_tags"
down_revision = "r1_items"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("tags", sa.Column("id", sa.Integer, primary_key=True), sa.Column("label", sa.String(30)))


def downgrade() -> None:
    op.drop_table("tags")
