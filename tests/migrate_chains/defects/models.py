"""The app's models, drifted from the chain on purpose: accounts.name is 100 wide here (50 in the chain) and the
audit table was never migrated."""

import sqlalchemy as sa

metadata = sa.MetaData()
accounts = sa.Table(
    "accounts", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("balance", sa.BigInteger, nullable=False),
    sa.Column("flag", sa.Boolean),
    sa.Column("note", sa.String(50)),
    sa.Index("ix_accounts_name", "name"),
)
audit = sa.Table("audit", metadata, sa.Column("id", sa.Integer, primary_key=True))
