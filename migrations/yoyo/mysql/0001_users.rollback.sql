DROP INDEX ix_users_email ON users;

DROP TABLE users;
