-- Push notifications (client-server-api "Push Notifications"): what each
-- user was notified of, their pushers, and the durable queue of pushes to
-- push gateways. Push rules themselves are the m.push_rules account data.

-- push_notifications holds one row per (user, event) the user's push rules
-- made a notification of. event_pos is the event's stream position;
-- thread_id is 'main' for the main timeline or the thread root's event ID.
-- is_read is set by the user's read receipts (and by their own later
-- events), which /sync's unread counts and /notifications' "read" follow.
-- stream_pos is the stream position of the row's last change, so that an
-- incremental /sync finds the rooms whose counts changed.
CREATE TABLE push_notifications (
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
	is_read    BOOLEAN NOT NULL,
	stream_pos BIGINT NOT NULL,
	PRIMARY KEY (user_id, event_pos)
);
-- Unread counts read only the unread rows.
CREATE INDEX push_notifications_unread ON push_notifications (user_id, room_id, thread_id, event_pos)
	WHERE NOT is_read;
CREATE INDEX push_notifications_changes ON push_notifications (user_id, stream_pos);

-- push_progress is the stream position of the last room event the
-- notifier has evaluated (every earlier one has been too): /sync waits for
-- it to reach the events it returns, so that an event and its count come
-- in the same response.
CREATE TABLE push_progress (
	id  BIGINT PRIMARY KEY CHECK (id = 1),
	pos BIGINT NOT NULL
);
INSERT INTO push_progress (id, pos) VALUES (1, 0);

-- Pushers (POST /pushers/set), unique per (user, app_id, pushkey). data is
-- the JSON object the client gave; url is its data.url. failures and
-- retry_at_ts are the backoff of the pusher's gateway after failed pushes.
CREATE TABLE pushers (
	pusher_id           BIGSERIAL PRIMARY KEY,
	user_id             TEXT NOT NULL,
	app_id              TEXT NOT NULL,
	pushkey             TEXT NOT NULL,
	kind                TEXT NOT NULL,
	app_display_name    TEXT NOT NULL,
	device_display_name TEXT NOT NULL,
	profile_tag         TEXT NOT NULL,
	lang                TEXT NOT NULL,
	data                TEXT NOT NULL,
	url                 TEXT NOT NULL,
	-- the device whose access token created the pusher
	device_id           TEXT NOT NULL,
	-- milliseconds since the Unix epoch, when the pushkey was last set
	pushkey_ts          BIGINT NOT NULL,
	failures            INTEGER NOT NULL DEFAULT 0,
	retry_at_ts         BIGINT NOT NULL DEFAULT 0,
	UNIQUE (user_id, app_id, pushkey)
);
CREATE INDEX pushers_by_key ON pushers (app_id, pushkey);

-- push_queue holds the pushes still to be sent, per pusher, in order.
-- event_id '' is a push of the unread count alone (after a read receipt).
CREATE TABLE push_queue (
	queue_id   BIGSERIAL PRIMARY KEY,
	pusher_id  BIGINT NOT NULL REFERENCES pushers (pusher_id) ON DELETE CASCADE,
	room_id    TEXT NOT NULL,
	event_id   TEXT NOT NULL,
	-- the tweaks of the matching rule (JSON object)
	tweaks     TEXT NOT NULL,
	created_ts BIGINT NOT NULL
);
CREATE INDEX push_queue_by_pusher ON push_queue (pusher_id, queue_id);

-- The notifier looks up the receipts that already cover a new event
-- (a client that read it before the notifier got to it).
CREATE INDEX receipts_by_room_event ON receipts (room_id, event_pos);
