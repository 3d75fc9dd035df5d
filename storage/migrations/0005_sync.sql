-- Placeholder owned by the sync engineer (filters, receipts, account data, presence):
-- replace this whole file with the real schema.
CREATE TABLE migration_placeholder_0005 (x BIGINT);
