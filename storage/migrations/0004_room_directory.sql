-- Placeholder owned by the rooms engineer (aliases, public room directory):
-- replace this whole file with the real schema.
CREATE TABLE migration_placeholder_0004 (x BIGINT);
