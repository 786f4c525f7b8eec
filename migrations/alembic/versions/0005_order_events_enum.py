"""order_events with an enum-like kind (a native ENUM on PostgreSQL and MariaDB, a CHECK on SQLite)

Revision ID: 0005_order_events_enum
Revises: 0004_user_profile_json
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_order_events_enum"
down_revision = "0004_user_profile_json"
branch_labels = None
depends_on = None

KIND = sa.Enum("created", "paid", "shipped", "cancelled", name="order_event_kind", create_constraint=True)


def upgrade() -> None:
    op.create_table(
        "order_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("order_id", sa.Integer, nullable=False),
        sa.Column("kind", KIND, nullable=False),
        sa.Column("at", sa.DateTime, nullable=False, server_default=sa.text("CURRENT_TIMESTAMP")),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name="fk_order_events_order_id", ondelete="CASCADE"),
    )


def downgrade() -> None:
    op.drop_table("order_events")
    if op.get_context().dialect.name == "postgresql":
        # drop_table does not drop the type create_table made
        op.execute("DROP TYPE order_event_kind")
