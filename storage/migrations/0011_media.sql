-- The media repository (client-server-api "Content repository",
-- server-server-api "Content Repository"). File contents live in the blob
-- store (mediaapi), named by their SHA-256, so identical uploads share one
-- file; these tables hold what the files are.

-- media has one row per mxc:// URI this server knows: its own uploads
-- (origin = our server name) and the remote media it has cached.
CREATE TABLE media (
	origin         TEXT NOT NULL,
	media_id       TEXT NOT NULL,
	-- Hex SHA-256 of the content, the blob's name; NULL while an
	-- asynchronous upload (POST /create) waits for its content.
	sha256         TEXT,
	size_bytes     BIGINT NOT NULL DEFAULT 0,
	content_type   TEXT NOT NULL DEFAULT '',
	-- The file name given at upload (or by the origin); '' for none.
	upload_name    TEXT NOT NULL DEFAULT '',
	-- The local user who uploaded it; '' for remote media and for images
	-- that URL previews stored.
	user_id        TEXT NOT NULL DEFAULT '',
	-- When the ID was created (local) or the content cached (remote), and
	-- when the content arrived; ms since the Unix epoch. uploaded_ts is 0
	-- while pending.
	created_ts     BIGINT NOT NULL,
	uploaded_ts    BIGINT NOT NULL DEFAULT 0,
	-- A pending upload's unused_expires_at; 0 for media with content.
	expires_ts     BIGINT NOT NULL DEFAULT 0,
	quarantined    BOOLEAN NOT NULL DEFAULT FALSE,
	-- Created while the unauthenticated (legacy) endpoints were frozen:
	-- served only on the authenticated ones.
	legacy_frozen  BOOLEAN NOT NULL DEFAULT FALSE,
	PRIMARY KEY (origin, media_id)
);
CREATE INDEX media_user ON media (user_id, created_ts);
CREATE INDEX media_sha256 ON media (sha256);
CREATE INDEX media_created ON media (created_ts);

-- media_thumbnails holds the thumbnails made of a media item, one per
-- size and method it was asked for (sizes come from a configured list, so
-- the rows per item are few).
CREATE TABLE media_thumbnails (
	origin       TEXT NOT NULL,
	media_id     TEXT NOT NULL,
	width        INTEGER NOT NULL,
	height       INTEGER NOT NULL,
	method       TEXT NOT NULL,
	animated     BOOLEAN NOT NULL,
	sha256       TEXT NOT NULL,
	size_bytes   BIGINT NOT NULL,
	content_type TEXT NOT NULL,
	created_ts   BIGINT NOT NULL,
	PRIMARY KEY (origin, media_id, width, height, method, animated)
);
CREATE INDEX media_thumbnails_sha256 ON media_thumbnails (sha256);

-- media_url_previews caches GET /preview_url answers per URL.
CREATE TABLE media_url_previews (
	url        TEXT PRIMARY KEY,
	-- The OpenGraph JSON object returned to clients.
	og_json    TEXT NOT NULL,
	fetched_ts BIGINT NOT NULL,
	expires_ts BIGINT NOT NULL
);
