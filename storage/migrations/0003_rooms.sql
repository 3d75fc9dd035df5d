-- Placeholder owned by the roomserver engineer (events, state, rooms, memberships, stream positions):
-- replace this whole file with the real schema.
CREATE TABLE migration_placeholder_0003 (x BIGINT);
