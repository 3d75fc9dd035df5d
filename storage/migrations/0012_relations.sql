-- Event relationships (client-server-api "Forming relationships between
-- events", "Threading"): which events relate to which, kept as the
-- roomserver's output stream delivers them, so that /relations, /threads and
-- the bundled aggregations of every read path are lookups, never a scan of
-- event contents. syncapi's output consumer writes these tables; a
-- redaction deletes the relation of the event it redacts.

-- One row per timeline event whose content has an m.relates_to with a
-- rel_type and an event_id (an event has at most one). The parent is kept by
-- ID: over federation a child may arrive before its parent. Reads join the
-- parent and require the same room.
CREATE TABLE event_relations (
	event_nid        BIGINT PRIMARY KEY,
	event_id         TEXT NOT NULL,
	room_nid         BIGINT NOT NULL,
	relates_to       TEXT NOT NULL,
	rel_type         TEXT NOT NULL,
	event_type       TEXT NOT NULL,
	sender           TEXT NOT NULL,
	stream_pos       BIGINT NOT NULL,
	origin_server_ts BIGINT NOT NULL,
	-- m.annotation's key ('' for other relationships).
	aggregation_key  TEXT NOT NULL DEFAULT ''
);
-- The children of a parent in stream order, all of them (/relations without
-- a rel_type, recursion) or of one rel_type (aggregations, /relations with
-- one).
CREATE INDEX event_relations_parent ON event_relations (relates_to, stream_pos);
CREATE INDEX event_relations_parent_type ON event_relations (relates_to, rel_type, stream_pos);

-- The threads of each room by latest activity (GET /rooms/{roomId}/threads):
-- a thread root with the stream position of its newest m.thread child.
CREATE TABLE event_threads (
	room_nid   BIGINT NOT NULL,
	root_id    TEXT NOT NULL,
	latest_pos BIGINT NOT NULL,
	PRIMARY KEY (room_nid, root_id)
);
CREATE INDEX event_threads_latest ON event_threads (room_nid, latest_pos);
