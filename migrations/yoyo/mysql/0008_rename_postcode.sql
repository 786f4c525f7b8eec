-- rename addresses.postcode to postal_code
-- depends: 0007_orders_index

ALTER TABLE addresses CHANGE postcode postal_code VARCHAR(20) NULL;
