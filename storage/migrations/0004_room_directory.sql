-- Room aliases and the published room directory (client-server-api "Room
-- aliases" and "Published room directory").

-- room_aliases maps this server's aliases (#localpart:our.server) to room
-- IDs. Aliases on other servers are resolved over federation, never stored
-- here.
CREATE TABLE room_aliases (
	alias      TEXT PRIMARY KEY,
	room_id    TEXT NOT NULL,
	-- The user who created the mapping: they may always delete it again
	-- (Synapse's rule, which the spec suggests).
	creator    TEXT NOT NULL,
	-- milliseconds since the Unix epoch
	created_ts BIGINT NOT NULL
);
CREATE INDEX room_aliases_room_id ON room_aliases (room_id);

-- room_directory lists the rooms published in this server's room
-- directory (visibility "public"); a room without a row is "private".
-- What the directory shows of a room (name, topic, member count, ...) is
-- read from the room's current state when listing, so it cannot go stale.
CREATE TABLE room_directory (
	room_id      TEXT PRIMARY KEY,
	published_ts BIGINT NOT NULL
);

-- forgotten_rooms records the rooms a user has forgotten (POST
-- /rooms/{roomId}/forget). A forget applies to the membership the user had
-- when forgetting: membership_pos is the stream position of that
-- m.room.member event. As soon as the user has a later membership event in
-- the room (re-joined, re-invited, knocked), the room is no longer
-- forgotten, as the spec says; readers compare positions, so no writer of
-- membership events has to clear this table.
CREATE TABLE forgotten_rooms (
	user_id        TEXT NOT NULL,
	room_id        TEXT NOT NULL,
	membership_pos BIGINT NOT NULL,
	PRIMARY KEY (user_id, room_id)
);
