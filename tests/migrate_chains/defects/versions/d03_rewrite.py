"""DEFECT table rewrite: int -> bigint rewrites the whole table under ACCESS EXCLUSIVE on PostgreSQL"""

import sqlalchemy as sa
from alembic import op

revision = "d03_rewrite"
down_revision = "d02_irreversible"


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:  # batch: SQLite rebuilds the table, the others ALTER
        batch.alter_column("balance", type_=sa.BigInteger, existing_type=sa.Integer, existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.alter_column("balance", type_=sa.Integer, existing_type=sa.BigInteger, existing_nullable=False)
