-- End-to-end encryption (client-server-api "End-to-End Encryption",
-- "Send-to-Device messaging"; MSC3814 dehydrated devices). Users are full
-- user IDs here, not localparts, so that remote users' keys and device
-- lists can be cached in the same tables once device list updates arrive
-- over federation.

-- Device identity keys (/keys/upload device_keys): the signed object as
-- canonical JSON, without "unsigned" (the server adds its own on the way
-- out). One row per device; a local device's row goes with the device.
CREATE TABLE e2ee_device_keys (
	user_id      TEXT NOT NULL,
	device_id    TEXT NOT NULL,
	key_json     TEXT NOT NULL,
	-- Remote devices only: the display name their server gave. A local
	-- device's name is in devices.
	display_name TEXT,
	PRIMARY KEY (user_id, device_id)
);

-- Unclaimed one-time keys. key_nid numbers them in upload order: a claim
-- takes the oldest, as the spec asks, and deletes it, so each key is handed
-- out once.
CREATE TABLE e2ee_one_time_keys (
	key_nid    BIGSERIAL PRIMARY KEY,
	user_id    TEXT NOT NULL,
	device_id  TEXT NOT NULL,
	algorithm  TEXT NOT NULL,
	key_id     TEXT NOT NULL,
	-- The key as uploaded: a JSON string, or a signed object.
	key_json   TEXT NOT NULL,
	UNIQUE (user_id, device_id, algorithm, key_id)
);
CREATE INDEX e2ee_one_time_keys_claim ON e2ee_one_time_keys (user_id, device_id, algorithm, key_nid);

-- Fallback keys: at most one per device and algorithm, handed out when the
-- one-time keys run out and kept until replaced. used is set by the first
-- claim, which /sync reports (device_unused_fallback_key_types).
CREATE TABLE e2ee_fallback_keys (
	user_id    TEXT NOT NULL,
	device_id  TEXT NOT NULL,
	algorithm  TEXT NOT NULL,
	key_id     TEXT NOT NULL,
	key_json   TEXT NOT NULL,
	used       BOOLEAN NOT NULL DEFAULT FALSE,
	PRIMARY KEY (user_id, device_id, algorithm)
);

-- Cross-signing keys (master, self_signing, user_signing), as uploaded,
-- canonical. public_key is the unpadded base64 ed25519 key, which doubles
-- as the key's ID in signatures and must never equal a device ID.
CREATE TABLE e2ee_cross_signing_keys (
	user_id    TEXT NOT NULL,
	key_type   TEXT NOT NULL,
	public_key TEXT NOT NULL,
	key_json   TEXT NOT NULL,
	PRIMARY KEY (user_id, key_type)
);

-- Signatures uploaded with /keys/signatures/upload, merged into the keys
-- they sign when keys are queried. target_key_id is a device ID or a
-- cross-signing public key; signer_key_id is "ed25519:<device ID or public
-- key>". Who may see which signature is decided when reading.
CREATE TABLE e2ee_key_signatures (
	target_user_id TEXT NOT NULL,
	target_key_id  TEXT NOT NULL,
	signer_user_id TEXT NOT NULL,
	signer_key_id  TEXT NOT NULL,
	signature      TEXT NOT NULL,
	PRIMARY KEY (target_user_id, target_key_id, signer_user_id, signer_key_id)
);

-- The last change of each user's device list (a device's keys uploaded,
-- changed or deleted, cross-signing keys or signatures uploaded), at a
-- global stream position, so that /sync and /keys/changes tell who changed
-- between two tokens. It doubles as the user's device list stream_id for
-- federation (GET /user/devices).
CREATE TABLE e2ee_device_list_changes (
	user_id    TEXT PRIMARY KEY,
	stream_pos BIGINT NOT NULL
);
CREATE INDEX e2ee_device_list_changes_pos ON e2ee_device_list_changes (stream_pos);

-- Remote users whose device lists this server tracks: the stream_id of the
-- last m.device_list_update applied, and whether a gap was seen (prev_id
-- unknown), so that the list must be fetched again with /user/devices. The
-- devices themselves live in e2ee_device_keys. Filled by the federation
-- EDU handling, which is not built yet.
CREATE TABLE e2ee_remote_device_lists (
	user_id    TEXT PRIMARY KEY,
	stream_id  BIGINT NOT NULL,
	stale      BOOLEAN NOT NULL DEFAULT FALSE,
	updated_ts BIGINT NOT NULL
);

-- Send-to-device messages waiting for a local device. A message is
-- delivered by /sync in stream order and deleted when a later /sync's since
-- token is past its position. One /sendToDevice call writes at most one
-- message per device, at one position, so (device, position) is unique.
CREATE TABLE to_device_messages (
	message_nid BIGSERIAL PRIMARY KEY,
	user_id     TEXT NOT NULL,
	device_id   TEXT NOT NULL,
	stream_pos  BIGINT NOT NULL,
	sender      TEXT NOT NULL,
	event_type  TEXT NOT NULL,
	-- The message content, a JSON object.
	content     TEXT NOT NULL,
	UNIQUE (user_id, device_id, stream_pos)
);

-- Transaction IDs of /sendToDevice, per device, so that a retried request
-- is not delivered twice.
CREATE TABLE to_device_txns (
	user_id    TEXT NOT NULL,
	device_id  TEXT NOT NULL,
	txn_id     TEXT NOT NULL,
	created_ts BIGINT NOT NULL,
	PRIMARY KEY (user_id, device_id, txn_id)
);

-- Send-to-device messages for remote users, waiting for the federation
-- sender: each row is the content of one m.direct_to_device EDU for one
-- destination (sender, type, message_id, messages). Nothing sends them yet.
CREATE TABLE to_device_outbound (
	outbound_nid BIGSERIAL PRIMARY KEY,
	destination  TEXT NOT NULL,
	edu_json     TEXT NOT NULL,
	created_ts   BIGINT NOT NULL
);
CREATE INDEX to_device_outbound_destination ON to_device_outbound (destination, outbound_nid);

-- Server-side key backup versions (client-server-api "Server-side key
-- backups"). Versions are numbered per user and never reused; a deleted
-- version keeps its row (deleted), so deleting it again succeeds. etag
-- changes with every change to the version's keys.
CREATE TABLE e2ee_backup_versions (
	user_id    TEXT NOT NULL,
	version    BIGINT NOT NULL,
	algorithm  TEXT NOT NULL,
	auth_data  TEXT NOT NULL,
	etag       BIGINT NOT NULL DEFAULT 0,
	deleted    BOOLEAN NOT NULL DEFAULT FALSE,
	PRIMARY KEY (user_id, version)
);

-- The backed-up session keys of a version.
CREATE TABLE e2ee_backup_keys (
	user_id             TEXT NOT NULL,
	version             BIGINT NOT NULL,
	room_id             TEXT NOT NULL,
	session_id          TEXT NOT NULL,
	first_message_index BIGINT NOT NULL,
	forwarded_count     BIGINT NOT NULL,
	is_verified         BOOLEAN NOT NULL,
	session_data        TEXT NOT NULL,
	PRIMARY KEY (user_id, version, room_id, session_id)
);

-- Dehydrated devices (MSC3814): at most one per user. The device itself is
-- an ordinary row of devices (without tokens), with its keys in the tables
-- above; device_data is the client's encrypted pickle, a JSON object.
CREATE TABLE e2ee_dehydrated_devices (
	user_id     TEXT PRIMARY KEY,
	device_id   TEXT NOT NULL,
	device_data TEXT NOT NULL
);
