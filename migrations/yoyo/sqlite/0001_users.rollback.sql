DROP INDEX ix_users_email;

DROP TABLE users;
