-- users.display_name NOT NULL, backfilled from name or email (a data migration)
-- depends: 0005_order_events_enum

ALTER TABLE users ADD COLUMN display_name VARCHAR(100);

UPDATE users SET display_name = COALESCE(name, email) WHERE display_name IS NULL;

ALTER TABLE users MODIFY display_name VARCHAR(100) NOT NULL;
