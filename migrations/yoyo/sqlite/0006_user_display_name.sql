-- users.display_name NOT NULL, backfilled from name or email (a data migration)
-- depends: 0005_order_events_enum
-- SQLite cannot ALTER a column to NOT NULL: the table is rebuilt (as alembic batch mode does).

ALTER TABLE users ADD COLUMN display_name VARCHAR(100);

UPDATE users SET display_name = COALESCE(name, email) WHERE display_name IS NULL;

CREATE TABLE users_new (
    id INTEGER NOT NULL,
    email VARCHAR(255) NOT NULL,
    name VARCHAR(100),
    created_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL,
    profile JSON,
    display_name VARCHAR(100) NOT NULL,
    PRIMARY KEY (id)
);

INSERT INTO users_new (id, email, name, created_at, profile, display_name) SELECT users.id, users.email, users.name, users.created_at, users.profile, users.display_name
FROM users;

DROP TABLE users;

ALTER TABLE users_new RENAME TO users;

CREATE UNIQUE INDEX ix_users_email ON users (email);
