"""notes (branch b)"""

import sqlalchemy as sa
from alembic import op

revision = "r2b_notes"
down_revision = "r1_items"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("notes", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id", name="fk_notes_item"), nullable=False),
                    sa.Column("body", sa.Text))


def downgrade() -> None:
    op.drop_table("notes")
