ALTER TABLE addresses RENAME postal_code TO postcode;
