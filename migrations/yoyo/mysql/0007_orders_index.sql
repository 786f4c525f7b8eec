-- a composite index on orders (placed_at, user_id), built CONCURRENTLY on PostgreSQL (writes go on)
-- depends: 0006_user_display_name

CREATE INDEX ix_orders_placed_user ON orders (placed_at, user_id);
