DROP INDEX CONCURRENTLY ix_orders_placed_user;
