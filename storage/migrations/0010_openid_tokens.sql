-- OpenID tokens (client-server-api "OpenID", server-server-api "OpenID"): a
-- user asks for one (POST /user/{userId}/openid/request_token) and hands it
-- to a third party, which learns who the user is from this server's
-- /_matrix/federation/v1/openid/userinfo. As access tokens, they are stored
-- as the SHA-256 of the token (hex), never the token itself.
CREATE TABLE openid_tokens (
	token_hash TEXT PRIMARY KEY,
	user_id    TEXT NOT NULL,
	-- Milliseconds since the epoch from which the token is refused.
	expires_ts BIGINT NOT NULL
);
-- Expired tokens are deleted as new ones are made.
CREATE INDEX openid_tokens_expires ON openid_tokens (expires_ts);
