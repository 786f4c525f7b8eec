"""full_name dropped: first_name and last_name replace it"""

import sqlalchemy as sa
from alembic import op

revision = "p03_drop_full_name"
down_revision = "p02_split_name"


def upgrade() -> None:
    op.drop_column("people", "full_name")


def downgrade() -> None:
    # full_name comes back empty-able: the names it held are not restored (knowingly irreversible)
    op.add_column("people", sa.Column("full_name", sa.String(100)))
