"""merge branches a and b; adds an index on items.name"""

from alembic import op

revision = "m4_merge"
down_revision = ("r3a_tag_color", "r3b_note_tags")
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_items_name", "items", ["name"])


def downgrade() -> None:
    op.drop_index("ix_items_name", table_name="items")
