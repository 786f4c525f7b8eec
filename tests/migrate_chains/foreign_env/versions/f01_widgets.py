"""widgets"""

import sqlalchemy as sa
from alembic import op

revision = "f01_widgets"
down_revision = None


def upgrade() -> None:
    op.create_table("widgets", sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    op.drop_table("widgets")
