"""DEFECT irreversible downgrade: the downgrade forgets to drop the column"""

import sqlalchemy as sa
from alembic import op

revision = "d02_irreversible"
down_revision = "d01_accounts"


def upgrade() -> None:
    op.add_column("accounts", sa.Column("flag", sa.Boolean))


def downgrade() -> None:
    pass
