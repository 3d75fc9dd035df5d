-- Incremental /sync finds the rooms whose unread counts changed since its
-- token: new notifications by their event position (the primary key), and
-- notifications read since by the stream position of their read. Only
-- read rows need the second index, so it leaves out the unread ones,
-- which spares every new notification (one per notified member per
-- event) an index entry.
DROP INDEX push_notifications_changes;
CREATE INDEX push_notifications_read ON push_notifications (user_id, stream_pos) WHERE is_read;
