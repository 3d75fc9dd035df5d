-- Devices, access and refresh tokens, user-interactive auth sessions,
-- registration tokens and profiles (client-server-api "Client
-- Authentication", "Account registration and management", "Device
-- management", "Profiles"). Users are identified by their localpart, as in
-- accounts.

CREATE TABLE devices (
	localpart     TEXT NOT NULL,
	device_id     TEXT NOT NULL,
	-- NULL when the client gave no display name.
	display_name  TEXT,
	created_ts    BIGINT NOT NULL,
	-- Updated at most every few minutes by the authenticator, not on every
	-- request; 0 and '' until the device is first seen.
	last_seen_ts  BIGINT NOT NULL DEFAULT 0,
	last_seen_ip  TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (localpart, device_id)
);

-- Access tokens are stored as the SHA-256 of the token (hex), never the
-- token itself: a leaked database does not log anyone in.
CREATE TABLE access_tokens (
	token_hash    TEXT PRIMARY KEY,
	localpart     TEXT NOT NULL,
	device_id     TEXT NOT NULL,
	created_ts    BIGINT NOT NULL,
	-- Milliseconds since the epoch after which the token is refused (soft
	-- logout); 0 = never (a token issued without a refresh token).
	expires_ts    BIGINT NOT NULL DEFAULT 0,
	-- The refresh token issued with this one (refresh_tokens.id), or 0.
	refresh_id    BIGINT NOT NULL DEFAULT 0,
	-- A refresh token that stays usable until this access token is first
	-- used, then is deleted (the spec's rotation rule, "Refreshing access
	-- tokens"); 0 = none.
	supersedes_refresh_id BIGINT NOT NULL DEFAULT 0,
	FOREIGN KEY (localpart, device_id) REFERENCES devices (localpart, device_id) ON DELETE CASCADE
);
CREATE INDEX access_tokens_device ON access_tokens (localpart, device_id);

CREATE TABLE refresh_tokens (
	id            BIGSERIAL PRIMARY KEY,
	token_hash    TEXT NOT NULL UNIQUE,
	localpart     TEXT NOT NULL,
	device_id     TEXT NOT NULL,
	created_ts    BIGINT NOT NULL,
	-- As access_tokens.supersedes_refresh_id: the predecessor, deleted
	-- when this refresh token is first used.
	supersedes_refresh_id BIGINT NOT NULL DEFAULT 0,
	FOREIGN KEY (localpart, device_id) REFERENCES devices (localpart, device_id) ON DELETE CASCADE
);
CREATE INDEX refresh_tokens_device ON refresh_tokens (localpart, device_id);

-- User-interactive authentication sessions. Kept in the database, not in
-- memory, so that the stages of one session may reach different processes.
CREATE TABLE uia_sessions (
	session_id    TEXT PRIMARY KEY,
	-- What the session authorises, e.g. "register" or
	-- "password @alice:example.org": a session cannot be reused for
	-- another operation.
	operation     TEXT NOT NULL,
	created_ts    BIGINT NOT NULL,
	-- JSON array of the completed stage types.
	completed     TEXT NOT NULL DEFAULT '[]',
	-- The registration token this session's m.login.registration_token
	-- stage used (counted as pending on it), or ''.
	registration_token TEXT NOT NULL DEFAULT ''
);
CREATE INDEX uia_sessions_created ON uia_sessions (created_ts);

-- Registration tokens (client-server-api "Token-authenticated registration";
-- administered through Synapse's admin API shape).
CREATE TABLE registration_tokens (
	token         TEXT PRIMARY KEY,
	-- NULL = unlimited.
	uses_allowed  BIGINT,
	-- Sessions that completed the token stage but not yet registered.
	pending       BIGINT NOT NULL DEFAULT 0,
	completed     BIGINT NOT NULL DEFAULT 0,
	-- Milliseconds since the epoch; NULL = never expires.
	expiry_time   BIGINT
);

-- Profile fields: displayname, avatar_url and the extended fields, each
-- value as its JSON text (any JSON value the spec allows).
CREATE TABLE profile_fields (
	localpart     TEXT NOT NULL,
	field         TEXT NOT NULL,
	value         TEXT NOT NULL,
	PRIMARY KEY (localpart, field)
);
