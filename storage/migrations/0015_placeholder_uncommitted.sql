-- Placeholder for local testing only: NOT COMMITTED.
SELECT 1;
