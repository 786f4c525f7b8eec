-- order_events with an enum-like kind (a native ENUM on PostgreSQL and MariaDB, a CHECK on SQLite)
-- depends: 0004_user_profile_json

CREATE TABLE order_events (
    id INTEGER NOT NULL AUTO_INCREMENT,
    order_id INTEGER NOT NULL,
    kind ENUM('created','paid','shipped','cancelled') NOT NULL,
    at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (id),
    CONSTRAINT fk_order_events_order_id FOREIGN KEY(order_id) REFERENCES orders (id) ON DELETE CASCADE
);
