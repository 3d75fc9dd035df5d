-- Unread counts are kept per (user, room, thread) in push_unread instead of
-- being counted from per-notification read flags. A read receipt, or a
-- user's own event, used to update every notification it read (moving each
-- between two indexes); in a busy room that was most of the pages a message
-- dirtied. Now it moves one row's read_pos and recounts what is left, and
-- a notification is written once and never changed: it is read when its
-- event_pos is at or before its (user, room, thread)'s read_pos.
--
-- notifications and highlights count the notifications after read_pos;
-- stream_pos is the stream position of the row's last change (the new
-- event's, or the read's), which incremental /sync follows to find rooms
-- whose counts changed.
CREATE TABLE push_unread (
	user_id       TEXT NOT NULL,
	room_id       TEXT NOT NULL,
	thread_id     TEXT NOT NULL,
	notifications BIGINT NOT NULL,
	highlights    BIGINT NOT NULL,
	read_pos      BIGINT NOT NULL,
	stream_pos    BIGINT NOT NULL,
	PRIMARY KEY (user_id, room_id, thread_id)
) /*WITHOUT ROWID*/;

-- Within one (user, room, thread) the read notifications were always those
-- up to a position (receipts and own events read "up to"), so the counts
-- and read_pos follow from the flags.
INSERT INTO push_unread (user_id, room_id, thread_id, notifications, highlights, read_pos, stream_pos)
SELECT user_id, room_id, thread_id,
	SUM(CASE WHEN is_read THEN 0 ELSE 1 END),
	SUM(CASE WHEN highlight AND NOT is_read THEN 1 ELSE 0 END),
	COALESCE(MAX(CASE WHEN is_read THEN event_pos END), 0),
	MAX(stream_pos)
FROM push_notifications
GROUP BY user_id, room_id, thread_id;

-- The notifications themselves, without read flag or change position: a
-- row is only ever appended. (Not a WITHOUT ROWID table on SQLite: its
-- rows, much bigger than the key, would split the per-user runs of the
-- key's B-tree more often than the key's index does; measured, that cost
-- more pages per commit than appending rows to the table.)
CREATE TABLE push_notifications_new (
	user_id    TEXT NOT NULL,
	event_pos  BIGINT NOT NULL,
	room_id    TEXT NOT NULL,
	event_id   TEXT NOT NULL,
	thread_id  TEXT NOT NULL,
	-- the matching rule's actions (JSON array)
	actions    TEXT NOT NULL,
	highlight  BOOLEAN NOT NULL,
	-- milliseconds since the Unix epoch, when the notification was made
	ts         BIGINT NOT NULL,
	PRIMARY KEY (user_id, event_pos)
);
INSERT INTO push_notifications_new (user_id, event_pos, room_id, event_id, thread_id, actions, highlight, ts)
SELECT user_id, event_pos, room_id, event_id, thread_id, actions, highlight, ts FROM push_notifications;
DROP TABLE push_notifications;
ALTER TABLE push_notifications_new RENAME TO push_notifications;
