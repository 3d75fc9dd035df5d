-- EDUs over federation (server-server-api "EDUs", "Typing Notifications",
-- "Receipts", "Presence"): the sender's durable EDU queue, its cursors
-- over the streams it turns into EDUs, and remote users' presence.

-- federation_edu_queue holds the EDUs that must reach a destination even
-- across a restart or an outage (receipts, to-device messages, device list
-- updates), one row per EDU and destination, sent in id order. edu_key,
-- when not '', names what the EDU is about (a user's receipt in a room): a
-- newer EDU with the same type and key replaces one still waiting.
-- Typing and presence are not stored: the sender holds them in memory.
CREATE TABLE federation_edu_queue (
	id          BIGSERIAL PRIMARY KEY,
	destination TEXT NOT NULL,
	edu_type    TEXT NOT NULL,
	edu_key     TEXT NOT NULL,
	content     TEXT NOT NULL
);
CREATE INDEX federation_edu_queue_by_destination ON federation_edu_queue (destination, id);
CREATE INDEX federation_edu_queue_by_key ON federation_edu_queue (destination, edu_type, edu_key);

-- federation_cursors holds how far the sender has read a stream it turns
-- into EDUs ('receipts': the receipts table by stream_pos), so that what
-- was written while no sender ran is still sent.
CREATE TABLE federation_cursors (
	name TEXT PRIMARY KEY,
	pos  BIGINT NOT NULL
);

-- presence also holds remote users' presence, as their servers send it.
-- remote_ts is when a remote user's server last sent it (ms since the Unix
-- epoch), so that it can be timed out when the server falls silent; 0 for
-- local users.
ALTER TABLE presence ADD COLUMN remote_ts BIGINT NOT NULL DEFAULT 0;
