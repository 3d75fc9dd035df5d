-- Per-user data that /sync returns besides room events: filters, account
-- data, receipts and presence (client-server-api "Filtering", "Client
-- Config", "Receipts", "Presence"). Rows that /sync streams carry the
-- stream position they were written at (NextStreamPos, the sequence room
-- events use too), so one position in a sync token covers them all.

-- Filters uploaded with POST /user/{userId}/filter. The filter ID given to
-- the client is filter_id in decimal. The same JSON uploaded twice by one
-- user gets the same ID (clients upload their filter at every start), found
-- through the hash of its text.
CREATE TABLE sync_filters (
	filter_id   BIGSERIAL PRIMARY KEY,
	user_id     TEXT NOT NULL,
	-- hex SHA-256 of filter_json
	filter_hash TEXT NOT NULL,
	filter_json TEXT NOT NULL,
	UNIQUE (user_id, filter_hash)
);

-- Account data, global (room_id '') and per room: the latest content of
-- each type, with the position of its last change.
CREATE TABLE account_data (
	user_id    TEXT NOT NULL,
	room_id    TEXT NOT NULL,
	data_type  TEXT NOT NULL,
	content    TEXT NOT NULL,
	stream_pos BIGINT NOT NULL,
	PRIMARY KEY (user_id, room_id, data_type)
);
CREATE INDEX account_data_by_pos ON account_data (user_id, stream_pos);

-- Receipts: the latest event of each (room, type, user, thread) tuple, as
-- the receipts module requires. thread_id is '' for an unthreaded receipt.
-- event_pos is the stream position of the receipted event, so that a
-- receipt never moves backwards.
CREATE TABLE receipts (
	room_id      TEXT NOT NULL,
	receipt_type TEXT NOT NULL,
	user_id      TEXT NOT NULL,
	thread_id    TEXT NOT NULL,
	event_id     TEXT NOT NULL,
	event_pos    BIGINT NOT NULL,
	ts           BIGINT NOT NULL,
	stream_pos   BIGINT NOT NULL,
	PRIMARY KEY (room_id, receipt_type, user_id, thread_id)
);
CREATE INDEX receipts_by_pos ON receipts (stream_pos);

-- Presence of local users. stream_pos moves only when what other users see
-- changes (state, status message, currently_active), not on every request
-- that bumps last_active_ts.
CREATE TABLE presence (
	user_id          TEXT PRIMARY KEY,
	state            TEXT NOT NULL,
	-- NULL: no status message
	status_msg       TEXT,
	-- milliseconds since the Unix epoch
	last_active_ts   BIGINT NOT NULL,
	currently_active BOOLEAN NOT NULL,
	stream_pos       BIGINT NOT NULL
);
CREATE INDEX presence_by_pos ON presence (stream_pos);
