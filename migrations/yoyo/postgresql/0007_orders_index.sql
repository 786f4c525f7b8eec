-- a composite index on orders (placed_at, user_id), built CONCURRENTLY on PostgreSQL (writes go on)
-- depends: 0006_user_display_name
-- transactional: false
-- CREATE INDEX CONCURRENTLY cannot run inside a transaction.

CREATE INDEX CONCURRENTLY ix_orders_placed_user ON orders (placed_at, user_id);
