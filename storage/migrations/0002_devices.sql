-- Placeholder owned by the accounts engineer (devices, tokens, profiles, registration tokens):
-- replace this whole file with the real schema.
CREATE TABLE migration_placeholder_0002 (x BIGINT);
