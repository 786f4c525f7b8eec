-- orders.currency NOT NULL with a server default
-- depends: 0009_drop_user_name

ALTER TABLE orders ADD COLUMN currency CHAR(3) NOT NULL DEFAULT 'EUR';
