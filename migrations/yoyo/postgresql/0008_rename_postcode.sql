-- rename addresses.postcode to postal_code
-- depends: 0007_orders_index

ALTER TABLE addresses RENAME postcode TO postal_code;
