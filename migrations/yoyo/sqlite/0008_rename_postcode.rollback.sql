ALTER TABLE addresses RENAME COLUMN postal_code TO postcode;
