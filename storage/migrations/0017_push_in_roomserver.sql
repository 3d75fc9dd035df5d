-- The push notifier now records notifications in the roomserver's
-- transaction, with their event: it no longer follows the output stream
-- behind the roomserver, so it keeps no progress, and no receipt can
-- cover an event before its notifications exist.
DROP TABLE push_progress;
DROP INDEX receipts_by_room_event;
