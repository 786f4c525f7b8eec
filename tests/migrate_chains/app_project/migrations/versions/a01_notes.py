"""notes"""

import sqlalchemy as sa
from alembic import op

revision = "a01_notes"
down_revision = None


def upgrade() -> None:
    op.create_table("notes", sa.Column("id", sa.Integer, primary_key=True), sa.Column("body", sa.String(200),
                                                                                     nullable=False))


def downgrade() -> None:
    op.drop_table("notes")
