-- users.display_name NOT NULL, backfilled from name or email (a data migration)
-- depends: 0005_order_events_enum
-- transactional: false
-- Without a transaction: the backfill does not run under the ALTER's ACCESS EXCLUSIVE lock.

ALTER TABLE users ADD COLUMN display_name VARCHAR(100);

UPDATE users SET display_name = COALESCE(name, email) WHERE display_name IS NULL;

ALTER TABLE users ALTER COLUMN display_name SET NOT NULL;
