"""note_tags: notes x tags (branch b; depends on branch a's tags table)"""

import sqlalchemy as sa
from alembic import op

revision = "r3b_note_tags"
down_revision = "r2b_notes"
branch_labels = None
depends_on = "r2a_tags"


def upgrade() -> None:
    op.create_table("note_tags",
                    sa.Column("note_id", sa.Integer, sa.ForeignKey("notes.id", name="fk_note_tags_note"),
                              primary_key=True),
                    sa.Column("tag_id", sa.Integer, sa.ForeignKey("tags.id", name="fk_note_tags_tag"),
                              primary_key=True))


def downgrade() -> None:
    op.drop_table("note_tags")
