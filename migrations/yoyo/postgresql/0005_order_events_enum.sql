-- order_events with an enum-like kind (a native ENUM on PostgreSQL and MariaDB, a CHECK on SQLite)
-- depends: 0004_user_profile_json

CREATE TYPE order_event_kind AS ENUM ('created', 'paid', 'shipped', 'cancelled');

CREATE TABLE order_events (
    id SERIAL NOT NULL,
    order_id INTEGER NOT NULL,
    kind order_event_kind NOT NULL,
    at TIMESTAMP WITHOUT TIME ZONE DEFAULT CURRENT_TIMESTAMP NOT NULL,
    PRIMARY KEY (id),
    CONSTRAINT fk_order_events_order_id FOREIGN KEY(order_id) REFERENCES orders (id) ON DELETE CASCADE
);
