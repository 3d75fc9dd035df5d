-- Other servers' signing keys (server-server-api "Retrieving server keys"),
-- fetched from the servers themselves or through notaries, kept so that
-- signatures can still be checked after a restart and when a server is
-- offline, and so that this server can answer notary queries.

-- server_keys holds each key of each server as learnt: a key listed under
-- verify_keys is valid until valid_until_ts, which is the key response's
-- valid_until_ts capped at 7 days after it was fetched (the spec's rule)
-- and never lowered by an older response; a key listed under
-- old_verify_keys has expired_ts, from when on it no longer signs. Both
-- are milliseconds since the Unix epoch.
CREATE TABLE server_keys (
	server_name    TEXT NOT NULL,
	key_id         TEXT NOT NULL,
	-- the ed25519 public key, 32 bytes
	public_key     BYTEA NOT NULL,
	valid_until_ts BIGINT NOT NULL,
	-- NULL while the key is current
	expired_ts     BIGINT,
	-- when a response last listed the key
	fetched_ts     BIGINT NOT NULL,
	PRIMARY KEY (server_name, key_id)
);

-- server_key_responses keeps, per server, its latest signed key response
-- (GET /_matrix/key/v2/server) exactly as that server signed it: the one
-- last fetched from the server itself, unless a notary gave one valid for
-- longer since. It is what this server returns, counter-signed, as a
-- notary (/_matrix/key/v2/query).
CREATE TABLE server_key_responses (
	server_name    TEXT PRIMARY KEY,
	response_json  TEXT NOT NULL,
	valid_until_ts BIGINT NOT NULL,
	fetched_ts     BIGINT NOT NULL
);
