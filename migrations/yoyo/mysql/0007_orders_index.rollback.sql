DROP INDEX ix_orders_placed_user ON orders;
