"""items.qty integer -> bigint: PostgreSQL rewrites the table under ACCESS EXCLUSIVE, MariaDB copies it"""

import sqlalchemy as sa
from alembic import op

revision = "r5_rewrite"
down_revision = "m4_merge"
branch_labels = None
depends_on = None


def _items(qty: type) -> sa.Table:
    """items as m4_merge left it: SQLite's batch rebuilds the table from this (no reflection, so --sql works)"""
    return sa.Table("items", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("name", sa.String(50), nullable=False),
                    sa.Column("qty", qty, nullable=False, server_default="0"),
                    sa.Index("ix_items_name", "name"))


def upgrade() -> None:
    with op.batch_alter_table("items", copy_from=_items(sa.Integer)) as batch:
        batch.alter_column("qty", type_=sa.BigInteger, existing_type=sa.Integer, existing_nullable=False,
                           existing_server_default="0")


def downgrade() -> None:
    with op.batch_alter_table("items", copy_from=_items(sa.BigInteger)) as batch:
        batch.alter_column("qty", type_=sa.Integer, existing_type=sa.BigInteger, existing_nullable=False,
                           existing_server_default="0")
