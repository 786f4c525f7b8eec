-- order_events with an enum-like kind (a native ENUM on PostgreSQL and MariaDB, a CHECK on SQLite)
-- depends: 0004_user_profile_json

CREATE TABLE order_events (
    id INTEGER NOT NULL,
    order_id INTEGER NOT NULL,
    kind VARCHAR(9) NOT NULL,
    at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL,
    PRIMARY KEY (id),
    CONSTRAINT fk_order_events_order_id FOREIGN KEY(order_id) REFERENCES orders (id) ON DELETE CASCADE,
    CONSTRAINT order_event_kind CHECK (kind IN ('created', 'paid', 'shipped', 'cancelled'))
);
