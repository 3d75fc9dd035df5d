-- End-to-end encryption over federation (server-server-api "Device
-- Management", "Send-to-device messaging", "End-to-End Encryption").

-- To-device messages for remote users now go straight into the sender's
-- durable EDU queue, in the transaction that accepts them; what waited in
-- the old table moves there, in order.
INSERT INTO federation_edu_queue (destination, edu_type, edu_key, content)
SELECT destination, 'm.direct_to_device', '', edu_json FROM to_device_outbound ORDER BY outbound_nid;
DROP TABLE to_device_outbound;

-- The message_id of each m.direct_to_device EDU received, per origin, so
-- that an EDU sent again (a retried transaction) is delivered once. Rows
-- expire after a week: a server retries for hours, not weeks.
CREATE TABLE to_device_inbound (
	origin      TEXT NOT NULL,
	message_id  TEXT NOT NULL,
	received_ts BIGINT NOT NULL,
	PRIMARY KEY (origin, message_id)
);
CREATE INDEX to_device_inbound_received ON to_device_inbound (received_ts);

-- Local users' device list changes waiting to become EDUs for the servers
-- sharing a room with them: a device added, changed or deleted
-- (m.device_list_update, with its stream_id and prev_id fixed here, when
-- the change is made), or, with device_id '', the cross-signing keys
-- (m.signing_key_update). A row is deleted in the transaction that queues
-- its EDUs.
CREATE TABLE e2ee_device_list_outbound (
	outbound_nid BIGSERIAL PRIMARY KEY,
	user_id      TEXT NOT NULL,
	device_id    TEXT NOT NULL,
	stream_id    BIGINT NOT NULL,
	prev_id      BIGINT NOT NULL
);

-- device_stream_id is, for a local user, the stream_id of the last
-- m.device_list_update made for them: the prev_id of the next one and the
-- stream_id of GET /user/devices. It differs from stream_pos, which also
-- moves for changes other servers are not told of (signatures of other
-- users' keys, cross-signing keys, which have an EDU without stream IDs).
ALTER TABLE e2ee_device_list_changes ADD COLUMN device_stream_id BIGINT NOT NULL DEFAULT 0;
UPDATE e2ee_device_list_changes SET device_stream_id = stream_pos;
