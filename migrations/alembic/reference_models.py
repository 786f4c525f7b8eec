"""The reference schema at head, as SQLAlchemy metadata (``--models`` for ``migrate.model_drift``)."""

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

metadata = sa.MetaData()
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

users = sa.Table(
    "users", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("email", sa.String(255), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False, server_default=sa.text("CURRENT_TIMESTAMP")),
    sa.Column("profile", JSON),
    sa.Column("display_name", sa.String(100), nullable=False),
    sa.Index("ix_users_email", "email", unique=True),
)
addresses = sa.Table(
    "addresses", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", name="fk_addresses_user_id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("line1", sa.String(200), nullable=False),
    sa.Column("city", sa.String(100)),
    sa.Column("postal_code", sa.String(20)),
)
orders = sa.Table(
    "orders", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", name="fk_orders_user_id"), nullable=False),
    sa.Column("address_id", sa.Integer, sa.ForeignKey("addresses.id", name="fk_orders_address_id", ondelete="SET NULL")),
    sa.Column("total", sa.Numeric(12, 2), nullable=False, server_default=sa.text("0")),
    sa.Column("placed_at", sa.DateTime),
    sa.Column("currency", sa.CHAR(3), nullable=False, server_default="EUR"),
    sa.CheckConstraint("total >= 0", name="ck_orders_total_nonneg"),
    sa.Index("ix_orders_placed_user", "placed_at", "user_id"),
)
order_events = sa.Table(
    "order_events", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("order_id", sa.Integer, sa.ForeignKey("orders.id", name="fk_order_events_order_id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("kind", sa.Enum("created", "paid", "shipped", "cancelled", name="order_event_kind",
                              create_constraint=True), nullable=False),
    sa.Column("at", sa.DateTime, nullable=False, server_default=sa.text("CURRENT_TIMESTAMP")),
)
