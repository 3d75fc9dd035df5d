-- The roomserver's tables: rooms, their events (the DAG), state snapshots,
-- the materialized current state and memberships, forward extremities,
-- client transaction IDs and the global stream position.
--
-- Rooms, events and (event type, state key) pairs are numbered with integer
-- IDs ("NIDs"): state is stored as integers, never as repeated strings.

-- The global stream position: one row, incremented inside the writing
-- transaction (storage.(*Tx).NextStreamPos), so that the order of positions
-- is the order of commits on both databases (on PostgreSQL the row lock is
-- held until commit). Every writer of something /sync returns (room events,
-- receipts, account data, ...) takes its positions here, so one sync token
-- number covers them all.
CREATE TABLE stream_counter (
	id  BIGINT PRIMARY KEY CHECK (id = 1),
	pos BIGINT NOT NULL
);
INSERT INTO stream_counter (id, pos) VALUES (1, 0);

-- The highest stream position whose room event was published on the bus
-- (roomserver output stream). Events above it are published again at start:
-- a crash between commit and publish loses no output (the bus drops
-- duplicates by message ID).
CREATE TABLE roomserver_published (
	id  BIGINT PRIMARY KEY CHECK (id = 1),
	pos BIGINT NOT NULL
);
INSERT INTO roomserver_published (id, pos) VALUES (1, 0);

CREATE TABLE rooms (
	room_nid     BIGSERIAL PRIMARY KEY,
	room_id      TEXT NOT NULL UNIQUE,
	room_version TEXT NOT NULL,
	-- The state snapshot of the current state; 0 before the create event.
	state_nid    BIGINT NOT NULL DEFAULT 0,
	-- milliseconds since the Unix epoch
	created_ts   BIGINT NOT NULL
);

-- (event type, state key) pairs, shared by every room.
CREATE TABLE state_keys (
	state_key_nid BIGSERIAL PRIMARY KEY,
	event_type    TEXT NOT NULL,
	state_key     TEXT NOT NULL,
	UNIQUE (event_type, state_key)
);

-- Every event the server has, local or received, accepted or not.
CREATE TABLE events (
	event_nid        BIGSERIAL PRIMARY KEY,
	event_id         TEXT NOT NULL UNIQUE,
	room_nid         BIGINT NOT NULL REFERENCES rooms (room_nid),
	event_type       TEXT NOT NULL,
	-- NULL for a message (non-state) event.
	state_key_nid    BIGINT REFERENCES state_keys (state_key_nid),
	sender           TEXT NOT NULL,
	depth            BIGINT NOT NULL,
	origin_server_ts BIGINT NOT NULL,
	-- The event's place in the global stream; NULL for events that are not
	-- in the room's timeline (rejected, soft-failed, outliers). Unique, and
	-- ordered as the commits were.
	stream_pos       BIGINT UNIQUE,
	-- State snapshots (state_snapshots) of the room state before and after
	-- the event; equal for message events. 0 when unknown (outliers).
	state_before_nid BIGINT NOT NULL DEFAULT 0,
	state_after_nid  BIGINT NOT NULL DEFAULT 0,
	-- content.membership of m.room.member events, '' otherwise.
	membership       TEXT NOT NULL DEFAULT '',
	-- The event an m.room.redaction redacts, '' otherwise.
	redacts          TEXT NOT NULL DEFAULT '',
	-- Rejected: failed the auth rules (stored so that it is not fetched
	-- again). Soft-failed: passed them against the state before it but not
	-- against the current state. Outlier: stored for its place in auth
	-- chains only, with no state.
	rejected         BOOLEAN NOT NULL DEFAULT FALSE,
	soft_failed      BOOLEAN NOT NULL DEFAULT FALSE,
	outlier          BOOLEAN NOT NULL DEFAULT FALSE,
	-- The ID of the redaction applied to this event ('' if none). json is
	-- then the redacted form, with unsigned.redacted_because.
	redacted_by      TEXT NOT NULL DEFAULT '',
	-- The event as canonical JSON (plus "unsigned" once redacted).
	json             TEXT NOT NULL
);
-- A room's timeline in stream order (sync) and in topological order
-- (/messages: depth, then stream position).
CREATE INDEX events_room_stream ON events (room_nid, stream_pos);
CREATE INDEX events_room_topo ON events (room_nid, depth, stream_pos);
-- One piece of state over time, e.g. a user's member events (membership
-- changes between two stream positions).
CREATE INDEX events_state_key_stream ON events (state_key_nid, stream_pos);
CREATE INDEX events_redacts ON events (redacts);

-- State snapshots. A snapshot is the full room state at some point, stored
-- as a delta over a parent snapshot so that a state change copies only a
-- little. Snapshots along one line of descent are numbered by seq (0 =
-- a full snapshot with no parent). The snapshot with seq n has as parent
-- the snapshot of its line with seq n - lowbit(n) (n with its lowest set bit
-- cleared) and stores every change between the two. Reading a snapshot
-- walks at most popcount(n) <= 1 + log2(n) deltas (21 after a million state
-- changes), and a state change writes lowbit(n) rows at most, O(log n) on
-- average: a room of 10,000 members never copies its member list per event.
-- See storage/state.go.
CREATE TABLE state_snapshots (
	snapshot_nid BIGSERIAL PRIMARY KEY,
	room_nid     BIGINT NOT NULL REFERENCES rooms (room_nid),
	parent_nid   BIGINT NOT NULL, -- 0 when seq is 0
	seq          BIGINT NOT NULL
);

-- The entries of a snapshot's delta: the event at a state key, or 0 when
-- the key is no longer in the state.
CREATE TABLE state_snapshot_entries (
	snapshot_nid  BIGINT NOT NULL,
	state_key_nid BIGINT NOT NULL,
	event_nid     BIGINT NOT NULL,
	PRIMARY KEY (snapshot_nid, state_key_nid)
);

-- The current state of each room, materialized for fast lookups (auth of
-- new events, state queries). Always equal to rooms.state_nid's snapshot.
CREATE TABLE room_state (
	room_nid      BIGINT NOT NULL,
	state_key_nid BIGINT NOT NULL,
	event_nid     BIGINT NOT NULL,
	PRIMARY KEY (room_nid, state_key_nid)
);

-- The current membership of each user in each room (from room_state's
-- m.room.member events), for queries by user and by room.
CREATE TABLE room_memberships (
	room_nid   BIGINT NOT NULL,
	user_id    TEXT NOT NULL,
	membership TEXT NOT NULL,
	event_nid  BIGINT NOT NULL,
	PRIMARY KEY (room_nid, user_id)
);
CREATE INDEX room_memberships_user ON room_memberships (user_id, membership);
CREATE INDEX room_memberships_room ON room_memberships (room_nid, membership);

-- The events of a room that no other event cites as a prev_event yet: the
-- prev_events of the next local event.
CREATE TABLE room_forward_extremities (
	room_nid  BIGINT NOT NULL,
	event_nid BIGINT NOT NULL,
	PRIMARY KEY (room_nid, event_nid)
);

-- Client transaction IDs (client-server-api "Transaction identifiers"),
-- written in the transaction that stores the event, so that a retried
-- request returns the original event even after a crash.
CREATE TABLE event_txns (
	room_nid  BIGINT NOT NULL,
	user_id   TEXT NOT NULL,
	device_id TEXT NOT NULL,
	txn_id    TEXT NOT NULL,
	event_nid BIGINT NOT NULL,
	PRIMARY KEY (room_nid, user_id, device_id, txn_id)
);
CREATE INDEX event_txns_event ON event_txns (event_nid);
