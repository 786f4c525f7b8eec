"""people, with one full_name column"""

import sqlalchemy as sa
from alembic import op

revision = "p01_people"
down_revision = None


def upgrade() -> None:
    op.create_table("people", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("full_name", sa.String(100), nullable=False))


def downgrade() -> None:
    op.drop_table("people")
