"""tags.color (branch a)"""

import sqlalchemy as sa
from alembic import op

revision = "r3a_tag_color"
down_revision = "r2a_tags"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tags", sa.Column("color", sa.String(7)))


def downgrade() -> None:
    with op.batch_alter_table("tags") as batch:  # batch: SQLite rebuilds the table, the others ALTER
        batch.drop_column("color")
