-- orders, two foreign keys and a check constraint
-- depends: 0002_addresses

CREATE TABLE orders (
    id INTEGER NOT NULL AUTO_INCREMENT,
    user_id INTEGER NOT NULL,
    address_id INTEGER,
    total NUMERIC(12, 2) NOT NULL DEFAULT 0,
    placed_at DATETIME,
    PRIMARY KEY (id),
    CONSTRAINT fk_orders_user_id FOREIGN KEY(user_id) REFERENCES users (id),
    CONSTRAINT fk_orders_address_id FOREIGN KEY(address_id) REFERENCES addresses (id) ON DELETE SET NULL,
    CONSTRAINT ck_orders_total_nonneg CHECK (total >= 0)
);
