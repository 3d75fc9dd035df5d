-- Client transaction IDs are scoped by endpoint too (send, redact): the
-- same transaction ID on /send and on /redact is two requests, as in
-- Synapse, which keys retries by request path. The table is rebuilt, since
-- SQLite cannot change a primary key in place. Rows written before this
-- migration did not record their endpoint: a redaction's is taken to be
-- "redact" (PUT /redact, where clients send nearly all of them), anything
-- else's "send".
CREATE TABLE event_txns_by_endpoint (
	room_nid  BIGINT NOT NULL,
	user_id   TEXT NOT NULL,
	device_id TEXT NOT NULL,
	-- "send" (PUT /rooms/{roomId}/send/...) or "redact" (PUT
	-- /rooms/{roomId}/redact/...)
	endpoint  TEXT NOT NULL,
	txn_id    TEXT NOT NULL,
	event_nid BIGINT NOT NULL,
	PRIMARY KEY (room_nid, user_id, device_id, endpoint, txn_id)
);
INSERT INTO event_txns_by_endpoint (room_nid, user_id, device_id, endpoint, txn_id, event_nid)
	SELECT t.room_nid, t.user_id, t.device_id,
		CASE WHEN e.event_type = 'm.room.redaction' THEN 'redact' ELSE 'send' END,
		t.txn_id, t.event_nid
	FROM event_txns t JOIN events e ON e.event_nid = t.event_nid;
DROP TABLE event_txns;
ALTER TABLE event_txns_by_endpoint RENAME TO event_txns;
CREATE INDEX event_txns_event ON event_txns (event_nid);
