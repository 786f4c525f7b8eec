-- addresses, a foreign key to users
-- depends: 0001_users

CREATE TABLE addresses (
    id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    line1 VARCHAR(200) NOT NULL,
    city VARCHAR(100),
    postcode VARCHAR(20),
    PRIMARY KEY (id),
    CONSTRAINT fk_addresses_user_id FOREIGN KEY(user_id) REFERENCES users (id) ON DELETE CASCADE
);

CREATE INDEX ix_addresses_user_id ON addresses (user_id);
