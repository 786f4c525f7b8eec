ALTER TABLE addresses CHANGE postal_code postcode VARCHAR(20) NULL;
