-- users.profile: a JSON document (jsonb on PostgreSQL)
-- depends: 0003_orders

ALTER TABLE users ADD COLUMN profile JSON;
