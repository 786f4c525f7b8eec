-- drop users.name (display_name replaced it)
-- depends: 0008_rename_postcode

ALTER TABLE users DROP COLUMN name;
