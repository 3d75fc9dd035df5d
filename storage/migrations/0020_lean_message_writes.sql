-- What storing a message writes, trimmed (each index entry is a B-tree
-- insert, and under load about one more page each commit writes).
--
-- Message events have no state key and redact nothing, so they are left
-- out of the indexes on those columns; the queries that use
-- events_redacts say redacts <> '' (SQLite picks a partial index only
-- when the query repeats its condition; state_key_nid = ... implies
-- IS NOT NULL by itself).
DROP INDEX events_state_key_stream;
CREATE INDEX events_state_key_stream ON events (state_key_nid, stream_pos) WHERE state_key_nid IS NOT NULL;
DROP INDEX events_redacts;
CREATE INDEX events_redacts ON events (redacts) WHERE redacts <> '';

-- Transaction IDs are found by their key alone: on SQLite the table is
-- that key's B-tree, not a table and an index.
CREATE TABLE event_txns_keyed (
	room_nid  BIGINT NOT NULL,
	user_id   TEXT NOT NULL,
	device_id TEXT NOT NULL,
	-- "send" (PUT /rooms/{roomId}/send/...) or "redact" (PUT
	-- /rooms/{roomId}/redact/...)
	endpoint  TEXT NOT NULL,
	txn_id    TEXT NOT NULL,
	event_nid BIGINT NOT NULL,
	PRIMARY KEY (room_nid, user_id, device_id, endpoint, txn_id)
) /*WITHOUT ROWID*/;
INSERT INTO event_txns_keyed (room_nid, user_id, device_id, endpoint, txn_id, event_nid)
	SELECT room_nid, user_id, device_id, endpoint, txn_id, event_nid FROM event_txns;
DROP TABLE event_txns;
ALTER TABLE event_txns_keyed RENAME TO event_txns;
CREATE INDEX event_txns_event ON event_txns (event_nid);
